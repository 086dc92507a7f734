"""VoiceXML 2.1 documents for the operator's existing IVR platform.

The IVR starts a call at ``/voice/vxml/start`` with the shared token, the calling line
(its ``session.connection.remote.uri`` or ANI) and optionally ``lang=en``; every answer is
one VoiceXML document: the prompts of the turn (pre-rendered clips as ``<audio>`` with the
words as fallback, so the platform's own TTS speaks anything not rendered) and one
``<field>`` with a DTMF grammar whose ``<filled>``, ``<noinput>`` and ``<nomatch>`` submit
back to ``/voice/vxml/next``. The dialog itself (:mod:`.dialog`) decides what comes next, so
the IVR and our SIP front behave the same.

Call state travels in the document as ``s``: the dialog state encrypted and authenticated
with a key derived from ``MOBIPAY_SECRET_KEY`` (Fernet), valid for
``MOBIPAY_VOICE_STATE_TTL_S``. The IVR cannot read it (it holds the verified PIN, passed on
to payments) nor forge it, any API node can continue any call, and a re-sent request with
the same ``s`` carries the same payment number, hence the same idempotency key: an IVR
retrying a fetch never pays twice.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response
from lxml import etree

from mobipay.channels.voice import dialog as D
from mobipay.channels.voice.config import VoiceSettings, voice_settings
from mobipay.channels.voice.prompts import PromptCache, segments, text
from mobipay.channels.voice.session import Reply, VoiceSession, actions_of

if TYPE_CHECKING:  # the composition root's type, named in hints only (decision 0006)
    from mobipay.app.bootstrap import Container

NS = "http://www.w3.org/2001/vxml"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MEDIA_TYPE = "application/voicexml+xml"
LOCALES: dict[D.Lang, str] = {"zh": "zh-CN", "en": "en-US"}
_CLIP = re.compile(r"^(zh|en)-[0-9a-f]{20}\.wav$")

router = APIRouter(prefix="/voice", tags=["voice"], include_in_schema=True)


@dataclass
class VoiceContext:
    """What the router needs, built once per app from the container's settings."""

    settings: VoiceSettings
    fernet: Fernet
    prompts: PromptCache


def _context(request: Request) -> tuple[Container, VoiceContext]:
    container: Container = request.app.state.container
    ctx: VoiceContext | None = getattr(request.app.state, "voice", None)
    if ctx is None:
        settings = voice_settings(container.settings)
        ctx = VoiceContext(settings, state_cipher(container.settings.secret_key.get_secret_value()),
                           PromptCache(settings.prompt_dir))
        request.app.state.voice = ctx
    return container, ctx


def state_cipher(secret: str) -> Fernet:
    """The call-state cipher: a key of its own derived from the platform secret."""
    key = hashlib.sha256(b"mobipay voice call state\0" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


# --------------------------------------------------------------------------- call state


def seal(fernet: Fernet, call_id: str, caller: str, state: D.CallState) -> str:
    body = {"v": 1, "call": call_id, "caller": caller, "state": dataclasses.asdict(state)}
    return fernet.encrypt(json.dumps(body, separators=(",", ":")).encode()).decode()


def unseal(fernet: Fernet, token: str, ttl_s: int) -> tuple[str, str, D.CallState] | None:
    """The call id, caller and state; ``None`` when the token is genuine but expired.

    Raises ``HTTPException(403)`` for anything not issued by us.
    """
    try:
        raw = fernet.decrypt(token.encode(), ttl=ttl_s)
    except InvalidToken:
        try:
            fernet.decrypt(token.encode())
        except InvalidToken:
            raise HTTPException(403, "not a call state issued by this platform") from None
        return None
    body = json.loads(raw)
    fields = body["state"]
    fields["bills"] = tuple(fields.get("bills", ()))
    for listed in ("products", "games", "policies"):  # JSON has lists; the state holds tuples
        fields[listed] = tuple(tuple(item) for item in fields.get(listed, ()))
    return body["call"], body["caller"], D.CallState(**fields)


# --------------------------------------------------------------------------- documents


def _el(parent: etree._Element, tag: str, text_: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{NS}}}{tag}", {k.rstrip("_"): v for k, v in attrs.items()})
    if text_ is not None:
        el.text = text_
    return el


