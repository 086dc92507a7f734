"""What every story needs: the platform as ``mobipay serve`` builds it (the bootstrap's
container, on the test's database and the partners' SIMULATORS), people who sign up with
the code their phone receives and bring money in from their bank card, and the books read
back in fen.

The stories call the contexts' services through the container; the only table they read
is the outbox, where the SMS a handset would receive (codes, replies) wait.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from mobipay.app.bootstrap import Container, build
from mobipay.channels.sms.texts import render
from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.platform.config import Settings
from mobipay.wallet.model import OtpPurpose, id_card_check_char, luhn_complete
from mobipay.wallet.service import Principal
from tests.conftest import BANK_SECRET, BILLER_SECRET, LOTTERY_SECRET, PROVIDER_SECRET, TELCO_SECRET

PIN = "135790"


@dataclass(frozen=True)
class Person:
    """Someone in a story: their phone number, and the name, identity card and debit card
    their bank knows them by."""

    name: str
    number: str  # national, as they type it
    id_number: str
    card: str

    @property
    def msisdn(self) -> str:
        return "+86" + self.number

    @property
    def wallet(self) -> str:
        """Their wallet's account in the ledger."""
        return f"wallet:{self.msisdn}"


def person(name: str, number: str, born: str, n: int) -> Person:
    """``born``: YYYYMMDD; ``n`` makes the identity card and the (ICBC debit) card unique."""
    first17 = f"110105{born}{n:03d}"
    return Person(name, number, first17 + id_card_check_char(first17), luhn_complete(f"622202{n:012d}"))


LI_LEI = person("李雷", "13800138000", "19900307", 101)
WANG_FANG = person("王芳", "13900139000", "19920614", 102)


async def platform(db_url: str, tmp_path: Path, clock: ManualClock, **partners: Any) -> Container:
    """The container of a test environment, its system accounts open. ``partners``: the
    settings pointing at the simulators the story uses (``bank_url=…``)."""
    settings = Settings(
        _env_file=None, env="test", database_url=db_url, merchant_key_file=tmp_path / "platform.pem",
        report_dir=tmp_path / "reports", sms_console_file=tmp_path / "sms.log",
        bank_secret=BANK_SECRET, operator_billing_secret=TELCO_SECRET, aggregator_secret=TELCO_SECRET,
        billers_secret=BILLER_SECRET, products_secret=PROVIDER_SECRET, insurer_secret=PROVIDER_SECRET,
        lottery_secret=LOTTERY_SECRET, **partners)
    c = build(settings, clock=clock)
    await c.ensure_system_accounts()
    return c


async def sms(c: Container, to: str) -> list[tuple[str, dict[str, Any]]]:
    """Every SMS the platform has queued for ``to`` (E.164): (template, params), oldest first."""
    async with c.db.begin() as conn:
        rows = (await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' "
                                        "ORDER BY created_at, id"))).scalars().all()
    return [(p["template"], p["params"]) for p in map(json.loads, rows) if p["to"] == to]


async def texts(c: Container, to: str) -> list[str]:
    """The same SMS as the phone shows them."""
    return [render(template, params) for template, params in await sms(c, to)]


async def last_code(c: Container, to: str, template: str) -> str:
    """The code in the newest SMS of ``template`` sent to ``to``."""
    return str([params for t, params in await sms(c, to) if t == template][-1]["code"])


async def sign_up(c: Container, who: Person) -> Principal:
    """``who`` registers with the code texted to them, then signs in on their phone the same way."""
    await c.wallet.request_otp(who.number, OtpPurpose.REGISTER)
    await c.wallet.register(who.number, await last_code(c, who.msisdn, "otp.register"))
    await c.wallet.request_otp(who.number, OtpPurpose.LOGIN)
    tokens = await c.wallet.login(who.number, device_id=f"phone-{who.number}",
                                  code=await last_code(c, who.msisdn, "otp.login"))
    return await c.wallet.authenticate(tokens.access_token)


def sim(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    """Drive or read a partner's SIMULATOR through its ``/sim`` controls (the answer's JSON)."""
    response = httpx.request(method, url, json=body)
    response.raise_for_status()
    return response.json()


def open_bank_account(bank: str, who: Person, balance: int) -> None:
    """``who`` holds their debit card at the bank (the SIMULATOR) with ``balance`` fen on it."""
    sim("POST", f"{bank}/sim/accounts", {"card_number": who.card, "name": who.name, "id_number": who.id_number,
                                         "phone": who.number, "balance": balance})


def bank_balance(bank: str, who: Person) -> int:
    return int(sim("GET", f"{bank}/sim/accounts/{who.card}")["balance"])


async def bind_card(c: Container, bank: str, me: Principal, who: Person, *, at_bank: int = 1_000_000) -> str:
    """``who`` binds their debit card (the bank confirms it is theirs: real name, Tier II); its id."""
    open_bank_account(bank, who, at_bank)
    return (await c.banking.bind_card(me, who.card, who.name, who.id_number)).id


async def cash_in(c: Container, bank: str, me: Principal, who: Person, amount: int) -> None:
    """``who`` binds their card and brings ``amount`` fen from it into the wallet."""
    card = await bind_card(c, bank, me, who)
    order = await c.banking.cash_in(me, card, amount, idempotency_key=f"cash-in-{who.number}")
    assert order.state.value == "succeeded", order


async def books(c: Container, codes: Mapping[str, int] | list[str]) -> dict[str, int]:
    """The posted balance of each account (fen, on its normal side; 0 for one not opened yet)."""
    found = await c.ledger.accounts(list(codes))
    return {code: found[code].balance if code in found else 0 for code in codes}


async def available(c: Container, code: str) -> int:
    """What may still leave (or, for an asset, what is there less pending outflows)."""
    return (await c.ledger.account(code)).available


async def refused(work: Awaitable[Any]) -> str:
    """The error code the platform refuses ``work`` with."""
    with pytest.raises(MobipayError) as info:
        await work
    return info.value.code
