"""Shared kernel: the few value types every context may import (money, ids, clock, errors)."""
