"""Typed settings from ``MOBIPAY_*`` environment variables (and an optional ``.env``).

Safe defaults for a laptop (embedded SQLite under ./var, demo secrets); in
``MOBIPAY_ENV=production`` the settings refuse SQLite and demo secrets, with a message
that says what to set instead.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mobipay.kernel.urls import DestinationPolicy, parse_networks

DEMO_SECRET = "demo-secret-change-me"  # noqa: S105 - a known, refused-in-production value
DEMO_ADMIN_TOKEN = "demo-admin-token"  # noqa: S105 - idem


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Everything the platform reads from the environment, in one typed place."""

    model_config = SettingsConfigDict(env_prefix="MOBIPAY_", env_file=".env", extra="ignore")

    env: Environment = Field(default=Environment.DEVELOPMENT, description="development | test | production: production "
                             "refuses SQLite and the demo secrets; development prints SMS codes in full")
    database_url: str = Field(
        default="sqlite+aiosqlite:///var/mobipay.db",
        description="SQLAlchemy URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db",
    )
    db_pool_size: int = Field(default=20, ge=1, le=500, description="PostgreSQL connections per process (as many "
                              "again may overflow)")
    database_read_url: str = Field(default="", description="A read-only URL (a streaming replica) for the "
                                   "console, reports and KPI queries, whose staleness the console shows; empty: "
                                   "they read the writer (MOBIPAY_DATABASE_URL)")
    database_pgbouncer: bool = Field(default=False, description="The PostgreSQL URLs go through PgBouncer in "
                                     "transaction mode: statements are prepared unnamed, without statement caches "
                                     "(docs/deploy.md)")
    secret_key: SecretStr = Field(default=SecretStr(DEMO_SECRET), description="Signs sessions, CSRF tokens and the "
                                  "voice state; at least 32 characters in production")
    admin_token: SecretStr = Field(
        default=SecretStr(DEMO_ADMIN_TOKEN),
        description="Bearer token for the internal ledger API (/v1/ledger); operator console comes later",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_json: bool = Field(default=True, description="JSON lines (true) or text for a terminal (false)")
    outbox_max_attempts: int = Field(default=8, ge=1, le=100, description="Deliveries of an outbox message before "
                                     "it is dead (mobipay outbox retry sends it again)")
    outbox_backoff_base_s: float = Field(default=2.0, gt=0, description="First retry delay; doubles each attempt")
    outbox_backoff_max_s: float = Field(default=3600.0, gt=0, description="Longest retry delay")
    hold_sweep_interval_s: float = Field(default=5.0, gt=0, description="How often the worker voids expired holds")
    ledger_batch_max: int = Field(default=2000, ge=1, le=10000, description="Most ledger commands in one group "
                                  "commit")
    ledger_writers: int = Field(default=2, ge=1, le=64, description="Ledger group-commit transactions in flight "
                                "at once, per process")
    transfer_batching: bool = Field(default=True, description="PostgreSQL: gather concurrent password-free "
                                    "P2P transfers into one transaction each (wallet/transfer_batch.py)")
    transfer_batch_writers: int = Field(default=4, ge=1, le=64, description="Transactions of transfer batches "
                                        "in flight at once, per server process")
    bank_url: str = Field(default="http://127.0.0.1:8101",
                          description="The partner bank's gateway (make run starts the bank SIMULATOR here)")
    bank_secret: SecretStr = Field(default=SecretStr("demo-bank-secret"),
                                   description="Shared HMAC secret signing messages to and from the bank")
    bank_timeout_s: float = Field(default=5.0, gt=0, description="After this, a bank order's outcome is unknown")
    bank_resolve_interval_s: float = Field(default=5.0, gt=0, description="How often the worker asks partners "
                                           "about orders whose outcome is unknown")
    cash_out_fee_bps: int = Field(default=10, ge=0, le=10_000, description="Cash-out fee in basis points")
    cash_out_fee_min: int = Field(default=10, ge=0, description="Smallest cash-out fee, fen")
    home_operator: str = Field(default="china_mobile", description="The operator running this platform: its "
                               "numbers are topped up through its own billing system, others through the aggregator")
    topup_min: int = Field(default=1_000, ge=100, description="Smallest top-up face value, fen")
    topup_max: int = Field(default=50_000, ge=100, description="Largest top-up face value, fen")
    operator_billing_url: str = Field(default="http://127.0.0.1:8102", description="The home operator's billing "
                                      "system (make run starts its SIMULATOR here)")
    operator_billing_secret: SecretStr = Field(default=SecretStr("demo-telco-secret"),
                                              description="Shared HMAC secret with the operator billing")
    aggregator_url: str = Field(default="http://127.0.0.1:8103", description="The top-up aggregator (SIMULATOR in "
                                "make run)")
    aggregator_secret: SecretStr = Field(default=SecretStr("demo-telco-secret"),
                                        description="Shared HMAC secret with the top-up aggregator")
    billers_url: str = Field(default="http://127.0.0.1:8104", description="The billers' gateway (biller_http "
                             "adapter; make run starts the billers SIMULATOR here)")
    billers_secret: SecretStr = Field(default=SecretStr("demo-biller-secret"),
                                     description="Shared HMAC secret with the billers")
    products_url: str = Field(default="http://127.0.0.1:8105", description="The operator's product platform "
                              "(SIMULATOR in make run)")
    products_secret: SecretStr = Field(default=SecretStr("demo-provider-secret"),
                                      description="Shared HMAC secret with the product platform")
    insurer_url: str = Field(default="http://127.0.0.1:8106", description="The insurers' gateway (SIMULATOR in "
                             "make run)")
    insurer_secret: SecretStr = Field(default=SecretStr("demo-provider-secret"),
                                     description="Shared HMAC secret with the insurer")
    lottery_url: str = Field(default="http://127.0.0.1:8107", description="The lottery centre (SIMULATOR in "
                             "make run)")
    lottery_secret: SecretStr = Field(default=SecretStr("demo-lottery-secret"),
                                     description="Shared HMAC secret with the lottery centre")
    warranty_url: str = Field(default="http://127.0.0.1:8109", description="The handset maker's warranty (三包) "
                              "service that handset protection asks about damage claims (SIMULATOR in make run)")
    warranty_secret: SecretStr = Field(default=SecretStr("demo-maker-secret"),
                                       description="Shared HMAC secret with the maker's warranty service")
    tourism_location_url: str = Field(default="http://127.0.0.1:8124", description="The operator's location "
                                      "platform that tourism route replays ask for a phone's positions (SIMULATOR "
                                      "in make run)")
    tourism_location_secret: SecretStr = Field(default=SecretStr("demo-location-secret"),
                                               description="Shared HMAC secret with the location platform")
    sp_billing_url: str = Field(default="http://127.0.0.1:8112", description="The operator's billing system that "
                                "puts SP information fees on phone bills (SIMULATOR in make run)")
    sp_billing_secret: SecretStr = Field(default=SecretStr("demo-sp-billing-secret"),
                                         description="Shared HMAC secret with the operator's billing system for SP "
                                         "fees")
    transit_operator_url: str = Field(default="http://127.0.0.1:8113", description="The transit operators' back "
                                      "office that the daily transit clearing is reconciled against (SIMULATOR in "
                                      "make run)")
    transit_operator_secret: SecretStr = Field(default=SecretStr("demo-transit-operator-secret"),
                                               description="Shared HMAC secret with the transit operators' back office")
    logistics_url: str = Field(default="http://127.0.0.1:8120", description="The logistics partner delivering rural "
                               "marketplace orders (SIMULATOR in make run: python -m mobipay.simulators.logistics)")
    logistics_key: SecretStr = Field(default=SecretStr("demo-logistics-key"),
                                     description="The key sent to the logistics partner (X-Logistics-Key)")
    rural_market_fee_bps: int = Field(default=300, ge=0, le=5_000, description="The rural marketplace's fee on an "
                                      "order, in basis points, taken when the escrow is released to the seller")
    rural_release_days: int = Field(default=10, ge=1, le=60, description="Days after payment that a rural "
                                    "marketplace order's escrow is released to the seller unless disputed")
    rural_dispute_days: int = Field(default=5, ge=1, le=30, description="Days staff have to decide a rural "
                                    "marketplace dispute; undecided by then, the buyer is refunded")
    lottery_claim_threshold: int = Field(default=1_000_000, ge=0, description="Fen: a lottery prize above this "
                                         "is not paid automatically; the winner claims it with the wallet's "
                                         "verified real name and identity card (default 10,000 CNY)")
    product_renewal_notice_days: int = Field(default=3, ge=0, le=27, description="Days before a monthly "
                                             "product renews that the subscriber is told by SMS (0: no notice)")
    partner_timeout_s: float = Field(default=5.0, gt=0, description="After this, a partner order's outcome is "
                                     "unknown (top-ups, bills)")
    instore_static_daily_limit: int = Field(default=50_000, ge=0, description="Fen a payer may pay a Beijing day "
                                            "by scanning merchants' static QR codes, all shops together (PBoC "
                                            "notice 2017/296: 500 CNY)")
    instore_dynamic_daily_limit: int = Field(default=100_000, ge=0, description="Fen a payer may pay a Beijing day "
                                             "by dynamic QR codes verified with fewer than two factors (PBoC "
                                             "2017/296: 1,000 CNY)")
    instore_dynamic_two_factor_daily_limit: int = Field(
        default=500_000, ge=0, description="Fen a payer may pay a Beijing day by dynamic QR codes in all, paying "
        "with two factors: the PIN on a bound device, a session opened by SMS code (PBoC 2017/296: 5,000 CNY)")
    instore_terminal_paycode_refusals: int = Field(
        default=10, ge=1, le=1000, description="Refused payment codes (unknown device, wrong code, revoked or "
        "locked device) one POS terminal may send in a window, whatever the devices; past them its micropay "
        "charges are refused (TERMINAL_PAYCODE_THROTTLED) until the window ends")
    instore_terminal_paycode_window_s: int = Field(
        default=600, ge=1, le=86_400, description="Seconds of that window, from the terminal's first refused "
        "payment code in it")
    paycode_key: SecretStr = Field(
        default=SecretStr(""), description="Base64 of 32 bytes: the AES-256-GCM key sealing payment-code device "
        "secrets at rest (instore/micropay.py). Empty: derived from MOBIPAY_SECRET_KEY with HKDF (production "
        "refuses the demo secret key, so the derived key is not a known one either)")
    groupbuy_code_key: SecretStr = Field(
        default=SecretStr(""), description="Base64 of 32 bytes: the key group-buy voucher codes are derived with and "
        "their stored keyed hashes are made with (groupbuy/service.py, two HKDF outputs of it). Empty: derived from "
        "MOBIPAY_SECRET_KEY with HKDF (production refuses the demo secret key)")
    groupbuy_reverse_minutes: int = Field(default=60, ge=0, le=24 * 60, description="Minutes a shop may reverse a "
                                          "voucher consumption (撤销验券); then it is final and the merchant is paid")
    groupbuy_code_length: int = Field(default=12, ge=10, le=12, description="Digits of a new group-buy voucher code "
                                      "(10 to 12)")
    cinema_seat_lock_minutes: int = Field(default=10, ge=1, le=60, description="Minutes chosen cinema seats stay "
                                          "locked unpaid; then they are free again (cinema/service.py)")
    cinema_code_key: SecretStr = Field(
        default=SecretStr(""), description="Base64 of 32 bytes: the key cinema ticket code strings (串码) are derived "
        "with and their stored keyed hashes are made with (two HKDF outputs of it). Empty: derived from "
        "MOBIPAY_SECRET_KEY with HKDF")
    merchant_key_file: Path = Field(default=Path("var/merchant_platform_key.pem"),
                                    description="The platform's RSA key signing answers to merchants (made if missing)")
    notify_allow_networks: str = Field(
        default="", description="Non-public networks (CIDRs, comma-separated, e.g. 127.0.0.1/32) that merchants' "
        "notify URLs may reach anyway: for the loopback merchant site SIMULATOR of tests and make run only; "
        "refused in production. Empty: public internet addresses only")
    operators: str = Field(default="operator:admin;demo:admin",
                           description="Operator roster for the command line (the console has its own accounts: "
                           "mobipay operator create): name:role,role;… "
                           "(roles: admin, operations, risk, finance, support, merchant_review, sp_governance)")
    report_dir: Path = Field(default=Path("var/reports"), description="Where reconciliation reports are written")
    campaign_dir: Path = Field(default=Path("var/campaigns"), description="Where prize deliveries' proofs "
                               "(receivers' signatures and photos, named by SHA-256) are kept")
    protection_photo_dir: Path = Field(default=Path("var/protection/photos"), description="Where handset "
                                       "protection claims' photos (JPEG, PNG; named by SHA-256) are kept")
    tourism_evidence_dir: Path = Field(default=Path("var/tourism/evidence"), description="Where tourism "
                                       "enforcement evidence (photos, audio; named by SHA-256) is kept")
    sms_console_file: Path = Field(default=Path("var/sms.log"), description="Development without Kannel: every "
                                   "SMS is written here; those with a code are also printed to the terminal")
    chart_font: Path = Field(default=Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
                             description="The font file report charts draw Chinese with (Debian: apt-get install "
                             "fonts-noto-cjk); without it, labels that are not ASCII become #1, #2…")
    rate_limit_storage: str = Field(
        default="async+memory://",
        description="Where per-address request counts live: async+memory:// (one process) or "
        "async+redis://host:6379 (shared by all API nodes)",
    )
    rate_limit_otp: str = Field(default="10/minute", description="SMS codes one address may ask for")
    rate_limit_pin: str = Field(default="30/minute", description="PIN or code checks from one address")
    rate_limit_lookup: str = Field(default="60/minute", description="Recipient look-ups from one address")
    sms_payment_max: int = Field(default=50_000, ge=0, description="Largest payment, fen, that an SMS secondary "
                                 "confirmation (or voice) may authorise in place of the PIN")
    rate_limit_sms: str = Field(default="10/minute", description="Commands one number may send by SMS")
    money_request_days: int = Field(default=3, ge=1, le=30, description="Days a money request stays open; then "
                                    "the worker expires it and tells both sides by SMS")
    kannel_sendsms_url: str = Field(default="", description="Kannel smsbox sendsms URL, e.g. "
                                    "http://127.0.0.1:13013/cgi-bin/sendsms; empty: SMS is only logged (development)")
    kannel_username: str = Field(default="mobipay", description="Kannel sendsms-user")
    kannel_password: SecretStr = Field(default=SecretStr("demo-kannel-secret"), description="Kannel sendsms "
                                       "password (in the generated kannel.conf)")
    sms_sender: str = Field(default="10658888", description="The service number subscribers text and see as sender")
    sms_callback_url: str = Field(default="http://127.0.0.1:8000", description="Where Kannel reaches mobipay "
                                  "(inbound messages and delivery reports)")
    sms_inbound_token: SecretStr = Field(default=SecretStr("demo-sms-token"), description="Shared token Kannel "
                                         "sends with inbound messages and delivery reports")

    trusted_proxies: str = Field(
        default="", description="Addresses (IPs or CIDRs, comma-separated) of the reverse proxies in front of "
        "`mobipay serve` whose X-Forwarded-For / X-Forwarded-Proto are believed, e.g. 10.0.0.5/32. Empty: "
        "the connecting address is the client (per-address limits cannot be reset by a forged header)")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("database_read_url")
    @classmethod
    def _database_read_url(cls, value: str) -> str:
        return normalise_database_url(value) if value.strip() else ""

    @field_validator("notify_allow_networks", "trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # a ValueError naming the entry that is not a network
        return value

    @property
    def notify_policy(self) -> DestinationPolicy:
        """Where merchants' notify URLs may lead (public addresses, plus the test networks)."""
        return DestinationPolicy(parse_networks(self.notify_allow_networks))

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env is Environment.PRODUCTION:
            problems = []
            if self.is_sqlite:
                problems.append(
                    "MOBIPAY_DATABASE_URL points at SQLite; production needs PostgreSQL, "
                    "e.g. postgresql+asyncpg://mobipay@db-host/mobipay"
                )
            if self.secret_key.get_secret_value() in (DEMO_SECRET, "") or len(
                self.secret_key.get_secret_value()
            ) < 32:
                problems.append(
                    "MOBIPAY_SECRET_KEY is the demo secret or shorter than 32 characters; "
                    "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
                )
            if self.admin_token.get_secret_value() in (DEMO_ADMIN_TOKEN, "") or len(
                self.admin_token.get_secret_value()
            ) < 32:
                problems.append("MOBIPAY_ADMIN_TOKEN is the demo token or shorter than 32 characters")
            if self.bank_secret.get_secret_value() == "demo-bank-secret":
                problems.append("MOBIPAY_BANK_SECRET is the demo secret; set the one agreed with the bank")
            for name in ("operator_billing_secret", "aggregator_secret", "billers_secret", "products_secret",
                         "insurer_secret", "lottery_secret", "warranty_secret", "sp_billing_secret", "kannel_password",
                         "sms_inbound_token", "tourism_location_secret"):
                if getattr(self, name).get_secret_value().startswith("demo-"):
                    problems.append(f"MOBIPAY_{name.upper()} is the demo secret; set the one agreed with the partner")
            if self.notify_allow_networks.strip():
                problems.append("MOBIPAY_NOTIFY_ALLOW_NETWORKS lets merchants' notify URLs reach private networks "
                                "(SSRF); it is for test environments only: leave it empty")
            if problems:
                raise ValueError("unsafe production settings: " + "; ".join(problems))
        return self

    @property
    def money_request_ttl(self) -> timedelta:
        """How long a money request stays open (``money_request_days``)."""
        return timedelta(days=self.money_request_days)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite URL (None for in-memory or other databases)."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split("///", 1)[1] if "///" in self.database_url else ""
        return Path(path) if path and path != ":memory:" else None


#: The drivers mobipay runs on, by the URL schemes people copy from other tools
#: (psql, libpq, Django, SQLAlchemy's defaults).
_DRIVERS = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg",
            "postgresql+asyncpg": "postgresql+asyncpg", "postgresql+psycopg": "postgresql+asyncpg",
            "postgresql+psycopg2": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite",
            "sqlite+aiosqlite": "sqlite+aiosqlite"}


def normalise_database_url(url: str) -> str:
    """The URL with the driver mobipay uses: ``postgresql://u@h/db`` (what psql and every
    other tool take) means ``postgresql+asyncpg://u@h/db``; ``sqlite:///f`` the aiosqlite
    form. Anything else is refused with the forms that work."""
    scheme, sep, rest = url.strip().partition("://")
    driver = _DRIVERS.get(scheme.lower())
    if not sep or driver is None:
        raise ValueError(f"{url!r} is not a database URL mobipay can use: give postgresql://user@host/database "
                         "or sqlite:///path/to/file.db")
    return f"{driver}://{rest}"


def settings_table() -> str:
    """docs/settings.md: every setting as its environment variable, default and meaning,
    from :class:`Settings` itself (``mobipay docs settings``), so the page cannot drift."""
    lines = ["# Settings", "",
             "Generated from `Settings` (`src/mobipay/platform/config.py`) by `mobipay docs settings`; do not",
             "edit by hand. Every setting is read from the environment (or a `.env` file) with the",
             "`MOBIPAY_` prefix. Production (`MOBIPAY_ENV=production`) refuses SQLite and the demo secrets.",
             "", "| variable | default | what |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            shown = "(a demo value: set your own)"
        elif isinstance(default, StrEnum):
            shown = f"`{default.value}`"
        elif default in ("", None):
            shown = "(empty)"
        else:
            shown = f"`{default}`"
        what = " ".join((field.description or "").split()).replace("|", "\\|")
        lines.append(f"| `MOBIPAY_{name.upper()}` | {shown} | {what} |")
    return "\n".join(lines) + "\n"
