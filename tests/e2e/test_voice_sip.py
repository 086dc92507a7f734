"""Real calls to the SIP front: sipp (Debian's sip-tester) dials our user agent on loopback,
presses keys as RFC 4733 telephone-events replayed from sip-tester's recordings or as SIP
INFO, and must receive our BYE after the goodbye. We check what the caller heard (prompts
played to their end, RTP sent), and the money in the ledger before and after.

Scenarios: tests/e2e/sipp/call.xml with the keys put in place of its KEYS marker
(rfc4733_key.xml or info_key.xml per key). Every run uses free ports and ``-m 1 -timeout
35s -timeout_error``; each test stays under ~40 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mobipay.app.bootstrap import Container, build
from mobipay.channels.voice.prompts import PromptCache
from mobipay.channels.voice.sip import Heard, SipFront
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings

TOOLS = ("sipp", "espeak-ng", "sox")
REQUIRED = os.environ.get("MOBIPAY_REQUIRE_POSTGRES") == "1"  # CI: a missing tool fails instead of skipping
pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in TOOLS) and not REQUIRED,
                                reason="sipp, espeak-ng or sox missing (apt-get install -y sip-tester espeak-ng sox)")

SIPP_DIR = Path(__file__).parent / "sipp"
DTMF = Path("/usr/share/sip-tester")
ALICE, BOB, CAROL, DAVE = "13800138000", "13900139000", "13700137000", "13600136000"
PIN = "135790"


def udp_port(count: int = 1) -> int:
    """A free UDP port with ``count - 1`` free ports above it (even, for RTP)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1] & ~1
        if base + count >= 65535:
            continue
        socks = []
        try:
            for p in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free UDP ports")


def scenario(keys: list[str], how: str) -> str:
    """call.xml with ``keys`` pressed: "5", "#", "*", or "pNNN" for a pause of NNN ms."""
    body, cseq = [], 2
    for k in keys:
        if k.startswith("p"):
            body.append(f'<pause milliseconds="{int(k[1:])}"/>')
            continue
        if how == "rfc4733":
            name = {"#": "pound", "*": "star"}.get(k, k)
            pcap = str(DTMF / f"dtmf_2833_{name}.pcap")
            body.append((SIPP_DIR / "rfc4733_key.xml").read_text().replace("PCAP", pcap))
        else:
            body.append((SIPP_DIR / "info_key.xml").read_text().replace("KEY", k).replace("CSEQ", str(cseq)))
            cseq += 1
        body.append('<pause milliseconds="350"/>')  # recordings must not overlap
    return (SIPP_DIR / "call.xml").read_text().replace("<!--KEYS-->", "\n".join(body))


def entry(digits: str) -> list[str]:
    return [*digits, "#"]


@dataclass
class Dialed:
    rc: int
    output: str
    seconds: float
    heard: list[Heard]
    ended: str
    media: dict[str, Any]

    def whole(self, prompt: str) -> list[str]:
        return [h.text for h in self.heard if h.prompt == prompt and h.whole]

    def prompts(self) -> list[str]:
        return [h.prompt for h in self.heard]


async def dial(front: SipFront, workdir: Path, caller: str, keys: list[str], how: str = "rfc4733") -> Dialed:
    path = workdir / f"call-{time.monotonic_ns()}.xml"
    path.write_text(scenario(keys, how))
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        "sipp", f"127.0.0.1:{front.port}", "-sf", str(path), "-m", "1", "-timeout", "35s", "-timeout_error",
        "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(udp_port()), "-mp", str(udp_port(4)), "-key", "caller", caller,
        "-nostdin", "-trace_err", cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 40)
    seconds = time.monotonic() - started
    assert front.transcripts, out.decode(errors="replace")[-2000:]
    call_id = next(reversed(front.transcripts))
    for _ in range(100):  # our side closes the call's RTP just after sending its BYE
        if call_id in front.media_stats:
            break
        await asyncio.sleep(0.05)
    return Dialed(proc.returncode or 0, out.decode(errors="replace"), seconds, front.transcripts[call_id],
                  front.ended.get(call_id, ""), front.media_stats.get(call_id, {}))


