"""Wallet: subscribers by phone number, PIN and OTP, real-name tiers and limits, cash-in/out
and transfers. This package holds the pure rules so far (numbers, PINs, identity and card
checks); services, storage and the API come with the rest of the wallet issue."""
