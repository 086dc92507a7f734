"""The operator console under ``/console``: server-rendered pages (Chinese by default,
``?lang=en``) for the people who run the platform, each behind an operator role, every
action audited with who, when, what and why. See docs/console.md."""

from __future__ import annotations

from fastapi import APIRouter

from mobipay.channels.web.console import auth, pages

router = APIRouter(include_in_schema=False)
router.include_router(auth.router)
router.include_router(pages.router)
