"""The transit one-card's tap upload against pgbench's TPC-B on the same PostgreSQL server.

Run with ``mobipay bench transit --taps N`` (MOBIPAY_DATABASE_URL must be PostgreSQL, e.g.
postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_transit; created when missing, then
migrated). Needs ``pgbench`` and ``psql``. The ratio to pgbench measured in the same run is
the figure that counts. Last line: ``RESULT {json}``.

Phases:
  pgbench  TPC-B, scale 10, 16 clients, prepared, ``seconds`` (the ledger bench's reference);
  set-up   three cities' operators (Beijing metro and buses, Shanghai metro and buses,
           Guangzhou buses), a line of 12 stations per metro with an entry and an exit gate
           each and 8 bus readers per bus company; ``riders`` subscribers signed in by SMS code
           (a bound device), each with an NFC token (keys of this run live 30 days: the
           issuer's setting), 99 % funded and 1 % with an empty wallet (their fares become
           debts); the clock is the run's own (a manual clock), so the taps can be spread over
           the past days;
  taps     ``taps`` taps made by the device SIMULATOR's arithmetic (each token's limited-use key,
           amount 0 as at a gate), trips one after another per rider (bus 40 %, metro 60 %),
           5 % of them sent twice (duplicates), each validator's taps shuffled (out of order);
  upload   every validator uploads its taps through ``Transit.upload`` (the use case behind
           ``POST /v1/transit/validator/uploads``), timed from the first call to the last
           return: every tap verified, deduplicated, priced, posted in ledger batches;
  checks   every unique tap accepted, every duplicate answered so; ``Ledger.verify()`` clean;
           the riders' loss plus the debts equals the operators' fares.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import random
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text

from mobipay.app.bootstrap import Container, build
from mobipay.app.migrate import upgrade
from mobipay.instore import nfc
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings
from mobipay.transit.service import FARES_RECEIVABLE, TapIn, Validator
from mobipay.transit.tables import trips
from mobipay.wallet.model import OtpPurpose

TARGET = 10.0
FUNDING = 5_000_000  # fen per funded rider
STATIONS = 12
BUS_READERS = 8


def _api_bench() -> Any:
    import api_bench

    return api_bench


@dataclasses.dataclass
class Rider:
    user_id: str
    account: str
    token_id: str
    luk: Any
    city: str
    atc: int = 0


@dataclasses.dataclass
class City:
    name: str
    gates: list[tuple[Validator, Validator]]  # (entry, exit) per station
    readers: list[Validator]


async def _network(c: Container, stamp: str) -> list[City]:
    t = c.transit
    cities = []
    for city, metro in (("北京", True), ("上海", True), ("广州", False)):
        gates = []
        if metro:
            op = await t.add_operator(city, f"{city}地铁 bench {stamp}", "metro", "6222020000999900001")
            line = await t.add_line(op.id, "1号线")
            for i in range(STATIONS):
                st = await t.add_station(line.id, f"站{i}", i * 2_700)
                e, _ = await t.register_validator(op.id, line.id, "entry", f"站{i} 进", station_id=st.id)
                x, _ = await t.register_validator(op.id, line.id, "exit", f"站{i} 出", station_id=st.id)
                gates.append((e, x))
        bus = await t.add_operator(city, f"{city}公交 bench {stamp}", "bus", "6222020000999900002")
        route = await t.add_line(bus.id, "1路")
        readers = [(await t.register_validator(bus.id, route.id, "flat", f"车{i}"))[0] for i in range(BUS_READERS)]
        cities.append(City(city, gates, readers))
    return cities


async def _riders(c: Container, clock: ManualClock, count: int, stamp: str, cities: list[City],
                  log: Callable[[str], None]) -> list[Rider]:
    c.nfc_tokens.policy = dataclasses.replace(c.nfc_tokens.policy, key_ttl=timedelta(days=30), max_tokens=10**6)
    gate = asyncio.Semaphore(8)
    base = int(stamp, 16) % 9_000_000

    msisdns = [f"+86137{(base + i) % 100_000_000:08d}" for i in range(count)]

    async def sign_up(msisdn: str) -> Any:
        async with gate:
            user = await c.wallet.create_user(msisdn, actor="bench", reason="transit benchmark")
            await c.wallet.request_otp(msisdn, OtpPurpose.LOGIN)
            return user

    users = await asyncio.gather(*(sign_up(m) for m in msisdns))
    codes: dict[str, str] = {}
    async with c.db.begin() as conn:
        for (payload,) in await conn.execute(text(
                "SELECT payload FROM outbox_messages WHERE topic = 'sms.send' AND payload LIKE '%otp.login%' "
                "ORDER BY created_at, id")):
            p = json.loads(payload)
            codes[p["to"]] = str(p["params"]["code"])

    async def one(i: int) -> Rider:
        msisdn, user = msisdns[i], users[i]
        async with gate:
            session = await c.wallet.login(msisdn, device_id=f"bench-{stamp}", device_name="bench",
                                           code=codes[msisdn])
            me = await c.wallet.authenticate(session.access_token)
            token, _ = await c.nfc_tokens.provision(me, "hce", idempotency_key=f"bench-{stamp}")
        return Rider(user.id, user.account_code, token.id, nfc.keyed(c.nfc_tokens.luk(token.id, 1)),
                     cities[i % len(cities)].name)

    riders = await asyncio.gather(*(one(i) for i in range(count)))
    funded = [r for i, r in enumerate(riders) if i % 100 != 99]  # 1 % of riders with nothing in the wallet
    for r in await c.ledger.post_batch([Transfer(f"bench-transit:{stamp}:{x.user_id}", (
            Leg.debit(BANK_SETTLEMENT, FUNDING), Leg.credit(x.account, FUNDING)), "cash_in") for x in funded]):
        if not r.ok:
            raise SystemExit(f"funding refused: {r.error}")
    log(f"set-up: {count} riders with a token, {len(funded)} funded")
    return list(riders)


def _taps(riders: list[Rider], cities: list[City], total: int, start: datetime,
          rng: random.Random) -> tuple[dict[str, list[TapIn]], int]:
    by_city = {c.name: c for c in cities}
    out: dict[str, list[TapIn]] = {}
    unique = 0
    per = max(2, total // len(riders))
    for r in riders:
        city = by_city[r.city]
        at = start + timedelta(seconds=rng.randrange(3600))
        made = 0
        while made < per and unique < total:
            if city.gates and rng.random() < 0.6 and made + 2 <= per:
                a, b = rng.sample(range(len(city.gates)), 2)
                legs = [(city.gates[a][0], at), (city.gates[b][1], at + timedelta(minutes=rng.randrange(8, 50)))]
            else:
                legs = [(rng.choice(city.readers), at)]
            for v, when in legs:
                r.atc += 1
                un = f"{rng.getrandbits(32):08X}"
                data = nfc.tap_data(amount=0, currency=nfc.CURRENCY_CNY, day=when.astimezone(SHANGHAI).date(),
                                    unpredictable_number=un, atc=r.atc, cvm=1, terminal_id=v.id)
                out.setdefault(v.id, []).append(TapIn(r.token_id, 1, r.atc, when, un, 1,
                                                      nfc.cryptogram(r.luk, data)))
                made += 1
                unique += 1
            at = legs[-1][1] + timedelta(minutes=rng.randrange(3, 20))
    return out, unique


async def _run(url: str, total: int, log: Callable[[str], None], reference: float) -> dict[str, Any]:
    real_now = datetime.now(UTC).replace(microsecond=0)
    clock = ManualClock(real_now - timedelta(days=9))
    c = build(Settings(database_url=url), clock=clock)
    rng = random.Random(20)
    stamp = secrets.token_hex(4)
    try:
        await c.ensure_system_accounts()
        started = time.monotonic()
        cities = await _network(c, stamp)
        riders = await _riders(c, clock, max(100, min(2_000, total // 400)), stamp, cities, log)
        log(f"set-up: {time.monotonic() - started:.1f} s; making {total:,} taps …")
        by_validator, unique = _taps(riders, cities, total, clock.now() + timedelta(minutes=10), rng)
        dupes = 0
        validators = {v.id: v for city in cities for pair in city.gates for v in pair} | {
            v.id: v for city in cities for v in city.readers}
        keys = list(by_validator)
        weights = [len(by_validator[k]) for k in keys]
        for vid in rng.choices(keys, weights, k=round(unique * 5 / 95)):  # 5 % of what is sent: duplicates
            by_validator[vid].append(rng.choice(by_validator[vid]))
            dupes += 1
        for taps in by_validator.values():
            rng.shuffle(taps)
        clock.set(real_now)
        accounts = sorted({r.account for r in riders})
        before = sum(a.balance for a in (await c.ledger.accounts(accounts)).values())
        order = list(by_validator)
        rng.shuffle(order)
        sent = sum(len(x) for x in by_validator.values())
        log(f"upload: {sent:,} taps ({unique:,} unique, {dupes:,} duplicates) from {len(order)} validators …")
        t0 = time.perf_counter()
        accepted = duplicate = refused = 0
        for vid in order:
            for res in await c.transit.upload(validators[vid], by_validator[vid]):
                accepted += res.result == "accepted"
                duplicate += res.result == "duplicate"
                refused += res.result == "refused"
        upload_s = time.perf_counter() - t0
        log(f"upload: {upload_s:.1f} s; verify …")
        report = await c.ledger.verify()
        after = sum(a.balance for a in (await c.ledger.accounts(accounts)).values())
        ops = [op.account_code for op in await c.transit.operators() if stamp in op.name]
        earned = sum(a.balance for a in (await c.ledger.accounts(ops)).values())
        async with c.db.begin() as conn:
            debts = int((await conn.execute(select(func.coalesce(func.sum(trips.c.fare), 0)).where(
                trips.c.state == "debt", trips.c.user_id.in_([r.user_id for r in riders])))).scalar_one())
            n_debt = int((await conn.execute(select(func.count()).select_from(trips).where(
                trips.c.state == "debt", trips.c.user_id.in_([r.user_id for r in riders])))).scalar_one())
        receivable = (await c.ledger.accounts([FARES_RECEIVABLE.code]))[FARES_RECEIVABLE.code].balance
    finally:
        await c.close()
    tps = sent / upload_s if upload_s else 0.0
    ratio = tps / reference if reference else math.nan
    balanced = (before - after) + debts == earned
    result = {"pgbench_tps": round(reference, 1), "taps": sent, "unique": unique, "accepted": accepted,
              "duplicates": duplicate, "refused": refused, "upload_seconds": round(upload_s, 2),
              "taps_per_s": round(tps, 1), "ratio": round(ratio, 2), "debt_trips": n_debt, "debts": debts,
              "receivable": receivable, "verify_ok": report.ok, "balances_match": balanced}
    result["ok"] = accepted == unique and duplicate == sent - unique and refused == 0 and report.ok and balanced
    log(f"\n{'scenario':<40}{'taps/s':>10}{'ratio':>8}  target")
    log(f"{'pgbench TPC-B (reference)':<40}{reference:>10,.0f}{1:>8.2f}")
    log(f"{f'transit upload, {sent:,} taps':<40}{tps:>10,.0f}{ratio:>8.2f}  >= {TARGET}"
        f"{'' if ratio >= TARGET else '  <-- MISSED'}")
    log(f"verify after the run: {'clean' if report.ok else 'DIFFERENCES FOUND'}; riders lost {before - after} "
        f"fen + debts {debts} = operators' fares {earned}: {'match' if balanced else 'MISMATCH'}")
    return result


def main(url: str, seconds: int, log: Callable[[str], None] = print, taps: int = 1_000_000) -> dict[str, Any]:
    if not url.startswith("postgresql"):
        raise SystemExit("the transit benchmark needs PostgreSQL: set MOBIPAY_DATABASE_URL="
                         "postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_transit")
    ab = _api_bench()
    from mobipay.platform.observability import configure_logging

    configure_logging("WARNING", json_logs=False)
    reference: float = ab._ledger_bench().pgbench_tps(url, seconds, log)
    asyncio.run(ab._ensure_database(url))
    upgrade(url)
    result: dict[str, Any] = asyncio.run(_run(url, taps, log, reference))
    print("RESULT " + json.dumps(result), flush=True)
    return result


if __name__ == "__main__":  # pragma: no cover
    main(os.environ["MOBIPAY_DATABASE_URL"], 10, taps=int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
