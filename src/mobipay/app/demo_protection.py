"""Demo handset protection: replacement stock at the pilot's business halls, four demo
subscribers' phones enrolled (app, phone bill, business hall) and three claims in
different states for the console's queue. Small, and idempotent (fixed keys, states
checked before each step).

The enrolments are made as of two months before today (clamped into the pilot's period),
so the claims are past the waiting period when ``mobipay demo`` runs."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from stdnum import luhn

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.protection.model import ClaimState
from mobipay.protection.service import DEFAULT_PROGRAMME, ProtectionService
from mobipay.wallet.service import Principal

if TYPE_CHECKING:
    from mobipay.app.bootstrap import Container

TACS = {"iPhone 15": "35328111", "Mate 60": "86753005", "Xiaomi 14": "86427706"}
#: (number, model, price in fen, city, payment): the phone bill, as the demo wallets are near their Tier I
#: lifetime limit after the demo history (a handling fee they cannot pay leaves the claim approved)
PHONES = (("+8613800138000", "iPhone 15", 599_900, "changsha", "phone_bill"),
          ("+8613900139000", "Mate 60", 549_900, "zhuzhou", "phone_bill"),
          ("+8618600186000", "Xiaomi 14", 399_900, "hengyang", "phone_bill"),
          ("+8617700177000", "iPhone 15", 599_900, "changde", "phone_bill"))


def demo_photo(size: int = 96) -> bytes:
    """A small grey PNG with a dark diagonal (a "cracked screen") for the demo damage claim:
    a real image, so the console shows it as it shows a subscriber's."""
    rows = b"".join(b"\x00" + bytes(40 if abs(x - y) < 3 or abs(x + y - size) < 2 else 200 for x in range(size))
                    for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def demo_imei(model: str, serial: int) -> str:
    body = f"{TACS[model]}{serial:06d}"
    return body + luhn.calc_check_digit(body)


@dataclass(frozen=True)
class DemoStaff:
    name: str = "demo"

    def require(self, role: str) -> None:  # the demo acts as an administrator
        return None


class _At:
    """A fixed clock: the demo's enrolments are made in the past."""

    def __init__(self, when: datetime) -> None:
        self.when = when

    def now(self) -> datetime:
        return self.when


@dataclass(frozen=True)
class DemoProtection:
    stock: int
    enrolled: int
    claims: int
    skipped: str = ""


async def load_demo_protection(c: Container) -> DemoProtection:
    svc: ProtectionService = c.protection
    programme = svc.programme(DEFAULT_PROGRAMME)
    today = svc.today()
    if today < programme.starts + timedelta(days=programme.waiting_days + 10):
        return DemoProtection(0, 0, 0, skipped=f"the pilot starts on {programme.starts}")
    claim_day = min(today, programme.ends)
    enrol_day = max(programme.starts, claim_day - timedelta(days=60))
    staff = DemoStaff()
    await svc.open_accounts()
    made = 0
    for n, hall in enumerate(sorted(svc.halls)):
        for model in TACS:
            for k in range(2):
                try:
                    await svc.add_stock(staff, hall, demo_imei(model, 900_000 + n * 10 + k))
                    made += 1
                except MobipayError:
                    pass  # there already
    then = _At(datetime.combine(enrol_day, time(10), SHANGHAI))
    past = ProtectionService(UnitOfWorkRunner(c.db, then, c.ledger), c.wallet, svc.warranty,
                             programmes=svc.programmes, handsets=svc.handsets, halls=svc.halls)
    enrolled = []
    for i, (msisdn, model, price, city, payment) in enumerate(PHONES):
        user = await c.wallet.user_by_msisdn(msisdn)
        me = Principal(user.id, "demo", user.msisdn, user.account_code)
        try:
            e = await past.enrol(me, imei=demo_imei(model, 100 + i), price=price,
                                 purchased_on=enrol_day - timedelta(days=2), receipt=f"DEMO-{i + 1:04d}",
                                 city=city, idempotency_key="demo-protection", payment=payment, consent=True)
        except MobipayError:
            continue
        enrolled.append((me, e))
    claims = 0
    happened = claim_day - timedelta(days=2)
    plans: tuple[tuple[int, str, str, list[str], str | None, str], ...] = (
        (0, "damage", "摔落后屏幕碎裂 (screen cracked in a fall)", ["photo"], None, "submitted"),
             (2, "loss", "在公交车上丢失", [], None, "allocated"),
             (1, "theft", "在商场被盗，已报警", [], "ZZ20261120-0042", "approved"))
    for index, kind, text, photos, report, until in plans:
        if index >= len(enrolled):
            continue
        me, e = enrolled[index]
        try:
            if photos:
                photos = [(await svc.upload_photo(me, demo_photo())).id]
            claim = await svc.submit_claim(me, e.id, kind=kind, occurred_on=happened, region="CN-HN",
                                           description=text, photos=photos, police_report=report,
                                           idempotency_key="demo-claim")
        except MobipayError:
            continue
        claims += 1
        if until == "submitted" or claim.state is not ClaimState.SUBMITTED:
            continue
        try:
            claim = await svc.approve(staff, claim.id)
            if claim.state is ClaimState.SECOND_REVIEW:
                claim = await svc.approve(DemoStaff("demo-checker"), claim.id)
            if until == "allocated":
                await svc.pay_fee(me, claim.id, idempotency_key="demo-fee", consent=True)
                await svc.allocate(staff, claim.id)
        except MobipayError:
            continue
    return DemoProtection(made, len(enrolled), claims)
