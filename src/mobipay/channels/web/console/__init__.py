"""The operator console under ``/console``: server-rendered pages (Chinese by default,
``?lang=en``) for the people who run the platform, each behind an operator role, every
action audited with who, when, what and why. See docs/console.md."""

from __future__ import annotations

from fastapi import APIRouter

from mobipay.channels.web.console import auth, bulk, campaigns, pages, protection, rural, rural_disputes, sp, tourism

router = APIRouter(include_in_schema=False)
router.include_router(auth.router)
router.include_router(pages.router)
router.include_router(campaigns.router)  # segments, prize draws, delivery to the door
router.include_router(bulk.router)  # bulk disbursements: batches, their figures, rows not paid
router.include_router(protection.router)  # handset protection: claims, the hall's counter, the report
router.include_router(sp.router)  # SP governance: record, decisions, complaints, trend, exit report
router.include_router(tourism.router)  # 旅游通: work orders, route replay map, evidence and custody
router.include_router(rural.router)  # village agents: activity by county, flagged transactions for risk
router.include_router(rural_disputes.router)  # the rural marketplace's open disputes, decided by operations
