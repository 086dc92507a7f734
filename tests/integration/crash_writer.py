"""Child process of the crash test: posts transfers until killed, printing each id once
its commit has been acknowledged (so the parent knows which ones must survive)."""

from __future__ import annotations

import asyncio
import random
import sys

from mobipay.kernel.clock import SystemClock
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.platform.db import Database

ACCOUNTS = 50


async def main(url: str, prefix: str) -> None:
    db = Database(url, pool_size=8)
    ledger = Ledger(db, SystemClock(), writers=4)
    ledger.start_group_commit()

    async def caller(n: int) -> None:
        rng = random.Random(f"{prefix}{n}")
        i = 0
        while True:
            i += 1
            a, b = rng.sample(range(ACCOUNTS), 2)
            tid = f"{prefix}-{n}-{i}"
            t = Transfer(tid, (Leg.debit(f"k:{a}", rng.randrange(1, 500)), Leg.credit(f"k:{b}", 1)), "crash")
            t = Transfer(tid, (t.legs[0], Leg.credit(f"k:{b}", t.legs[0].amount)), "crash")
            if n % 2 == 0:  # some callers post batches, some single transfers
                result = (await ledger.post_batch([t]))[0]
            else:
                result = await ledger.post(t)
            if result.ok:
                sys.stdout.write(f"ACK {tid}\n")
                sys.stdout.flush()

    sys.stdout.write("READY\n")
    sys.stdout.flush()
    await asyncio.gather(*(caller(n) for n in range(16)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
