"""Demo data: the operator's system accounts and a few funded wallets. Idempotent.

Every transfer here has a fixed id, so running ``mobipay demo`` twice changes nothing the
second time (the ledger answers the retries from what it stored).
"""

from __future__ import annotations

from dataclasses import dataclass

from mobipay.ledger.chart import BANK_SETTLEMENT, SYSTEM_ACCOUNTS, wallet_account
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger

#: (MSISDN, opening balance in fen): names are the subscribers the README's tour uses.
DEMO_WALLETS: tuple[tuple[str, int], ...] = (
    ("+8613800138000", 50_000),
    ("+8613900139000", 12_345),
    ("+8618600186000", 100_000),
    ("+8615000150000", 0),
    ("+8617700177000", 888),
)


@dataclass
class DemoReport:
    accounts: int
    transfers_created: int
    transfers_replayed: int


async def load_demo(ledger: Ledger) -> DemoReport:
    """Open the system accounts and the demo wallets, and fund the wallets once."""
    specs = [*SYSTEM_ACCOUNTS, *(wallet_account(msisdn) for msisdn, _ in DEMO_WALLETS)]
    await ledger.open_accounts(specs)
    commands = [
        Transfer(f"demo:cash-in:{msisdn}", (Leg.debit(BANK_SETTLEMENT, amount), Leg.credit(f"wallet:{msisdn}", amount)),
                 "cash_in", reference="demo opening balance")
        for msisdn, amount in DEMO_WALLETS if amount
    ]
    results = await ledger.post_batch(commands)
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"demo transfer {failed[0].id} refused: {failed[0].error}")
    replayed = sum(r.replayed for r in results)
    return DemoReport(len(specs), len(results) - replayed, replayed)
