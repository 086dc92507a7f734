"""The SIP front: a user agent that answers calls, speaks the dialog and reads the keypad.

Built on aiosipua (SIP signalling) and aiortp (RTP media), both asyncio and MIT licensed
(docs/decisions/0003-voice-sip-stack.md). It answers INVITEs on ``sip_host:sip_port``
(loopback by default: in production it sits behind the operator's SBC, which asserts the
calling line), negotiates PCMU with telephone-event, plays prompts rendered by
:mod:`~mobipay.channels.voice.prompts` as 20 ms RTP frames, and reads keys sent as RFC 4733
telephone-events or as SIP INFO (``application/dtmf-relay`` or ``application/dtmf``). Keys
pressed while a prompt plays interrupt it (barge-in) and are kept (type-ahead).

Three pieces reach into aiosipua/aiortp internals, pinned by version in pyproject.toml:
INFO is not among the methods aiosipua's UAS handles, so :class:`_VoiceUAS` adds it to the
dispatch table; and aiortp's telephone-event receiver takes a repeated key replayed with the
same RTP timestamp (as recorded DTMF is) for a retransmission, so :class:`KeyReceiver`
replaces it and also starts a new key when a start packet follows an end packet; and
aiosipua's UDP transport asserts a transport class that Python 3.11 does not have, so
:class:`_UdpTransport` starts it without that assertion.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiortp import DtmfEvent, RtpPacket
from aiosipua import CallSession, IncomingCall, SdpNegotiationError, SipRequest, SipUAS, UdpSipTransport, parse_uri
from aiosipua.transport import _UdpProtocol

from mobipay.channels.actions import ChannelActions
from mobipay.channels.voice import dialog as D
from mobipay.channels.voice.prompts import PromptCache, text
from mobipay.channels.voice.session import Reply, VoiceSession
from mobipay.rural.service import RuralService

log = structlog.get_logger(__name__)

FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_BYTES = FRAME_SAMPLES * 2
PCMU = 0
TELEPHONE_EVENT = 101
_EVENTS = "0123456789*#"


class KeyReceiver:
    """RFC 4733 telephone-events to keys: one key per event, redundant end packets ignored.

    A new event starts when the RTP timestamp changes, or when a non-end packet follows an
    end packet (the same key pressed again and replayed with the same timestamp).
    """

    def __init__(self, on_key: Callable[[str], None]) -> None:
        self.on_key = on_key
        self._timestamp: int | None = None
        self._ended = False

    def handle_packet(self, packet: RtpPacket) -> None:
        try:
            event = DtmfEvent.parse(packet.payload)
        except Exception:  # a malformed event from the network is dropped, never fatal
            return
        if packet.timestamp != self._timestamp or (self._ended and not event.end):
            self._timestamp = packet.timestamp
            self._ended = False
        if event.end and not self._ended:
            self._ended = True
            if event.event < len(_EVENTS):
                self.on_key(_EVENTS[event.event])


def info_keys(content_type: str, body: str) -> str:
    """Keys carried by a SIP INFO: ``Signal=5`` (dtmf-relay) or a bare ``5`` (application/dtmf)."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/dtmf-relay":
        m = re.search(r"(?im)^\s*signal\s*=\s*(\S+)", body)
        raw = m.group(1) if m else ""
    elif ctype == "application/dtmf":
        raw = body.strip()
    else:
        return ""
    raw = {"10": "*", "11": "#"}.get(raw, raw)
    return raw if len(raw) == 1 and raw in _EVENTS else ""


class _Protocol(_UdpProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # aiosipua asserts DatagramTransport here, which Python 3.11's selector transport is
        # not (it only inherits Transport); start() below records the transport either way.
        self._owner._udp_transport = transport  # type: ignore[assignment]


class _UdpTransport(UdpSipTransport):
    """aiosipua's UDP transport, started without the assertion that fails on Python 3.11."""

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=self.local_addr)
        self._udp_transport = transport


