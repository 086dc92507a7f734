"""Prompts as words and as telephone audio, for both voice fronts.

A :class:`~mobipay.channels.voice.dialog.Say` becomes a list of *segments*: the fixed pieces
of its prompt text and its dynamic parts (an amount, a number read digit by digit, a bill's
name, an error in the channel's words). Each segment is one audio clip, rendered once by
espeak-ng (Mandarin voice ``cmn``, or ``en-us``) and sox into 8 kHz mono 16-bit WAV — the
PCMU the SIP front sends — and kept in a cache directory named by a hash of its language and
text. ``mobipay voice prompts`` renders every fixed piece and the digits ahead of time; a
dynamic piece not seen before is rendered on first use (≈0.1 s) and reused after.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import string
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

from mobipay.channels import words
from mobipay.channels.voice.dialog import PROMPTS, Digits, Fen, Lang, Say, Value, Words, all_static_texts

RATE = 8000
VOICES: dict[Lang, str] = {"zh": "cmn", "en": "en-us"}
SPEED_WPM = 250  # espeak-ng's default (175) is slow for Mandarin menus heard every day
_DIGIT_WORDS_EN = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_DIGIT_WORDS_ZH = "零一二三四五六七八九"


@dataclass(frozen=True, slots=True)
class Segment:
    """One clip: ``fixed`` pieces come from the prompt table and are rendered ahead of time."""

    text: str
    fixed: bool


def spoken_amount(fen: int, lang: Lang) -> str:
    """An amount as read aloud: whole yuan without decimals (``50``), else ``50.25``."""
    return str(fen // 100) if fen % 100 == 0 else words.yuan(fen)


def _value(value: Value, lang: Lang) -> list[Segment]:
    if isinstance(value, Fen):
        return [Segment(spoken_amount(value.value, lang), False)]
    if isinstance(value, Digits):  # one clip per digit, all rendered ahead of time
        table = _DIGIT_WORDS_ZH if lang == "zh" else _DIGIT_WORDS_EN
        return [Segment(table[int(d)], True) for d in value.value if d.isdigit()]
    if isinstance(value, Words):
        return [Segment(value.zh if lang == "zh" else value.en, False)]
    return [Segment(str(value), False)]


def segments(item: Say, lang: Lang) -> list[Segment]:
    """``item`` as the clips to play, in order."""
    if item.error is not None:
        return [Segment(words.say(item.error, lang), False)]
    template = PROMPTS[item.prompt][0 if lang == "zh" else 1]
    params = dict(item.params)
    out: list[Segment] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        if literal and literal.strip(" ,，。.:;"):
            out.append(Segment(literal, True))
        if name:
            out.extend(_value(params[name], lang))
    return out


def text(item: Say, lang: Lang) -> str:
    """``item`` as one sentence (the VoiceXML fallback text, logs, the test transcript)."""
    if item.error is not None:
        return words.say(item.error, lang)
    template = PROMPTS[item.prompt][0 if lang == "zh" else 1]
    params = {}
    for k, v in item.params:
        if isinstance(v, Digits):
            params[k] = v.value
        else:
            params[k] = "".join(s.text for s in _value(v, lang))
    return template.format(**params)


def clip_name(lang: Lang, text_: str) -> str:
    """The cache file name of a clip: stable across runs, so a rendered clip is reused."""
    digest = hashlib.sha256(f"{VOICES[lang]}|{SPEED_WPM}|{RATE}|trim|{text_}".encode()).hexdigest()
    return f"{lang}-{digest[:20]}.wav"


class PromptCache:
    """Renders clips with espeak-ng + sox into ``directory`` once, and reads them back as PCM."""

    def __init__(self, directory: Path, *, espeak: str = "espeak-ng", sox: str = "sox") -> None:
        self.directory = directory
        self.espeak = espeak
        self.sox = sox
        self._locks: dict[str, asyncio.Lock] = {}

    def available(self) -> bool:
        """Whether both tools are installed (the SIP front needs them; VoiceXML does not)."""
        return shutil.which(self.espeak) is not None and shutil.which(self.sox) is not None

    def path(self, lang: Lang, text_: str) -> Path:
        return self.directory / clip_name(lang, text_)

    def cached(self, lang: Lang, text_: str) -> Path | None:
        p = self.path(lang, text_)
        return p if p.exists() else None

    def render(self, lang: Lang, text_: str) -> Path:
        """Render one clip now (blocking) unless it is already there."""
        target = self.path(lang, text_)
        if target.exists():
            return target
        self.directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.directory) as tmp:
            raw = Path(tmp) / "raw.wav"
            out = Path(tmp) / "out.wav"
            # The text is one argv item (no shell): nothing the caller says can become a command.
            subprocess.run([self.espeak, "-v", VOICES[lang], "-s", str(SPEED_WPM), "-w", str(raw), "--", text_],  # noqa: S603
                           check=True, capture_output=True, timeout=30)
            # 8 kHz mono 16-bit; leading and trailing silence trimmed (clips are joined), a short
            # pad kept; normalised to -3 dB so nothing clips in G.711
            subprocess.run([self.sox, str(raw), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer",  # noqa: S603
                            str(out), "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%",
                            "reverse", "pad", "0.02", "0.08", "gain", "-n", "-3"],
                           check=True, capture_output=True, timeout=30)
            os.replace(out, target)  # atomic: a reader never sees half a clip
        return target

    async def render_async(self, lang: Lang, text_: str) -> Path:
        """:meth:`render` off the event loop, once per clip even when calls ask at the same time."""
        name = clip_name(lang, text_)
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(self.render, lang, text_)

    def prerender(self) -> int:
        """Every fixed piece of every prompt and the digit words, both languages; returns how many clips."""
        wanted = set(all_static_texts())
        for lang in ("zh", "en"):
            table = _DIGIT_WORDS_ZH if lang == "zh" else _DIGIT_WORDS_EN
            wanted.update((lang, d) for d in table)
        for lang, text_ in sorted(wanted):
            self.render(lang, text_)
        return len(wanted)

    async def pcm(self, item: Say, lang: Lang) -> bytes:
        """``item`` as 8 kHz mono signed 16-bit little-endian PCM, clip after clip."""
        chunks = []
        for seg in segments(item, lang):
            path = await self.render_async(lang, seg.text)
            chunks.append(read_pcm(path))
        return b"".join(chunks)


def read_pcm(path: Path) -> bytes:
    with contextlib.closing(wave.open(str(path), "rb")) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, 1, 2):
            raise ValueError(f"{path} is not 8 kHz mono 16-bit")
        return w.readframes(w.getnframes())
