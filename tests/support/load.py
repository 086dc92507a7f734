"""Load for the reliability suites: subscribers' phones and a merchant's server as HTTP
clients (httpx, asyncio) of a real ``mobipay serve``, each operation carrying its
idempotency key and retried with the same key until it is answered.

An operation is *answered* by any status below 500 other than ``REQUEST_IN_PROGRESS``;
a connection error, a timeout or a 5xx is retried (with backoff, to a deadline: past it
the operation is *lost* and the suite fails). An expired access token is refreshed; a
session the server revoked (a refresh whose answer was lost, then presented again) signs
in again with the PIN. Every answer is kept, so the checks can hold the books to what the
clients were told.

The set-up (subscribers with funded, tier III wallets, a bound debit card and a session
each; a merchant with an HMAC app) runs in the test process through the services, as the
API benchmark's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import update

from mobipay.app.bootstrap import build
from mobipay.bills.reference_data import shipped_billers
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.msisdn import national_number
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.merchants.model import credit_code_check_char
from mobipay.merchants.signing import sign_hmac
from mobipay.platform.config import Settings
from mobipay.wallet.model import check_pin, id_card_check_char, luhn_complete
from mobipay.wallet.tables import users

FUNDING = 2_000_000  # fen per subscriber (20,000 CNY)
BILLER = "POWER_BJ"  # optional fetch, any amount over the minimum, open all day
#: Money-moving kinds and what each is answered with when it is taken.
ORDER_KINDS = ("topup", "cash_in", "bill")


@dataclass
class Phone:
    """A subscriber's phone: one task drives it, so its session is never used twice at once."""

    msisdn: str
    user_id: str
    account: str
    pin: str
    card_id: str
    access: str = ""
    refresh: str = ""
    device: str = ""


@dataclass
class Merchant:
    id: str
    account: str
    app_id: str
    key: str
    notify_url: str


@dataclass
class Op:
    """One operation a client meant to make, with every answer it got."""

    kind: str  # transfer | topup | cash_in | bill | trade | read | sms
    key: str
    payer: str  # msisdn
    amount: int
    to: str = ""
    status: int | None = None  # the final answer's status (None: never answered)
    body: dict[str, Any] = field(default_factory=dict)
    ids: set[str] = field(default_factory=set)  # ids of every 2xx answer (the same key: one object)
    trade_no: str = ""
    attempts: int = 0
    request: tuple[str, str, dict[str, Any] | None] = ("", "", None)  # method, path, body (to replay it)
    answered_at: float = 0.0  # time.monotonic() of the final answer (the failover suite's write gap)

    @property
    def acked(self) -> bool:
        """The client was told its request was taken (for an order: placed, whatever came of it)."""
        if self.status is None:
            return False
        if self.kind in ORDER_KINDS:
            return self.status < 300 or self.order_id != ""
        return self.status < 300

    @property
    def order_id(self) -> str:
        if self.kind not in ORDER_KINDS or self.status is None:
            return ""
        return str(self.body.get("id") or self.body.get("order_id") or "")


@dataclass
class Tally:
    tried: int = 0  # operations started
    requests: int = 0  # HTTP requests sent, retries included
    retries: int = 0
    five_xx: int = 0
    transport_errors: int = 0
    refreshed: int = 0
    signed_in_again: int = 0
    lost: int = 0
    statuses: Counter[int] = field(default_factory=Counter)


class Lost(Exception):
    """An operation not answered before its deadline."""


def pin_for(msisdn: str) -> str:
    """A PIN per subscriber that the PIN rules accept (the same on every run)."""
    seed = int(msisdn[-6:])
    for k in range(1, 100):
        try:
            return check_pin(f"{(seed * 7919 + k * 104_729) % 1_000_000:06d}", msisdn)
        except MobipayError:
            continue
    raise AssertionError(f"no acceptable PIN for {msisdn}")