@pytest.fixture(scope="session")
def prompt_cache(tmp_path_factory: pytest.TempPathFactory) -> PromptCache:
    cache = PromptCache(tmp_path_factory.mktemp("voice-prompts"))
    cache.prerender()
    return cache


async def seeded(db_url: str, tmp_path: Path) -> Container:
    c = build(Settings(_env_file=None, database_url=db_url, env="test",  # type: ignore[call-arg]
                       merchant_key_file=tmp_path / "platform.pem"))
    await c.ensure_system_accounts()
    for number, money in ((ALICE, 100_000), (BOB, 0), (CAROL, 5_000)):
        user = await c.wallet.create_user(number, actor="test", reason="voice e2e")
        await c.wallet.set_pin(number, PIN)
        if money:
            assert (await c.ledger.post(Transfer(f"fund-{number}", (Leg.debit(BANK_SETTLEMENT, money),
                                                                    Leg.credit(user.account_code, money)),
                                                 "cash_in"))).ok
    await c.wallet.set_frozen(CAROL, True, actor="test", reason="voice e2e: frozen")
    return c


async def balance(c: Container, number: str) -> int:
    return (await c.ledger.account(f"wallet:+86{number}")).available


@pytest.fixture
async def voice(sqlite_url: str, tmp_path: Path,
                prompt_cache: PromptCache) -> AsyncIterator[tuple[SipFront, Container]]:
    async with running(sqlite_url, tmp_path, prompt_cache) as pair:
        yield pair


@contextlib.asynccontextmanager
async def running(db_url: str, tmp_path: Path, prompts: PromptCache,
                 input_timeout_s: float = 3.0) -> AsyncIterator[tuple[SipFront, Container]]:
    c = await seeded(db_url, tmp_path)
    rtp = udp_port(8)
    front = SipFront(c.channel_actions, prompts, port=udp_port(), rtp_ports=(rtp, rtp + 8), record=True,
                     input_timeout_s=input_timeout_s, digit_timeout_s=2.0, max_call_s=60)
    await front.start()
    try:
        yield front, c
    finally:
        await front.stop()
        await c.close()


def assert_completed(call: Dialed) -> None:
    """sipp exited 0: it got our BYE after the goodbye, within the timeout."""
    assert call.rc == 0, call.output[-3000:]
    assert call.ended == "goodbye" and call.prompts()[-1] == "goodbye", (call.ended, call.prompts())
    assert call.seconds < 40
    assert call.media.get("packets_sent", 0) > 50  # the caller was sent audio (20 ms PCMU frames)


async def _balance_and_transfer(db_url: str, tmp_path: Path, prompts: PromptCache, how: str) -> None:
    async with running(db_url, tmp_path, prompts) as (front, c):
        before = await balance(c, ALICE), await balance(c, BOB)
        keys = ["p1000", *entry(PIN), "p500", "1", "p5000",  # hear the whole balance (a loaded CI renders "1000" first)
                "3", *entry(BOB), *entry("25"), "p300", "1", "p1500", "1", "p5000", "0"]
        call = await dial(front, tmp_path, ALICE, keys, how)
        assert_completed(call)
        assert call.whole("balance_is") == ["您的可用余额为1000元。", "您的可用余额为975元。"]
        assert "transfer_done" in call.prompts()
        assert (await balance(c, ALICE), await balance(c, BOB)) == (before[0] - 2_500, before[1] + 2_500)


async def test_a_call_checks_the_balance_and_makes_a_transfer(db_url: str, tmp_path: Path,
                                                             prompt_cache: PromptCache) -> None:
    """The whole path on both databases, keys as RFC 4733 telephone-events."""
    await _balance_and_transfer(db_url, tmp_path, prompt_cache, "rfc4733")


async def test_keys_sent_as_sip_info(sqlite_url: str, tmp_path: Path, prompt_cache: PromptCache) -> None:
    """The same call with every key a SIP INFO (application/dtmf-relay)."""
    await _balance_and_transfer(sqlite_url, tmp_path, prompt_cache, "info")