def _prompt(parent: etree._Element, reply: Reply, prompts: PromptCache, base: str) -> None:
    if not reply.say:
        return
    prompt = _el(parent, "prompt", bargein="false" if reply.end else "true")
    # English words and sentences are spoken apart; Chinese runs on (its punctuation separates)
    gap = " " if reply.lang == "en" else ""
    for item in reply.say:
        pieces = segments(item, reply.lang)
        if all(prompts.cached(reply.lang, p.text) for p in pieces):
            for p in pieces:  # rendered clips, with the words for a platform that cannot fetch them
                clip = prompts.path(reply.lang, p.text).name
                _append_text(prompt, gap)
                _el(prompt, "audio", p.text.strip(), src=f"{base}/voice/prompts/{clip}")
        else:  # not rendered here: the platform's TTS speaks the words
            _append_text(prompt, gap + text(item, reply.lang))


def _append_text(parent: etree._Element, words: str) -> None:
    """Add ``words`` after what ``parent`` says so far; a gap only between two things said."""
    said = bool(len(parent)) or bool((parent.text or "").strip())
    if not said:
        words = words.lstrip()
    if len(parent):
        last = parent[-1]
        last.tail = (last.tail or "") + words
    else:
        parent.text = (parent.text or "") + words


def _grammar(field: etree._Element, expect: D.Expect) -> None:
    grammar = _el(field, "grammar", mode="dtmf", version="1.0", root="keypad")
    rule = _el(grammar, "rule", id="keypad", scope="public")
    choices = _el(rule, "one-of")
    _el(choices, "item", "*")
    if expect.kind == "choice":
        for key in expect.keys:
            _el(choices, "item", key)
    else:
        entry = _el(choices, "item", repeat=f"1-{expect.max_digits}")
        digits = _el(entry, "one-of")
        for d in "0123456789":
            _el(digits, "item", d)


def document(reply: Reply, sealed: str, ctx: VoiceContext, base: str = "") -> bytes:
    """One turn as a VoiceXML 2.1 document."""
    root = etree.Element(f"{{{NS}}}vxml", {"version": "2.1", XML_LANG: LOCALES[reply.lang]}, nsmap={None: NS})
    s = ctx.settings
    for name, value in (("inputmodes", "dtmf"), ("termchar", "#"), ("timeout", _duration(s.input_timeout_s)),
                        ("interdigittimeout", _duration(s.digit_timeout_s))):
        _el(root, "property", name=name, value=value)
    form = _el(root, "form", id="turn")
    if reply.end or reply.expect is None:
        block = _el(form, "block")
        _prompt(block, reply, ctx.prompts, base)
        _el(block, "disconnect")
    else:
        _el(form, "var", name="s", expr=_js_string(sealed))
        field = _el(form, "field", name="keys")
        _grammar(field, reply.expect)
        _prompt(field, reply, ctx.prompts, base)
        nxt = f"{base}/voice/vxml/next"
        _el(_el(field, "filled"), "submit", next=nxt, method="post", namelist="s keys")
        _el(_el(field, "noinput"), "submit", next=f"{nxt}?ev=noinput", method="post", namelist="s")
        _el(_el(field, "nomatch"), "submit", next=f"{nxt}?ev=nomatch", method="post", namelist="s")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def _js_string(value: str) -> str:
    """An ECMAScript string literal (the token is base64url: no quote can occur, checked anyway)."""
    if not re.fullmatch(r"[A-Za-z0-9_\-=]*", value):
        raise ValueError("unexpected characters in a sealed state")
    return f"'{value}'"


# --------------------------------------------------------------------------- validation


def dtd() -> etree.DTD:
    """The W3C VoiceXML 2.1 DTD kept in ``schema/`` (see its README for where it comes from)."""
    with resources.files("mobipay.channels.voice").joinpath("schema/vxml.dtd").open("rb") as f:
        return etree.DTD(f)


_DURATION = re.compile(r"^\d+(\.\d+)?(s|ms)$")


