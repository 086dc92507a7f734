"""The fast tier's platform: the in-memory runner (ledger with the operator's system
accounts, the wallet's and the merchants' stores) and the wallet on it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher

from mobipay.kernel.clock import ManualClock
from mobipay.ledger.chart import SYSTEM_ACCOUNTS
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import WalletService
from tests.support.memory import MemoryRunner


@pytest.fixture
def runner() -> MemoryRunner:
    r = MemoryRunner(ManualClock(datetime(2026, 3, 1, 2, 0, tzinfo=UTC)))
    for spec in SYSTEM_ACCOUNTS:
        r.ledger.open(spec)
    return r


@pytest.fixture
def wallet(runner: MemoryRunner) -> WalletService:
    return WalletService(runner, number_segments(), b"k" * 32, store=runner.stores,
                         pin_hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))  # tests only: fast
