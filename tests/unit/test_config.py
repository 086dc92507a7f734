"""Settings refuse unsafe production values with a message that says what to set."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mobipay.platform.config import Settings


def test_defaults_are_embedded_sqlite() -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.is_sqlite
    assert str(s.sqlite_path()) == "var/mobipay.db"


def test_production_refuses_sqlite_and_demo_secrets() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, env="production")  # type: ignore[call-arg]
    text = str(info.value)
    assert "SQLite" in text and "MOBIPAY_SECRET_KEY" in text and "MOBIPAY_ADMIN_TOKEN" in text
    assert "MOBIPAY_BANK_SECRET" in text


def test_production_accepts_postgres_and_real_secrets() -> None:
    s = Settings(  # type: ignore[call-arg]
        _env_file=None, env="production", database_url="postgresql+asyncpg://mobipay@db/mobipay",
        secret_key="x" * 40, admin_token="y" * 40, bank_secret="z" * 40, operator_billing_secret="o" * 40,
        aggregator_secret="a" * 40, billers_secret="b" * 40, products_secret="p" * 40, insurer_secret="i" * 40,
        lottery_secret="l" * 40, kannel_password="k" * 40, sms_inbound_token="t" * 40,
        sp_billing_secret="s" * 40, warranty_secret="w" * 40, tourism_location_secret="g" * 40,
    )
    assert not s.is_sqlite


def test_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOBIPAY_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    monkeypatch.setenv("MOBIPAY_LEDGER_BATCH_MAX", "50")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.database_url == "postgresql+asyncpg://u@h/db"
    assert s.ledger_batch_max == 50


def test_notify_networks_are_for_test_environments_only() -> None:
    """Letting notify URLs reach private networks (the loopback merchant site SIMULATOR) is a
    test setting: production refuses it, and a value that is not a network is refused."""
    s = Settings(_env_file=None, notify_allow_networks="127.0.0.1/32, ::1/128")  # type: ignore[call-arg]
    assert [str(n) for n in s.notify_policy.allowed_networks] == ["127.0.0.1/32", "::1/128"]
    assert Settings(_env_file=None).notify_policy.allowed_networks == ()  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="not a network"):
        Settings(_env_file=None, notify_allow_networks="localhost")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="MOBIPAY_NOTIFY_ALLOW_NETWORKS"):
        Settings(  # type: ignore[call-arg]
            _env_file=None, env="production", database_url="postgresql+asyncpg://mobipay@db/mobipay",
            secret_key="x" * 40, admin_token="y" * 40, bank_secret="z" * 40, operator_billing_secret="o" * 40,
            aggregator_secret="a" * 40, billers_secret="b" * 40, products_secret="p" * 40, insurer_secret="i" * 40,
            lottery_secret="l" * 40, kannel_password="k" * 40, sms_inbound_token="t" * 40,
            notify_allow_networks="127.0.0.1/32")


def test_trusted_proxies_are_networks() -> None:
    assert Settings(_env_file=None).trusted_proxies == ""  # type: ignore[call-arg]  # by default: nobody's
    assert Settings(_env_file=None, trusted_proxies="10.0.0.5/32,10.1.0.0/16").trusted_proxies  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="not a network"):
        Settings(_env_file=None, trusted_proxies="*")  # type: ignore[call-arg]
