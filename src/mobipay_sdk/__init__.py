"""Client SDKs for mobipay's partner APIs (stand-alone: they import nothing of mobipay)."""
