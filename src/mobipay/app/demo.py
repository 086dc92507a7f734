"""Demo data: the operator's system accounts, a few hundred subscribers with funded wallets,
and a history of transfers between them. Idempotent, and quick the second time.

Every subscriber, funding and transfer has a fixed id or key, so running ``mobipay demo``
again changes nothing (the ledger and the wallet answer the retries from what they stored).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT, SYSTEM_ACCOUNTS
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.wallet.service import Principal, WalletService

#: (number, opening balance in fen): the subscribers the README's tour uses.
DEMO_WALLETS: tuple[tuple[str, int], ...] = (
    ("+8613800138000", 50_000),
    ("+8613900139000", 12_345),
    ("+8618600186000", 100_000),
    ("+8615000150000", 0),
    ("+8617700177000", 888),
)
PREFIXES = ("138", "139", "186", "189", "150", "177", "192", "133", "158", "131")
HISTORY = 400


@dataclass
class DemoReport:
    users_created: int
    users_total: int
    transfers_created: int
    transfers_replayed: int


def demo_numbers(count: int) -> list[tuple[str, int]]:
    """The named wallets, then generated subscribers with 100 to 2,000 CNY each."""
    rng = random.Random(2026)
    out = list(DEMO_WALLETS)
    for i in range(count - len(out)):
        number = f"+86{PREFIXES[i % len(PREFIXES)]}{5000_0000 + i:08d}"
        out.append((number, rng.randrange(10_000, 200_001, 100)))
    return out


async def load_demo(ledger: Ledger, wallet: WalletService, users: int = 200) -> DemoReport:
    """Open system accounts, subscribers and their funding, then a history of transfers."""
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    numbers = demo_numbers(users)
    created = 0
    accounts: dict[str, str] = {}
    for msisdn, _ in numbers:
        try:
            user = await wallet.user_by_msisdn(msisdn)
        except MobipayError:
            user = await wallet.create_user(msisdn, actor="demo", reason="demo data")
            created += 1
        accounts[msisdn] = user.account_code
    funding = [
        Transfer(f"demo:cash-in:{msisdn}", (Leg.debit(BANK_SETTLEMENT, amount), Leg.credit(accounts[msisdn], amount)),
                 "cash_in", reference="demo opening balance")
        for msisdn, amount in numbers if amount
    ]
    results = await ledger.post_batch(funding)
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"demo transfer {failed[0].id} refused: {failed[0].error}")
    made = sum(not r.replayed for r in results)
    replayed = len(results) - made
    if not created:
        # The history was made when the subscribers were: replaying it would post the
        # transfers that were refused then (for lack of money) and succeed now.
        return DemoReport(created, len(numbers), made, replayed)
    rng = random.Random(7)
    for n in range(HISTORY):
        (sender, _), (recipient, _) = rng.sample(numbers, 2)
        amount = rng.randrange(100, 15_000)
        me = Principal(user_id="demo", session_id="demo", msisdn=sender, account_code=accounts[sender])
        try:
            done = await wallet.transfer(me, recipient, amount, idempotency_key=f"demo-{n}", note="demo")
        except MobipayError:  # e.g. not enough money left: a refused transfer is history too
            continue
        made += not done.replayed
        replayed += done.replayed
    return DemoReport(created, len(numbers), made, replayed)


SHOPS = ("京东", "当当网", "苏宁易购", "国美在线", "唯品会", "聚美优品", "凡客诚品", "1号店", "亚马逊中国", "天猫超市",
         "美团", "大众点评", "携程旅行", "去哪儿网", "拉手网", "糯米网", "满座网", "58同城", "赶集网", "麦包包")
LOW_RISK_MCC = ("5311", "5411", "5812", "5942")


async def load_demo_merchants(merchants: Any, envelopes: Any, ledger: Ledger, count: int = 1000,
                              progress: Any = None) -> int:
    """The red-envelope zone's demo: ``count`` approved shops, each with a funded campaign.
    Idempotent: merchants already there (by credit code) are skipped."""
    from mobipay.merchants.model import credit_code_check_char

    made = 0
    for n in range(count):
        first17 = f"9131000{n:010d}"
        code = first17 + credit_code_check_char(first17)
        name = SHOPS[n] if n < len(SHOPS) else f"{SHOPS[n % len(SHOPS)]}合作商户{n:04d}"
        try:
            m = await merchants.apply(name=name, credit_code=code, legal_person="张经理",
                                      contact=f"+86138{n:08d}", mcc=LOW_RISK_MCC[n % len(LOW_RISK_MCC)],
                                      website=f"https://shop{n}.example", settlement_account=f"62220200{n:010d}")
        except MobipayError:
            continue  # there already
        await ledger.post(Transfer(f"demo:merchant-seed:{m.id}", (Leg.debit(BANK_SETTLEMENT, 200_000),
                                                                  Leg.credit(m.account_code, 200_000)), "demo"))
        face = (5, 10, 20, 50)[n % 4] * 100
        await envelopes.create_campaign(m, name=f"满{face // 10}减{face // 100}", rule=("threshold", "new_user",
                                        "brand")[n % 3], face=face, min_spend=face * 10, budget=face * 20,
                                        actor="demo")
        made += 1
        if progress is not None and made % 100 == 0:
            progress(made)
    return made