async def prepare(settings: Settings, count: int, site_url: str) -> tuple[list[Phone], Merchant]:
    """Subscribers (funded, tier III, a bound debit card, signed in) and a merchant app."""
    c = build(settings)
    try:
        await c.ensure_system_accounts()
        await c.bills.import_billers([b for b in shipped_billers() if b.code == BILLER], actor="test",
                                     reason="reliability suite")
        phones: list[Phone] = []
        numbers = [f"+86135{77_000_000 + i:08d}" for i in range(count)]
        for i, msisdn in enumerate(numbers):
            user = await c.wallet.create_user(msisdn, actor="test", reason="reliability suite")
            pin = pin_for(msisdn)
            await c.wallet.set_pin(msisdn, pin)
            tokens = await c.wallet.login(msisdn, device_id=f"phone-{i}", device_name="reliability", pin=pin)
            me = await c.wallet.authenticate(tokens.access_token)
            ident = f"11010519800101{i:03d}"
            card = await c.banking.bind_card(me, luhn_complete("622202" + f"{i:012d}"), "王测试",
                                             ident + id_card_check_char(ident))
            phones.append(Phone(msisdn, user.id, user.account_code, pin, card.id, tokens.access_token,
                                tokens.refresh_token, f"phone-{i}"))
        async with c.db.begin() as conn:  # tier III: the lifetime cap of tier I would stop the load
            await conn.execute(update(users).where(users.c.msisdn.in_(numbers)).values(tier=3))
        results = await c.ledger.post_batch([
            Transfer(f"reliability:fund:{p.msisdn}", (Leg.debit(BANK_SETTLEMENT, FUNDING),
                                                      Leg.credit(p.account, FUNDING)), "cash_in") for p in phones])
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
        first17 = "9131000" + f"{secrets.randbelow(10**10):010d}"
        m = await c.merchants.apply(name="可靠性测试商店", credit_code=first17 + credit_code_check_char(first17),
                                    legal_person="张经理", contact="+8613800138000", mcc="5311",
                                    website="https://shop.example", settlement_account="6222020000001111")
        url = f"{site_url}/notify"
        app_id, key = await c.merchants.create_app(m.id, "HMAC", notify_url=url)
        assert key is not None
        return phones, Merchant(m.id, m.account_code, app_id, key, url)
    finally:
        await c.close()


#: The share of each kind of operation in the load (weights).
KILL9_MIX = {"transfer": 50, "topup": 12, "cash_in": 8, "bill": 10, "trade": 15, "read": 5, "sms": 4}
SOAK_MIX = {"transfer": 35, "topup": 10, "cash_in": 5, "bill": 10, "trade": 15, "read": 21, "sms": 4}


