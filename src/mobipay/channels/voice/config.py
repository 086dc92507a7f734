"""The voice channel's settings (``MOBIPAY_VOICE_*``), kept beside the channel.

They are read with the platform's :class:`~mobipay.platform.config.Settings` (production
refuses the demo IVR token there too, see :func:`voice_settings`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from mobipay.platform.config import Environment, Settings

DEMO_IVR_TOKEN = "demo-ivr-token"  # noqa: S105 - a known, refused-in-production value


class VoiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOBIPAY_VOICE_", env_file=".env", extra="ignore")

    ivr_token: SecretStr = Field(default=SecretStr(DEMO_IVR_TOKEN), description="Shared secret the operator's IVR "
                                 "platform sends when it starts a VoiceXML call (token= or X-IVR-Token)")
    state_ttl_s: int = Field(default=900, ge=60, description="How long a VoiceXML call's state stays valid")
    prompt_dir: Path = Field(default=Path("var/voice-prompts"), description="Rendered prompt clips (8 kHz WAV)")
    sip_host: str = Field(default="127.0.0.1", description="Address the SIP front binds (behind the operator's SBC)")
    sip_port: int = Field(default=5070, ge=1, le=65535)
    rtp_port_min: int = Field(default=31000, ge=1024, le=65534, description="First RTP port (even) of the range")
    rtp_port_max: int = Field(default=31999, ge=1025, le=65535)
    input_timeout_s: float = Field(default=6.0, gt=0, description="Silence after a prompt before a reprompt")
    digit_timeout_s: float = Field(default=4.0, gt=0, description="Pause between keys that ends an entry without #")
    max_call_s: float = Field(default=600.0, gt=0, description="A call is hung up after this, whatever happens")


def voice_settings(settings: Settings) -> VoiceSettings:
    """The voice settings; in production the demo IVR token is refused like every demo secret."""
    voice = VoiceSettings()
    if settings.env is Environment.PRODUCTION:
        token = voice.ivr_token.get_secret_value()
        if token == DEMO_IVR_TOKEN or len(token) < 32:
            raise ValueError("MOBIPAY_VOICE_IVR_TOKEN is the demo token or shorter than 32 characters; set the one "
                             "agreed with the IVR platform")
    if voice.rtp_port_max <= voice.rtp_port_min:
        raise ValueError("MOBIPAY_VOICE_RTP_PORT_MAX must be above MOBIPAY_VOICE_RTP_PORT_MIN")
    return voice
