"""Sold from the wallet through a provider: the operator's own products and insurance."""