class _VoiceUAS(SipUAS):
    """aiosipua's UAS plus SIP INFO inside a confirmed call (answered 200, keys handed on)."""

    def __init__(self, *args: Any, on_info_keys: Callable[[str, str], bool], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_info_keys = on_info_keys
        self._handlers["INFO"] = self._handle_info

    def _handle_info(self, request: SipRequest, addr: tuple[str, int]) -> None:
        call = self._calls.get(request.call_id or "")
        if call is None:
            self._send_error(request, 481, "Call/Transaction Does Not Exist")
            return
        if not self._validate_in_dialog(call.dialog, request):
            return
        keys = info_keys(request.content_type or "", request.text or "")
        known = self._on_info_keys(call.call_id, keys) if keys else False
        ok = known or not keys
        resp = call.dialog.create_response(request, 200 if ok else 481, "OK" if ok else "Call Does Not Exist")
        self.transport.send_reply(resp)


def caller_number(call: IncomingCall) -> str:
    """The calling line: P-Asserted-Identity (set by a trusted SBC) if present, else From."""
    raw = call.invite.get_header("p-asserted-identity") or call.caller
    m = re.search(r"<([^>]+)>", raw)
    uri = m.group(1) if m else raw.strip()
    try:
        user = parse_uri(uri).user or ""
    except Exception:
        user = ""
    return user.split(";")[0]


def telephone_event_pt(call: IncomingCall) -> int:
    """The payload type the caller offered for telephone-event (we answer with the same, as
    RFC 3264 asks, and read keys on it); 101 when the offer names none."""
    audio = call.sdp_offer.audio if call.sdp_offer is not None else None
    for codec in audio.codecs if audio is not None else []:
        if codec.encoding_name.lower() == "telephone-event":
            return codec.payload_type
    return TELEPHONE_EVENT


@dataclass(frozen=True, slots=True)
class Heard:
    """A prompt of a recorded call: ``whole`` if it played to its end (not cut by a key)."""

    prompt: str
    text: str
    whole: bool


MAX_QUEUED_KEYS = 64


@dataclass
class _Call:
    call: IncomingCall
    keys: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(MAX_QUEUED_KEYS))
    task: asyncio.Task[None] | None = None
    answer: Any = None  # our SDP answer, repeated to a re-INVITE

    def key(self, k: str) -> None:
        """Queue a key; a caller flooding keys loses the excess, never our memory."""
        with contextlib.suppress(asyncio.QueueFull):
            self.keys.put_nowait(k)


