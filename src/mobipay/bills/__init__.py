"""The utility bill zone: a registry of billers by city and category, fetch then pay, receipts, reconciliation."""