def validate(doc: bytes) -> list[str]:
    """Problems of a VoiceXML document: DTD validity, plus the value types the DTD leaves as
    CDATA that we use (``version``, the namespace, durations). Empty when it is valid."""
    root = etree.fromstring(doc)
    schema = dtd()
    problems = [] if schema.validate(root) else [str(e) for e in schema.error_log.filter_from_errors()]
    if root.tag != f"{{{NS}}}vxml" or root.get("version") != "2.1":
        problems.append("root must be <vxml version='2.1'> in the VoiceXML namespace")
    for prop in root.iter(f"{{{NS}}}property"):
        if prop.get("name") in ("timeout", "interdigittimeout") and not _DURATION.match(prop.get("value", "")):
            problems.append(f"property {prop.get('name')} is not a duration: {prop.get('value')!r}")
    return problems


# --------------------------------------------------------------------------- routes


def _caller(ani: str) -> str:
    """The number in ``tel:+8613800138000``, ``sip:13800138000@host;user=phone`` or a bare ANI."""
    value = ani.strip()
    value = re.sub(r"^(tel|sips?):", "", value, flags=re.IGNORECASE)
    return value.split("@")[0].split(";")[0]


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def _answer(reply: Reply, call_id: str, caller: str, state: D.CallState, ctx: VoiceContext) -> Response:
    sealed = seal(ctx.fernet, call_id, caller, state)
    return Response(document(reply, sealed, ctx), media_type=MEDIA_TYPE)


_IVR_ONLY: dict[int | str, dict[str, Any]] = {403: {"description": "Not the operator's IVR platform (token)"}}


@router.get("/vxml/start", summary="Start a VoiceXML call (operator's IVR)", response_class=Response,
            responses=_IVR_ONLY,
            operation_id="voice_vxml_start_get")
@router.post("/vxml/start", summary="Start a VoiceXML call (operator's IVR)", response_class=Response,
             responses=_IVR_ONLY,
             operation_id="voice_vxml_start_post")
async def start(request: Request) -> Response:
    """``token`` (or ``X-IVR-Token``) is the shared secret; ``ani`` the calling line; ``lang`` zh|en."""
    container, ctx = _context(request)
    params = await _params(request)
    token = request.headers.get("x-ivr-token") or params.get("token", "")
    if not hmac.compare_digest(token.encode(), ctx.settings.ivr_token.get_secret_value().encode()):
        raise HTTPException(403, "this endpoint is for the operator's IVR platform")
    lang: D.Lang = "en" if params.get("lang") == "en" else "zh"
    caller = _caller(params.get("ani", ""))
    call_id = uuid.uuid4().hex
    session = VoiceSession(actions_of(container), call_id, caller, rural=container.rural)
    reply = await session.start(lang)
    return _answer(reply, call_id, caller, session.state, ctx)


@router.get("/vxml/next", summary="The next turn of a VoiceXML call", response_class=Response,
            responses=_IVR_ONLY,
            operation_id="voice_vxml_next_get")
@router.post("/vxml/next", summary="The next turn of a VoiceXML call", response_class=Response,
             responses=_IVR_ONLY,
             operation_id="voice_vxml_next_post")
async def next_turn(request: Request) -> Response:
    """``s`` is the sealed call state from the previous document; ``keys`` what was keyed,
    or ``ev=noinput|nomatch``."""
    container, ctx = _context(request)
    params = await _params(request)
    opened = unseal(ctx.fernet, params.get("s", ""), ctx.settings.state_ttl_s)
    if opened is None:  # genuine but too old: end politely
        expired = Reply((D.say("no_input"), D.say("goodbye")), None, True, "zh")
        return Response(document(expired, "", ctx), media_type=MEDIA_TYPE)
    call_id, caller, state = opened
    session = VoiceSession(actions_of(container), call_id, caller, state, rural=container.rural)
    event = params.get("ev", "")
    keys: str | None
    if event == "noinput":
        keys = None
    elif event == "nomatch":
        keys = "?"  # not a key: the dialog answers "not one of the choices"
    else:
        keys = "".join(params.get("keys", "").split()).replace("star", "*")
    return _answer(await session.handle(keys), call_id, caller, session.state, ctx)


@router.get("/prompts/{name}", summary="A rendered prompt clip (8 kHz mono WAV)", response_class=FileResponse)
async def clip(name: str, request: Request) -> FileResponse:
    _, ctx = _context(request)
    if not _CLIP.match(name):
        raise HTTPException(404, "no such clip")
    path = Path(ctx.prompts.directory) / name
    if not path.exists():
        raise HTTPException(404, "no such clip")
    return FileResponse(path, media_type="audio/wav")