class SipFront:
    """The SIP user agent: one :class:`VoiceSession` per answered call.

    With ``record=True`` it keeps, per Call-ID, the prompts spoken (``transcripts``), how the
    call ended (``ended``) and its RTP counters (``media_stats``) — the tests' ears, and handy
    when trying a new prompt by hand.
    """

    def __init__(self, actions: ChannelActions, prompts: PromptCache, *, host: str = "127.0.0.1", port: int = 5070,
                 rtp_ports: tuple[int, int] = (31000, 31999), input_timeout_s: float = 6.0,
                 digit_timeout_s: float = 4.0, max_call_s: float = 600.0, lang: D.Lang = "zh",
                 record: bool = False, rural: RuralService | None = None) -> None:
        self.actions = actions
        self.rural = rural  # the agents' menu for their staff phones (None: none)
        self.prompts = prompts
        self.host = host
        self.port = port
        self.input_timeout_s = input_timeout_s
        self.digit_timeout_s = digit_timeout_s
        self.max_call_s = max_call_s
        self.lang = lang
        first = rtp_ports[0] + rtp_ports[0] % 2
        self._free_rtp = list(range(first, rtp_ports[1], 2))  # even RTP ports; RTCP takes the odd one above
        self._calls: dict[str, _Call] = {}
        self.transcripts: dict[str, list[Heard]] | None = {} if record else None
        self.ended: dict[str, str] = {}  # call id → how it ended (for tests and logs)
        self.media_stats: dict[str, dict[str, Any]] = {}  # call id → RTP counters when it ended
        self._transport = _UdpTransport(local_addr=(host, port))
        self._uas = _VoiceUAS(self._transport, user_agent="mobipay-voice", on_info_keys=self._info_keys)
        self._uas.on_invite = self._on_invite
        self._uas.on_bye = self._on_bye
        self._uas.on_cancel = self._on_cancel
        self._uas.on_reinvite = self._on_reinvite

    async def start(self) -> None:
        await self._uas.start()
        log.info("voice.sip.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        tasks = [c.task for c in self._calls.values() if c.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._uas.stop()

    # ------------------------------------------------------------------ signalling callbacks

    def _info_keys(self, call_id: str, keys: str) -> bool:
        c = self._calls.get(call_id)
        if c is None:
            return False
        for k in keys:
            c.key(k)
        return True

    def _on_invite(self, call: IncomingCall) -> None:
        c = _Call(call)
        self._calls[call.call_id] = c
        c.task = asyncio.get_running_loop().create_task(self._run(c))

    def _on_reinvite(self, call: IncomingCall) -> None:
        """A session refresh or hold: answer with the media we already have."""
        c = self._calls.get(call.call_id)
        if c is not None and c.answer is not None:
            call.accept(c.answer)
        else:
            call.reject(488, "Not Acceptable Here")

    def _on_bye(self, call: IncomingCall, request: SipRequest) -> None:
        c = self._calls.get(call.call_id)
        if c is not None and c.task is not None:
            self.ended.setdefault(call.call_id, "caller hung up")
            c.task.cancel()

    def _on_cancel(self, request: SipRequest, addr: tuple[str, int]) -> None:
        c = self._calls.get(request.call_id or "")
        if c is not None and c.task is not None:
            self.ended.setdefault(c.call.call_id, "cancelled")
            c.task.cancel()

    # ------------------------------------------------------------------ one call

    async def _run(self, c: _Call) -> None:
        call = c.call
        media: CallSession | None = None
        port: int | None = None
        try:
            if call.sdp_offer is None or not self._free_rtp:
                call.reject(488 if call.sdp_offer is None else 503)
                self.ended[call.call_id] = "rejected"
                return
            port = self._free_rtp.pop(0)
            try:
                media = CallSession(self.host, port, call.sdp_offer, supported_codecs=[PCMU],
                                    dtmf_payload_type=telephone_event_pt(call), symmetric_rtp=True)
            except (SdpNegotiationError, ValueError):
                call.reject(488, "Not Acceptable Here")
                self.ended[call.call_id] = "rejected"
                return
            await media.start()
            media.rtp_session._dtmf_receiver = KeyReceiver(c.key)  # see the module docstring
            c.answer = media.sdp_answer
            call.accept(media.sdp_answer)
            caller = caller_number(call)
            log.info("voice.sip.answered", call_id=call.call_id, rtp_port=port)
            async with asyncio.timeout(self.max_call_s):
                await self._converse(c, media, VoiceSession(self.actions, call.call_id, caller, rural=self.rural))
            call.hangup()
            self.ended.setdefault(call.call_id, "goodbye")
        except TimeoutError:
            call.hangup()
            self.ended.setdefault(call.call_id, "too long")
        except asyncio.CancelledError:
            self.ended.setdefault(call.call_id, "cancelled")
        except Exception:
            log.exception("voice.sip.call_failed", call_id=call.call_id)
            call.hangup()
            self.ended.setdefault(call.call_id, "failed")
        finally:
            if media is not None:
                if self.transcripts is not None:
                    self.media_stats[call.call_id] = dict(media.stats)
                await media.close()
            if port is not None:
                self._free_rtp.append(port)
            self._calls.pop(call.call_id, None)
            log.info("voice.sip.ended", call_id=call.call_id, how=self.ended.get(call.call_id))
            if self.transcripts is None:  # kept only when recording (tests); a long-running front forgets
                self.ended.pop(call.call_id, None)

    async def _converse(self, c: _Call, media: CallSession, session: VoiceSession) -> None:
        reply = await session.start(self.lang)
        while True:
            await self._play(c, media, reply)
            if reply.end or reply.expect is None:
                return
            reply = await session.handle(await self._collect(c, reply.expect))

    async def _play(self, c: _Call, media: CallSession, reply: Reply) -> None:
        """Speak ``reply``; keys already pressed cut it short unless the call is ending."""
        loop = asyncio.get_running_loop()
        for item in reply.say:
            heard = False
            if c.keys.empty() or reply.end:  # else barge-in: the caller is ahead of us
                pcm = await self.prompts.pcm(item, reply.lang)
                started = loop.time()
                heard = True
                for i, offset in enumerate(range(0, len(pcm), FRAME_BYTES)):
                    if not c.keys.empty() and not reply.end:
                        heard = False
                        break
                    frame = pcm[offset:offset + FRAME_BYTES].ljust(FRAME_BYTES, b"\0")
                    media.rtp_session.send_audio_pcm_auto(frame)
                    await asyncio.sleep(max(0.0, started + (i + 1) * 0.02 - loop.time()))
            if self.transcripts is not None:
                self.transcripts.setdefault(c.call.call_id, []).append(Heard(item.prompt, text(item, reply.lang),
                                                                             heard))

    async def _collect(self, c: _Call, expect: D.Expect) -> str | None:
        """One key for a menu; for an entry, keys up to ``#`` (or a pause after the last key)."""
        timeout = self.input_timeout_s
        entry = ""
        while True:
            try:
                key = await asyncio.wait_for(c.keys.get(), timeout)
            except TimeoutError:
                return entry or None
            if expect.kind == "choice" or key == "*":
                return key
            if key == "#":
                return entry
            entry += key
            if len(entry) > expect.max_digits:
                return entry  # too long: the dialog refuses it
            timeout = self.digit_timeout_s
