"""The ledger: accounts, transfers, postings, holds. The only writer of balances."""
