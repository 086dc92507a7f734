"""Simulators of the far side of integrations no one can run here (banks, billers, the
operator's billing system, cinema venue devices). Clearly named, started as their own
services, and never imported by domain code (an import-linter contract enforces it)."""
