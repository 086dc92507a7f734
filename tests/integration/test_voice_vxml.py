"""The VoiceXML front over HTTP, as the operator's IVR would drive it, on SQLite and
PostgreSQL: every document is validated against the W3C VoiceXML 2.1 DTD kept in the repo,
and every money question is answered from the ledger before and after."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from lxml import etree

from mobipay.app.bootstrap import build
from mobipay.app.http import create_app
from mobipay.channels.voice.prompts import PromptCache
from mobipay.channels.voice.vxml import NS, validate
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings
from tests.conftest import BILLER_SECRET, TELCO_SECRET

ALICE, BOB, CAROL, DAVE = "13800138000", "13900139000", "13700137000", "13600136000"  # DAVE has no wallet
PIN = "135790"
TOKEN = "test-ivr-token-0123456789abcdef"
V = {"v": NS}


def _serve(settings: Settings, clock: ManualClock | None = None) -> Iterator[TestClient]:
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as c:

        async def seed() -> None:
            for number, money in ((ALICE, 100_000), (BOB, 0), (CAROL, 5_000)):
                user = await container.wallet.create_user(number, actor="test", reason="voice")
                await container.wallet.set_pin(number, PIN)
                if money:
                    assert (await container.ledger.post(Transfer(
                        f"fund-{number}", (Leg.debit(BANK_SETTLEMENT, money), Leg.credit(user.account_code, money)),
                        "cash_in"))).ok
            await container.wallet.set_frozen(CAROL, True, actor="test", reason="voice: frozen account")

        c.portal.call(seed)
        yield c
        c.portal.call(container.close)


@pytest.fixture
def client(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("MOBIPAY_VOICE_IVR_TOKEN", TOKEN)
    monkeypatch.setenv("MOBIPAY_VOICE_PROMPT_DIR", str(tmp_path / "prompts"))
    yield from _serve(Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                               merchant_key_file=tmp_path / "platform.pem", env="test"))


@pytest.fixture
def paying_client(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, telcos: dict[str, str],
                  billers_url: str) -> Iterator[TestClient]:
    """With the operator's billing system, the aggregator and the billers (SIMULATORS), at noon."""
    monkeypatch.setenv("MOBIPAY_VOICE_IVR_TOKEN", TOKEN)
    monkeypatch.setenv("MOBIPAY_VOICE_PROMPT_DIR", str(tmp_path / "prompts"))
    settings = Settings(_env_file=None, database_url=db_url, env="test",  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem", operator_billing_url=telcos["operator_billing"],
                        aggregator_url=telcos["topup_aggregator"], operator_billing_secret=TELCO_SECRET,
                        aggregator_secret=TELCO_SECRET, billers_url=billers_url, billers_secret=BILLER_SECRET,
                        partner_timeout_s=2.0)
    yield from _serve(settings, ManualClock(datetime.now(SHANGHAI).replace(hour=12, minute=0)))


def balance(client: TestClient, number: str) -> int:
    c: Any = client.app.state.container  # type: ignore[attr-defined]
    return int(client.portal.call(lambda: c.ledger.account(f"wallet:+86{number}")).available)