class Load:
    """Phones making operations until stopped; run it in a thread (:meth:`start`)."""

    def __init__(self, api: str, phones: list[Phone], merchant: Merchant, *, mix: dict[str, int], seed: int,
                 texter: Callable[[str, str], None] | None = None, op_deadline_s: float = 180.0,
                 request_timeout_s: float = 30.0, think_s: float = 0.0) -> None:
        self.api = api
        self.texter = texter  # a handset on Kannel's fake SMSC: (from, text)
        self.texts: Counter[str] = Counter()  # SMS commands sent, per number
        self.phones = phones
        self.merchant = merchant
        self.mix = mix
        self.rng = random.Random(seed)
        self.op_deadline_s = op_deadline_s
        self.request_timeout_s = request_timeout_s
        self.think_s = think_s
        self.ops: list[Op] = []
        self.tally = Tally()
        self.run_id = secrets.token_hex(3)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._n = 0

    # ------------------------------------------------------------------ control (from the test's thread)

    @property
    def acked(self) -> int:
        return sum(1 for op in self.ops if op.acked)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="load", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 300) -> None:
        """No new operations; wait for those in flight to be answered (they retry to their deadline)."""
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():
            raise TimeoutError("the load did not finish its operations in flight")
        if self._error is not None:
            raise self._error

    def check(self) -> None:
        """Raise what failed inside the load, if anything did."""
        if self._error is not None:
            raise self._error

    def replay(self, at_most: int = 1500) -> list[str]:
        """Send acknowledged money requests once more with their keys (after the run; all of
        them, or an even sample of ``at_most``): each must be answered as a replay naming the
        same transfer, order or trade (an order pending at first: with its outcome since), and
        move nothing (the caller checks the books again).
        Returns what was answered otherwise."""

        async def main() -> list[str]:
            wrong: list[str] = []
            gate = asyncio.Semaphore(8)
            by_msisdn = {p.msisdn: p for p in self.phones}
            async with httpx.AsyncClient(base_url=self.api, timeout=self.request_timeout_s) as http:

                async def again(op: Op) -> None:
                    async with gate:
                        method, path, body = op.request
                        headers = {"Authorization": f"Bearer {by_msisdn[op.payer].access}"}
                        if op.kind != "trade":
                            headers["Idempotency-Key"] = op.key
                        r = await http.request(method, path, json=body, headers=headers)
                        data = _json(r)
                        named = str(data.get("id") or data.get("order_id") or "")
                        same = named != "" and named in op.ids | {op.order_id}
                        replayed = r.status_code == 200 and (op.kind == "trade" or
                                                             r.headers.get("Idempotent-Replayed") == "true")
                        # a refused order is refused again (422 naming it); one that was pending (202)
                        # answers what became of it since: done (200, replayed) or refused (422)
                        refused_again = r.status_code == 422 and op.status in (202, 422)
                        if not same or not (replayed or refused_again):
                            wrong.append(f"{op.kind} {op.key}: first {op.status} {sorted(op.ids)}, again "
                                         f"{r.status_code} {data}")

                taken = [op for op in self.ops if op.acked and op.kind in ("transfer", "trade", *ORDER_KINDS)]
                step = max(1, -(-len(taken) // at_most))
                await asyncio.gather(*(again(op) for op in taken[::step]))
            return wrong

        return asyncio.run(main())

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:
            self._error = exc

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=len(self.phones) + 4, max_keepalive_connections=len(self.phones) + 4)
        async with httpx.AsyncClient(base_url=self.api, timeout=self.request_timeout_s, limits=limits) as http:
            self.http = http
            await asyncio.gather(*(self._phone(p, random.Random(self.rng.random())) for p in self.phones))

    async def _phone(self, phone: Phone, rng: random.Random) -> None:
        kinds, weights = list(self.mix), list(self.mix.values())
        while not self._stop.is_set():
            kind = rng.choices(kinds, weights)[0]
            await getattr(self, f"_{kind}")(phone, rng)
            if self.think_s:
                await asyncio.sleep(rng.uniform(0, 2 * self.think_s))

    def _op(self, kind: str, payer: Phone, amount: int, to: str = "") -> Op:
        self._n += 1
        op = Op(kind, f"{self.run_id}-{kind}-{self._n}", payer.msisdn, amount, to)
        self.ops.append(op)
        self.tally.tried += 1
        return op

    # ------------------------------------------------------------------ the operations

    async def _transfer(self, phone: Phone, rng: random.Random) -> None:
        to = rng.choice([p for p in self.phones if p is not phone])
        op = self._op("transfer", phone, rng.randint(1, 99), to.msisdn)
        await self._send(op, phone, "POST", "/v1/transfers", {
            "to": national_number(to.msisdn), "amount": {"amount": op.amount, "currency": "CNY"}})

    async def _topup(self, phone: Phone, rng: random.Random) -> None:
        # mostly one's own number (the home operator's billing system), else a Unicom number (the aggregator)
        target = phone.msisdn if rng.random() < 0.7 else f"+86130{rng.randrange(10**8):08d}"
        op = self._op("topup", phone, rng.choice((1_000, 2_000, 3_000)), target)
        await self._send(op, phone, "POST", "/v1/topups", {
            "msisdn": national_number(target), "amount": {"amount": op.amount, "currency": "CNY"}})

    async def _cash_in(self, phone: Phone, rng: random.Random) -> None:
        op = self._op("cash_in", phone, rng.randint(10, 50) * 100)
        await self._send(op, phone, "POST", "/v1/cash-ins", {
            "card_id": phone.card_id, "amount": {"amount": op.amount, "currency": "CNY"}})

    async def _bill(self, phone: Phone, rng: random.Random) -> None:
        op = self._op("bill", phone, rng.randint(1, 5) * 100, f"{rng.randrange(10**10):010d}")
        await self._send(op, phone, "POST", "/v1/bill-payments", {
            "biller": BILLER, "customer_id": op.to, "amount": {"amount": op.amount, "currency": "CNY"},
            "confirm_duplicate": True})

    async def _trade(self, phone: Phone, rng: random.Random) -> None:
        """The merchant's server creates the trade (signed; ``out_trade_no`` is its key), the
        buyer pays it from the wallet (the trade is the key: paid once however often pressed)."""
        op = self._op("trade", phone, rng.randint(1, 20) * 100)
        created = await self._merchant_call(op, "/v1/merchant/trades", out_trade_no=op.key, total_amount=op.amount,
                                            subject="可靠性测试", notify_url=self.merchant.notify_url)
        if created.status_code != 201:
            op.status, op.body = created.status_code, _json(created)
            return
        op.trade_no = str(created.json()["trade_no"])
        await self._send(op, phone, "POST", f"/v1/trades/{op.trade_no}/pay", {})
        if op.status == 200 and op.body.get("state") != "TRADE_SUCCESS":
            raise AssertionError(f"a paid trade answered {op.body}")

    async def _sms(self, phone: Phone, rng: random.Random) -> None:
        """A balance query by SMS (余额): Kannel passes it to the server, the worker answers."""
        if self.texter is None:
            return
        op = self._op("sms", phone, 0)
        self.texter(national_number(phone.msisdn), rng.choice(("YE", "余额", "BAL")))
        self.texts[phone.msisdn] += 1
        op.status = 202  # the handset cannot know more; the checks find the message and its answer

    async def _read(self, phone: Phone, rng: random.Random) -> None:
        op = self._op("read", phone, 0)
        path = rng.choice(("/v1/me", "/v1/me/transactions?limit=5", "/v1/topups"))
        await self._send(op, phone, "GET", path, None)

    # ------------------------------------------------------------------ retrying

    async def _send(self, op: Op, phone: Phone, method: str, path: str, body: dict[str, Any] | None) -> None:
        op.request = (method, path, body)
        deadline = time.monotonic() + self.op_deadline_s
        delay = 0.05
        while True:
            headers = {"Authorization": f"Bearer {phone.access}"}
            if method == "POST" and op.kind != "trade":
                headers["Idempotency-Key"] = op.key
            answer = await self._request(op, method, path, body, headers)
            if answer is not None:
                data = _json(answer)
                code = data.get("code")
                if answer.status_code == 401 and code == "SESSION_INVALID":
                    await self._renew(phone, deadline)
                    continue
                if not (answer.status_code == 409 and code == "REQUEST_IN_PROGRESS") and answer.status_code != 429:
                    op.status, op.body, op.answered_at = answer.status_code, data, time.monotonic()
                    if answer.status_code < 300 and "id" in data:
                        op.ids.add(str(data["id"]))
                    return
            if time.monotonic() > deadline:
                self.tally.lost += 1
                raise Lost(f"{op.kind} {op.key} not answered within {self.op_deadline_s} s")
            self.tally.retries += 1
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 2)

    async def _request(self, op: Op, method: str, path: str, body: dict[str, Any] | None,
                       headers: dict[str, str]) -> httpx.Response | None:
        """One try: the response, or None for what is retried (no answer, or a 5xx)."""
        self.tally.requests += 1
        op.attempts += 1
        try:
            answer = await self.http.request(method, path, json=body, headers=headers)
        except httpx.TransportError:
            self.tally.transport_errors += 1
            return None
        self.tally.statuses[answer.status_code] += 1
        if answer.status_code >= 500:
            self.tally.five_xx += 1
            return None
        return answer

    async def _renew(self, phone: Phone, deadline: float) -> None:
        """A new access token: rotate the refresh token, or sign in again with the PIN when
        the session is gone (a rotation whose answer we lost makes our refresh token stale)."""
        delay = 0.05
        while time.monotonic() < deadline:
            try:
                r = await self.http.post("/v1/sessions/refresh", json={"refresh_token": phone.refresh})
                if r.status_code == 200:
                    self.tally.refreshed += 1
                    phone.access, phone.refresh = r.json()["access_token"], r.json()["refresh_token"]
                    return
                if r.status_code < 500:
                    r = await self.http.post("/v1/sessions", json={
                        "msisdn": national_number(phone.msisdn), "pin": phone.pin, "device_id": phone.device})
                    if r.status_code == 201:
                        self.tally.signed_in_again += 1
                        phone.access, phone.refresh = r.json()["access_token"], r.json()["refresh_token"]
                        return
                    if r.status_code < 500:
                        raise AssertionError(f"signing in again was refused: {r.status_code} {r.text}")
            except httpx.TransportError:
                self.tally.transport_errors += 1
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 2)
        self.tally.lost += 1
        raise Lost(f"no new session for {phone.msisdn} before the deadline")

    async def _merchant_call(self, op: Op, path: str, **params: object) -> httpx.Response:
        """A signed merchant request, retried until answered; each try is signed anew (a new
        nonce and timestamp: a nonce is accepted once), the business key stays the same."""
        deadline = time.monotonic() + self.op_deadline_s
        delay = 0.05
        while True:
            body: dict[str, Any] = {"app_id": self.merchant.app_id, "timestamp": str(int(time.time())),
                                    "nonce": secrets.token_hex(8), "sign_type": "HMAC",
                                    **{k: str(v) for k, v in params.items()}}
            body["sign"] = sign_hmac(body, self.merchant.key.encode())
            answer = await self._request(op, "POST", path, body, {})
            if answer is not None:
                return answer
            if time.monotonic() > deadline:
                self.tally.lost += 1
                raise Lost(f"merchant call {path} for {op.key} not answered within {self.op_deadline_s} s")
            self.tally.retries += 1
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 2)


def _json(response: httpx.Response) -> dict[str, Any]:
    with contextlib.suppress(ValueError):
        data = response.json()
        if isinstance(data, dict):
            return data
        return {"items": data}
    return {"text": response.text[:200]}
