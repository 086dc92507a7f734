"""Enterprise tables."""

from __future__ import annotations

from mobipay.platform.db import metadata  # noqa: F401
