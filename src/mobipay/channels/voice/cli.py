"""``mobipay voice …``: the SIP front and the prompt clips.

The VoiceXML front needs no command of its own: ``mobipay serve`` serves it under /voice.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated, Literal

import typer

from mobipay.channels.voice.config import VoiceSettings, voice_settings
from mobipay.channels.voice.prompts import PromptCache
from mobipay.platform.cli_support import built, settings_or_exit
from mobipay.platform.config import Settings

app = typer.Typer(help="The voice channel (IVR). Example: mobipay voice sip --port 5070", no_args_is_help=True)


def _checked_settings() -> tuple[Settings, VoiceSettings]:
    settings = settings_or_exit()
    try:
        return settings, voice_settings(settings)
    except ValueError as exc:
        typer.secho(f"configuration error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None


@app.command("prompts")
def prompts_command(
    directory: Annotated[Path | None, typer.Option("--dir", help="Clip cache (default MOBIPAY_VOICE_PROMPT_DIR)")]
    = None,
) -> None:
    """Render every fixed prompt piece and the digits, Chinese and English, with espeak-ng and
    sox into 8 kHz mono WAV clips (done once; the SIP front and the VoiceXML documents reuse
    them). Example: mobipay voice prompts --dir var/voice-prompts"""
    target = directory or VoiceSettings().prompt_dir
    cache = PromptCache(target)
    if not cache.available():
        typer.secho("espeak-ng and sox are needed: apt-get install -y espeak-ng sox", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"{cache.prerender()} clips in {target}")


@app.command("sip")
def sip_command(
    host: Annotated[str, typer.Option(help="Address to bind (loopback; in production the SBC's side)")] = "",
    port: Annotated[int, typer.Option(help="SIP port (UDP); default MOBIPAY_VOICE_SIP_PORT")] = 0,
    lang: Annotated[str, typer.Option(help="Language a call starts in: zh or en")] = "zh",
) -> None:
    """Answer calls over SIP: speak the wallet's voice menus and read keys (RFC 4733 or SIP
    INFO) until Ctrl-C. RTP uses MOBIPAY_VOICE_RTP_PORT_MIN..MAX. Call it with
    sipp 127.0.0.1:5070 -sf tests/e2e/sipp/call.xml -key caller 13800138000 -m 1.
    Example: mobipay voice sip --port 5070"""
    from mobipay.channels.voice.sip import SipFront
    from mobipay.platform.observability import configure_logging

    settings, voice = _checked_settings()
    if lang not in ("zh", "en"):
        typer.secho("--lang is zh or en", fg="red", err=True)
        raise typer.Exit(2)
    start_lang: Literal["zh", "en"] = "en" if lang == "en" else "zh"
    configure_logging(settings.log_level, settings.log_json)
    prompts = PromptCache(voice.prompt_dir)
    if not prompts.available():
        typer.secho("espeak-ng and sox are needed for the SIP front: apt-get install -y espeak-ng sox", fg="red",
                    err=True)
        raise typer.Exit(1)

    async def main() -> None:
        container = built(settings)
        await container.ensure_system_accounts()
        container.ledger.start_group_commit()
        await asyncio.to_thread(prompts.prerender)  # a no-op once rendered
        front = SipFront(container.channel_actions, prompts, host=host or voice.sip_host,
                         port=port or voice.sip_port, rtp_ports=(voice.rtp_port_min, voice.rtp_port_max),
                         input_timeout_s=voice.input_timeout_s, digit_timeout_s=voice.digit_timeout_s,
                         max_call_s=voice.max_call_s, lang=start_lang, rural=container.rural)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await front.start()
        typer.echo(f"SIP front on udp:{front.host}:{front.port} (RTP {voice.rtp_port_min}-{voice.rtp_port_max})",
                   err=True)
        try:
            await stop.wait()
        finally:
            await front.stop()
            await container.close()

    asyncio.run(main())
