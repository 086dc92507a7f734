"""The SMS channel: the command grammar so far; Kannel, replies and secondary confirmation come next."""