async def test_wrong_pins_end_the_call_and_move_nothing(voice: tuple[SipFront, Container], tmp_path: Path) -> None:
    front, c = voice
    before = await balance(c, ALICE)
    keys = ["p800", *entry("000000"), "p2000", *entry("111111"), "p2000", *entry("2222"), "p1500",
            *entry("222222")]
    call = await dial(front, tmp_path, ALICE, keys)
    assert_completed(call)
    errors = [h.text for h in call.heard if h.prompt == "error"]
    assert errors == ["支付密码错误，还可尝试4次。", "支付密码错误，还可尝试3次。", "支付密码为6位数字。",
                      "支付密码错误，还可尝试2次。"]
    assert "main_menu" not in call.prompts()
    assert await balance(c, ALICE) == before


async def test_unknown_and_frozen_callers_hear_why_and_are_hung_up(voice: tuple[SipFront, Container],
                                                                   tmp_path: Path) -> None:
    front, c = voice
    unknown = await dial(front, tmp_path, DAVE, [])
    assert_completed(unknown)
    assert unknown.whole("error") == ["本号码尚未开通钱包，请先注册。"] and "enter_pin" not in unknown.prompts()
    frozen = await dial(front, tmp_path, CAROL, [])
    assert_completed(frozen)
    assert frozen.whole("error") == ["您的账户已冻结，请联系客服10086。"] and "enter_pin" not in frozen.prompts()
    assert await balance(c, CAROL) == 5_000


async def test_silence_reprompts_then_says_goodbye(sqlite_url: str, tmp_path: Path,
                                                   prompt_cache: PromptCache) -> None:
    async with running(sqlite_url, tmp_path, prompt_cache, input_timeout_s=1.0) as (front, _):
        call = await dial(front, tmp_path, ALICE, [])
        assert_completed(call)
        assert call.prompts() == ["welcome", "enter_pin", "no_input", "enter_pin", "no_input", "enter_pin",
                                  "no_input", "goodbye"]
        assert all(h.whole for h in call.heard)


async def test_the_cli_runs_the_sip_front(sqlite_url: str, tmp_path: Path, prompt_cache: PromptCache) -> None:
    """``mobipay voice sip`` as an operator starts it, answering a real call."""
    c = await seeded(sqlite_url, tmp_path)
    await c.close()
    port, rtp = udp_port(), udp_port(8)
    env = {**os.environ, "MOBIPAY_DATABASE_URL": sqlite_url, "MOBIPAY_ENV": "test", "MOBIPAY_LOG_JSON": "true",
           "MOBIPAY_MERCHANT_KEY_FILE": str(tmp_path / "platform.pem"),
           "MOBIPAY_VOICE_PROMPT_DIR": str(prompt_cache.directory), "MOBIPAY_VOICE_RTP_PORT_MIN": str(rtp),
           "MOBIPAY_VOICE_RTP_PORT_MAX": str(rtp + 8)}
    log = tmp_path / "sip.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "mobipay.app.cli", "voice", "sip", "--port",
                                                    str(port), env=env, stdout=out, stderr=asyncio.subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while b"SIP front on" not in log.read_bytes():
            assert proc.returncode is None and time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.1)
        path = tmp_path / "cli-call.xml"
        path.write_text(scenario([], "rfc4733"))
        sipp = await asyncio.create_subprocess_exec(
            "sipp", f"127.0.0.1:{port}", "-sf", str(path), "-m", "1", "-timeout", "35s", "-timeout_error",
            "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(udp_port()), "-mp", str(udp_port(4)),
            "-key", "caller", DAVE, "-nostdin", cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(sipp.communicate(), 40)
        assert sipp.returncode == 0, output.decode(errors="replace")[-2000:]
        for _ in range(100):
            ended = [json.loads(line) for line in log.read_text().splitlines() if '"voice.sip.ended"' in line]
            if ended:
                break
            await asyncio.sleep(0.05)
        assert [e["how"] for e in ended] == ["goodbye"], log.read_text()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 20)
    assert proc.returncode == 0, log.read_text()