class Turn:
    """One VoiceXML document as the IVR would see it."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        problems = validate(raw)
        assert problems == [], (problems, raw.decode())
        self.root = etree.fromstring(raw)
        assert self.root.get("version") == "2.1"

    @property
    def lang(self) -> str:
        return str(self.root.get("{http://www.w3.org/XML/1998/namespace}lang"))

    @property
    def words(self) -> str:
        """Everything the caller hears in this turn (the fallback words of clips included)."""
        return "".join("".join(p.itertext()) for p in self.root.iterfind(".//v:prompt", V)).strip()

    @property
    def state(self) -> str:
        var = self.root.find(".//v:var[@name='s']", V)
        assert var is not None, "this turn expects no input"
        return str(var.get("expr")).strip("'")

    @property
    def hangs_up(self) -> bool:
        return self.root.find(".//v:disconnect", V) is not None and self.root.find(".//v:field", V) is None

    @property
    def accepted_keys(self) -> list[str]:
        return [str(i.text) for i in self.root.iterfind(".//v:grammar/v:rule/v:one-of/v:item", V) if i.text]


class Call:
    def __init__(self, client: TestClient, ani: str, lang: str = "zh") -> None:
        self.client = client
        r = client.post("/voice/vxml/start", data={"token": TOKEN, "ani": ani, "lang": lang})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/voicexml+xml")
        self.turn = Turn(r.content)
        self.heard = [self.turn.words]

    def press(self, keys: str) -> Turn:
        """Keys as the IVR submits a filled field (DTMF utterances come space separated)."""
        return self._next({"s": self.turn.state, "keys": " ".join(keys)})

    def silence(self) -> Turn:
        return self._next({"s": self.turn.state}, "?ev=noinput")

    def _next(self, data: dict[str, str], query: str = "") -> Turn:
        r = self.client.post(f"/voice/vxml/next{query}", data=data)
        assert r.status_code == 200, r.text
        self.turn = Turn(r.content)
        self.heard.append(self.turn.words)
        return self.turn


def test_documents_are_valid_voicexml_21_and_the_validator_rejects_invalid_ones(client: TestClient) -> None:
    call = Call(client, f"tel:+86{ALICE}")
    assert call.turn.lang == "zh-CN" and "请输入六位支付密码" in call.turn.words
    field = call.turn.root.find(".//v:field", V)
    assert field is not None and field.find("v:filled/v:submit", V) is not None
    assert field.find("v:noinput/v:submit", V).get("next").endswith("/voice/vxml/next?ev=noinput")  # type: ignore[union-attr]
    menu = call.press(PIN)
    assert sorted(menu.accepted_keys) == sorted("*0123456789")  # 8: my insurance policies
    # the validator is no rubber stamp: a <field> outside a form, a missing version and a bad
    # enumerated value are all refused by the W3C DTD
    bad = call.turn.raw.replace(b'<form id="turn">', b'<field name="x"/><form id="turn">')
    assert any("field" in p for p in validate(bad))
    assert validate(call.turn.raw.replace(b'version="2.1"', b"")) != []
    assert validate(call.turn.raw.replace(b'method="post"', b'method="put"')) != []
    assert validate(call.turn.raw.replace(b'name="timeout" value="', b'name="timeout" value="soon')) != []


def test_balance_then_transfer_moves_the_money_once(client: TestClient) -> None:
    before = balance(client, ALICE), balance(client, BOB)
    call = Call(client, f"sip:{ALICE}@ivr.operator.example;user=phone")
    call.press(PIN)
    assert "您的可用余额为1000元" in call.press("1").words
    call.press("3")
    call.press(BOB)
    confirm = call.press("25")
    assert f"向{BOB}转账25元" in confirm.words
    sent = confirm.state
    done = call.press("1")
    assert "转账已完成" in done.words and "查询余额请按1" in done.words
    assert (balance(client, ALICE), balance(client, BOB)) == (before[0] - 2_500, before[1] + 2_500)
    # the IVR re-sends the same request (a retried fetch): same call state, same key, no second payment
    r = client.post("/voice/vxml/next", data={"s": sent, "keys": "1"})
    assert "转账已完成" in Turn(r.content).words
    assert (balance(client, ALICE), balance(client, BOB)) == (before[0] - 2_500, before[1] + 2_500)
    assert "您的可用余额为975元" in call.press("1").words
    bye = call.press("0")
    assert bye.hangs_up and "再见" in bye.words


def test_wrong_pin_is_counted_then_locks_with_its_message(client: TestClient) -> None:
    before = balance(client, ALICE)
    call = Call(client, ALICE)
    assert "支付密码错误，还可尝试4次" in call.press("000000").words
    assert "还可尝试3次" in call.press("000001").words
    third = call.press("000002")
    assert third.hangs_up and "还可尝试2次" in third.words  # three tries per call
    again = Call(client, ALICE)
    assert "还可尝试1次" in again.press("000003").words
    locked = again.press("000004")
    assert locked.hangs_up and "密码错误次数过多，支付已锁定" in locked.words
    third_call = Call(client, ALICE)
    refused = third_call.press(PIN)  # even the right PIN, while locked
    assert refused.hangs_up and "支付已锁定" in refused.words
    assert balance(client, ALICE) == before


def test_an_unknown_caller_is_told_only_about_their_own_line(client: TestClient) -> None:
    call = Call(client, DAVE)
    assert call.turn.hangs_up and "本号码尚未开通钱包" in call.turn.words
    assert call.turn.root.find(".//v:var[@name='s']", V) is None  # nothing to continue with
    for ani in ("anonymous", "sip:ivr@10.0.0.1", ""):
        assert "本号码尚未开通钱包" in Call(client, ani).turn.words


def test_a_transfer_sounds_the_same_whether_the_recipient_has_a_wallet_or_not(client: TestClient) -> None:
    heard = []
    for to in (BOB, DAVE):
        call = Call(client, ALICE)
        call.press(PIN)
        call.press("3")
        call.press(to)
        call.press("3")
        heard.append(call.press("1").words)
    assert heard[0] == heard[1] and "转账已完成" in heard[0]  # no hint that DAVE is not registered
    assert balance(client, ALICE) == 100_000 - 600


def test_a_frozen_caller_is_told_so_and_nothing_moves(client: TestClient) -> None:
    before = balance(client, CAROL)
    call = Call(client, CAROL)
    assert call.turn.hangs_up and "您的账户已冻结" in call.turn.words
    assert balance(client, CAROL) == before


def test_malformed_number_and_amount_are_refused_and_asked_again(client: TestClient) -> None:
    before = balance(client, ALICE), balance(client, BOB)
    call = Call(client, ALICE)
    call.press(PIN)
    call.press("3")
    again = call.press("12345")
    assert "手机号码不正确" in again.words and "请输入收款人手机号码" in again.words
    call.press(BOB)
    for bad in ("0", "1234567"):
        refused = call.press(bad)
        assert "金额不正确" in refused.words and "请输入转账金额" in refused.words
    assert (balance(client, ALICE), balance(client, BOB)) == before


def test_too_many_bad_entries_end_the_call_without_paying(client: TestClient) -> None:
    before = balance(client, ALICE)
    call = Call(client, ALICE)
    call.press(PIN)
    call.press("3")
    call.press(BOB)
    call.press("0")
    call.press("00")
    last = call.press("9999999")
    assert last.hangs_up and "金额不正确" in last.words and "再见" in last.words
    assert balance(client, ALICE) == before


def test_silence_reprompts_then_says_goodbye(client: TestClient) -> None:
    call = Call(client, ALICE)
    first = call.silence()
    assert "没有收到您的按键" in first.words and "请输入六位支付密码" in first.words and not first.hangs_up
    second = call.silence()
    assert "请输入六位支付密码" in second.words and not second.hangs_up
    third = call.silence()
    assert third.hangs_up and "再见" in third.words
    nomatch = Call(client, ALICE)
    nomatch.press(PIN)
    r = client.post("/voice/vxml/next?ev=nomatch", data={"s": nomatch.turn.state})
    assert "输入有误" in Turn(r.content).words


def test_english_prompt_set(client: TestClient) -> None:
    call = Call(client, ALICE, lang="en")
    assert call.turn.lang == "en-US" and "six digit PIN" in call.turn.words
    wrong = call.press("999999").words
    assert "Wrong PIN; 4 tries left. " in wrong
    call.press(PIN)
    balance = call.press("1").words
    assert "Your available balance is 1000 yuan." in balance
    for heard in (wrong, balance):  # sentences and words spoken apart, never run together
        assert not re.search(r"[.;,:][A-Za-z]|[a-z][A-Z]|[a-z]\d|\d[a-z]", heard), heard
    assert call.press("9").lang == "zh-CN"  # 9 switches language


def test_only_the_ivr_may_start_calls_and_states_cannot_be_forged(client: TestClient) -> None:
    assert client.post("/voice/vxml/start", data={"ani": ALICE}).status_code == 403
    assert client.post("/voice/vxml/start", data={"ani": ALICE, "token": "guess"}).status_code == 403
    ok = client.get(f"/voice/vxml/start?ani={ALICE}", headers={"X-IVR-Token": TOKEN})
    assert ok.status_code == 200
    state = Turn(ok.content).state
    forged = state[:-4] + ("AAAA" if not state.endswith("AAAA") else "BBBB")
    assert client.post("/voice/vxml/next", data={"s": forged, "keys": PIN}).status_code == 403
    assert client.post("/voice/vxml/next", data={"keys": PIN}).status_code == 403
    assert client.get("/voice/prompts/..%2Fmobipay.db").status_code == 404


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox"))
                    and os.environ.get("MOBIPAY_REQUIRE_POSTGRES") != "1",
                    reason="espeak-ng and sox are not installed (apt-get install -y espeak-ng sox); CI installs them")
def test_rendered_clips_are_served_to_the_ivr(client: TestClient, tmp_path: Path) -> None:
    PromptCache(tmp_path / "prompts").prerender()
    call = Call(client, ALICE)
    srcs = [a.get("src") for a in call.turn.root.iterfind(".//v:audio", V)]
    assert srcs and all(s and s.startswith("/voice/prompts/zh-") for s in srcs)
    wav = client.get(str(srcs[0]))
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF" and wav.headers["content-type"] == "audio/wav"
    assert "欢迎致电手机钱包" in call.turn.words  # the words stay as the clip's fallback


def test_top_up_own_phone_and_pay_a_saved_bill(paying_client: TestClient, telcos: dict[str, str]) -> None:
    client = paying_client
    c: Any = client.app.state.container  # type: ignore[attr-defined]
    price = c.topup.quote(ALICE, 5_000).price
    before = balance(client, ALICE)
    call = Call(client, ALICE)
    call.press(PIN)
    assert "为本机充值请按1" in call.press("2").words
    call.press("1")
    assert "为本机充值50元" in call.press("50").words
    assert "充值成功" in call.press("1").words
    assert balance(client, ALICE) == before - price
    assert httpx.get(f"{telcos['operator_billing']}/sim/numbers/+86{ALICE}").json()["balance"] == 5_000

    from mobipay.bills.reference_data import shipped_billers

    client.portal.call(lambda: c.bills.import_billers(shipped_billers(), actor="test", reason="voice"))
    me = client.portal.call(lambda: c.channel_actions.subscriber(ALICE))
    client.portal.call(lambda: c.saved_bills.save(me, "WATER_SH", "12345678", nickname="家里水费"))
    before = balance(client, ALICE)
    assert "家里水费请按1" in call.press("4").words
    confirm = call.press("1")
    assert "家里水费本期应缴" in confirm.words
    found = re.search(r"本期应缴([0-9.]+)元", confirm.words)  # the amount the biller asked for, as heard
    assert found
    due = round(float(found.group(1)) * 100)
    assert due > 0
    assert "缴费成功" in call.press("1").words
    assert balance(client, ALICE) == before - due
    lines = call.press("5").words  # the last transactions, newest first
    assert lines.index("缴费") < lines.index("话费充值")
