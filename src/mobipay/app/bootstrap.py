"""The one composition root: builds the database, clock, services and adapters from settings.

Nothing in mobipay connects to anything or reads the environment at import time; entry
points (the HTTP app, the CLI, the worker, tests) call :func:`build` and get a
:class:`Container` with everything wired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from mobipay.backoffice.operators import OperatorAccounts
from mobipay.backoffice.reversals import Reversals
from mobipay.bills.complaints import Complaints
from mobipay.bills.gateway_http import HttpBillerGateway
from mobipay.bills.saved import SavedBills
from mobipay.bills.service import BillsService
from mobipay.campaigns.bulk_service import BulkDisbursements
from mobipay.campaigns.delivery import Prizes
from mobipay.campaigns.draw_service import Draws
from mobipay.campaigns.segments import Segments
from mobipay.channels.actions import ChannelActions
from mobipay.channels.sms.console import ConsolePhones
from mobipay.channels.sms.kannel import KannelSender
from mobipay.channels.sms.service import SmsChannel
from mobipay.cinema.service import Cinemas
from mobipay.cinema.service import keys_from_secret as cinema_keys
from mobipay.confirmations.service import Confirmations
from mobipay.enterprise.service import Enterprise, device_token_owners
from mobipay.groupbuy.service import GroupBuy, keys_from_secret
from mobipay.instore.alliance_service import AllianceService
from mobipay.instore.micropay import Micropay, SecretBox
from mobipay.instore.paycode_throttle import ThrottlePolicy
from mobipay.instore.refunds import refund_guard
from mobipay.instore.service import DeviceTokens, InStore, QrLimits
from mobipay.instore.taps import NfcTaps
from mobipay.instore.terminals import Terminals
from mobipay.instore.tokens import NfcTokens
from mobipay.kernel.clock import Clock, SystemClock
from mobipay.kernel.roles import Roster
from mobipay.ledger.chart import SYSTEM_ACCOUNTS
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.lottery.gateway_http import HttpLotteryCentre
from mobipay.lottery.service import LotteryService
from mobipay.merchants.notify import MerchantNotifier
from mobipay.merchants.operators import MerchantOperators
from mobipay.merchants.redenvelopes import RedEnvelopes
from mobipay.merchants.reference_data import categories
from mobipay.merchants.service import MerchantService
from mobipay.merchants.settlement import Settlements
from mobipay.merchants.signing import load_or_create_key
from mobipay.orders.payouts import BankPayouts
from mobipay.orders.service import OrderBook
from mobipay.platform.config import Environment, Settings
from mobipay.platform.db import Database
from mobipay.platform.outbox import Handler, Message, OutboxWorker
from mobipay.platform.ratelimit import RateLimiter, RatePolicy
from mobipay.products.gateway_http import HttpProviderGateway
from mobipay.products.reference_data import insurance_products, operator_products
from mobipay.products.service import INSURER, OPERATOR_PRODUCTS, ProductsService
from mobipay.protection.gateway_http import HttpWarrantyService
from mobipay.protection.service import ProtectionService
from mobipay.rural.bank_http import RuralBank
from mobipay.rural.logistics_http import HttpLogistics
from mobipay.rural.market import Marketplace
from mobipay.rural.service import RuralService
from mobipay.sp.billing_http import HttpPhoneBilling
from mobipay.sp.governance import SpGovernance
from mobipay.sp.service import SpService
from mobipay.sp.settlement import SpBankPayouts, SpSettlements
from mobipay.topup.gateway_http import HttpTopupGateway
from mobipay.topup.model import Route, TopupPolicy
from mobipay.topup.partners import TopupPartners
from mobipay.topup.reference_data import price_rules
from mobipay.topup.service import TopupService
from mobipay.tourism.location_http import HttpLocationPlatform
from mobipay.tourism.service import TourismService
from mobipay.transit.backoffice_http import HttpOperatorBackOffice
from mobipay.transit.service import Transit, TransitBankPayouts
from mobipay.wallet.banking import BankingService
from mobipay.wallet.gateway_http import HttpBankGateway
from mobipay.wallet.model import CashOutFee
from mobipay.wallet.reference_data import card_bins, number_segments
from mobipay.wallet.service import WalletService

#: Payload keys whose values never reach a log (one-time codes, PINs, secrets).
SECRET_KEYS = frozenset({"code", "codes", "otp", "pin", "password", "secret", "token"})  # codes: vouchers


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret-named field replaced by ``***``."""
    if isinstance(value, dict):
        return {k: "***" if k.lower() in SECRET_KEYS else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


async def _log_handler(message: Message) -> None:
    """Delivery for SMS when no Kannel is configured outside development: logged, redacted."""
    structlog.get_logger("mobipay.outbox").info(
        "outbox.delivered_to_log", topic=message.topic, key=message.key, payload=redact(message.payload)
    )


async def _nobody(message: Message) -> None:
    """Topics nothing consumes yet (a new wallet): noted at debug level, so a demo's 200 new
    subscribers do not fill the worker's terminal."""
    structlog.get_logger("mobipay.outbox").debug("outbox.no_consumer", topic=message.topic, key=message.key)


@dataclass
class Container:
    """Everything an entry point needs, built once."""

    settings: Settings
    db: Database
    clock: Clock
    ledger: Ledger
    uow: UnitOfWorkRunner
    wallet: WalletService
    orders: OrderBook
    banking: BankingService
    topup: TopupService
    topup_partners: TopupPartners
    bills: BillsService
    saved_bills: SavedBills
    complaints: Complaints
    products: ProductsService
    lottery: LotteryService
    merchants: MerchantService
    merchant_notifier: MerchantNotifier
    settlements: Settlements
    red_envelopes: RedEnvelopes
    merchant_operators: MerchantOperators
    partners: list[HttpBankGateway | HttpTopupGateway | HttpBillerGateway | HttpProviderGateway | HttpLotteryCentre
                   | BankPayouts]
    rate_limiter: RateLimiter
    confirmations: Confirmations
    channel_actions: ChannelActions
    sms: SmsChannel
    sms_token: str
    handlers: dict[str, list[Handler]] = field(default_factory=dict)
    read_db: Database = field(init=False)  # MOBIPAY_DATABASE_READ_URL (a replica), else the writer (db)
    reads: UnitOfWorkRunner = field(init=False)  # the console's, reports' and KPI's reads: on read_db
    operators: OperatorAccounts = field(init=False)  # console accounts and sessions
    reversals: Reversals = field(init=False)  # reversal requests (maker-checker)
    terminals: Terminals = field(init=False)  # in-store POS terminals, their keys and signed requests
    instore: InStore = field(init=False)  # merchant QR codes: the merchant's codes, the subscriber's scan and pay
    alliances: AllianceService = field(init=False)  # alliance programmes, brand privileges applied at payment
    micropay: Micropay = field(init=False)  # payment codes (付款码): device secrets, terminals' micropay orders
    nfc_tokens: NfcTokens = field(init=False)  # NFC device tokens (HCE, SIM sticker), their keys, the deny list
    nfc_taps: NfcTaps = field(init=False)  # NFC taps: online, offline uploads, debts and their recovery
    segments: Segments = field(init=False)  # campaign segments: saved subscriber queries, counts, bulk SMS
    draws: Draws = field(init=False)  # auditable prize draws: commitment, lottery randomness, reveal
    prizes: Prizes = field(init=False)  # prize inventory, prizes won, delivery runs to the door
    bulk: BulkDisbursements = field(init=False)  # bulk disbursements: funders, batch files, maker-checker, runs
    sp: SpService = field(init=False)  # Monternet SPs: subscriptions, confirmation, billing, complaints
    sp_billing: HttpPhoneBilling = field(init=False)  # the operator's billing system for SP fees on phone bills
    sp_governance: SpGovernance = field(init=False)  # staff decisions on SPs: cards, penalties, exit, appeals
    sp_settlements: SpSettlements = field(init=False)  # monthly SP settlement, held while suspended, bank payouts
    sp_payouts: SpBankPayouts = field(init=False)
    warranty: HttpWarrantyService = field(init=False)  # the handset maker's warranty (三包) service
    protection: ProtectionService = field(init=False)  # handset protection: enrolments, claims, stock, blocklist
    groupbuy: GroupBuy = field(init=False)  # the group-buy community (聚惠啦): deals, vouchers, shop verification
    location: HttpLocationPlatform = field(init=False)  # the operator's location platform (tourism route replay)
    tourism: TourismService = field(init=False)  # 旅游通: officers, complaint work orders, route replay, evidence
    cinema: Cinemas = field(init=False)  # cinema e-tickets: shows, seat locks, code strings, kiosk checks
    transit: Transit = field(init=False)  # the transit one-card: validators, fares, taps, debts, clearing
    transit_payouts: TransitBankPayouts = field(init=False)
    transit_back_office: HttpOperatorBackOffice = field(init=False)  # the operators' own counts
    enterprise: Enterprise = field(init=False)  # enterprise one-card: employers, allowances, attendance
    rural: RuralService = field(init=False)  # village agents (助农取款服务点): float, cash-in/out, commissions
    rural_market: Marketplace = field(init=False)  # the rural marketplace: products, escrow, shipments, prices
    rural_bank: RuralBank = field(init=False)  # the bank for agents' float (debits of their card, payouts)
    logistics: HttpLogistics = field(init=False)  # the logistics partner delivering rural orders

    def __post_init__(self) -> None:
        if self.settings.database_read_url:  # docs/deploy.md: reads that may lag, on a replica
            self.read_db = Database(self.settings.database_read_url, pool_size=self.settings.db_pool_size,
                                    pgbouncer=self.settings.database_pgbouncer)
            self.reads = UnitOfWorkRunner(self.read_db, self.clock, self.ledger)
        else:
            self.read_db, self.reads = self.db, self.uow
        self.operators = OperatorAccounts(self.uow)
        self.reversals = Reversals(self.uow)
        self.terminals = Terminals(self.uow, self.merchants)
        s = self.settings
        self.instore = InStore(self.uow, self.merchants, self.wallet, QrLimits(
            s.instore_static_daily_limit, s.instore_dynamic_daily_limit, s.instore_dynamic_two_factor_daily_limit))
        self.merchants.trade_qr = self.instore.trade_payload  # emv_qr in the merchant API's trade answer
        self.alliances = AllianceService(self.uow, self.merchants)
        self.instore.alliances = self.alliances  # privileges in QR payments (micropay and NFC: AllianceService.apply)
        self.micropay = Micropay(self.uow, self.merchants, self.wallet, self.instore, SecretBox.from_settings(
            s.paycode_key.get_secret_value(), s.secret_key.get_secret_value()), ThrottlePolicy(
            s.instore_terminal_paycode_refusals, timedelta(seconds=s.instore_terminal_paycode_window_s)))
        self.nfc_tokens = NfcTokens(self.uow, self.wallet, s.secret_key.get_secret_value().encode())
        self.nfc_taps = NfcTaps(self.uow, self.nfc_tokens, self.merchants, self.wallet)
        self.nfc_taps.alliances = self.alliances  # privileges on NFC taps (online and uploaded)
        self.handlers.setdefault("wallet.credited", []).append(self.nfc_taps.on_wallet_credited)  # NFC debts
        self.merchants.refund_guards.append(refund_guard)  # a tap still owed is not refunded (instore/refunds.py)
        self.sms.nfc = self.nfc_tokens  # SMS GS (挂失): suspend the sender's NFC tokens
        self.segments = Segments(self.uow, self.wallet, self.alliances, self.ledger)
        self.draws = Draws(self.uow, self.segments, self.lottery)
        self.prizes = Prizes(self.uow, s.campaign_dir / "proofs", self.merchants.roster)
        self.bulk = BulkDisbursements(self.uow, self.wallet)
        self.handlers.setdefault("campaigns.bulk_approved", []).append(self.bulk.on_approved)  # the worker pays it
        self.sp_billing = HttpPhoneBilling(s.sp_billing_url, s.sp_billing_secret.get_secret_value().encode(),
                                           timeout_s=s.partner_timeout_s)
        self.sp = SpService(self.uow, self.wallet, self.sp_billing, platform_number=s.sms_sender)
        self.sms.sp = self.sp  # SMS to an SP's code, and 0000 / QX n / 00000 / 是 to ours
        self.sp_governance = SpGovernance(self.uow, self.sp, self.merchants.roster)  # the console vouches there
        self.sp_payouts = SpBankPayouts(s.bank_url, s.bank_secret.get_secret_value().encode(),
                                        timeout_s=s.bank_timeout_s)
        self.sp_settlements = SpSettlements(self.uow, self.orders, self.sp_payouts)
        self.warranty = HttpWarrantyService(s.warranty_url, s.warranty_secret.get_secret_value().encode(),
                                            timeout_s=s.partner_timeout_s)  # the maker's 三包 service
        self.protection = ProtectionService(self.uow, self.wallet, self.warranty,
                                            photo_dir=s.protection_photo_dir)
        self.groupbuy = GroupBuy(self.uow, self.merchants, self.wallet, keys_from_secret(
            s.groupbuy_code_key.get_secret_value(), s.secret_key.get_secret_value()),
            code_length=s.groupbuy_code_length, reverse_window=timedelta(minutes=s.groupbuy_reverse_minutes))
        self.location = HttpLocationPlatform(s.tourism_location_url,
                                             s.tourism_location_secret.get_secret_value().encode(),
                                             timeout_s=s.partner_timeout_s)
        self.tourism = TourismService(self.uow, self.wallet, self.location, evidence_dir=s.tourism_evidence_dir)
        self.cinema = Cinemas(self.uow, self.merchants, self.wallet, cinema_keys(  # 电子电影票
            s.cinema_code_key.get_secret_value(), s.secret_key.get_secret_value()),
            lock_for=timedelta(minutes=s.cinema_seat_lock_minutes))
        self.enterprise = Enterprise(self.uow, self.merchants, self.wallet, self.instore,  # 企业一卡通
                                     token_owners=device_token_owners(DeviceTokens(self.nfc_tokens)))
        self.sms.protection = self.protection  # SMS SJBZ (手机保障): enrol a phone
        self.transit_payouts = TransitBankPayouts(s.bank_url, s.bank_secret.get_secret_value().encode(),
                                                  timeout_s=s.bank_timeout_s)
        self.transit_back_office = HttpOperatorBackOffice(s.transit_operator_url,
                                                          s.transit_operator_secret.get_secret_value().encode(),
                                                          timeout_s=s.partner_timeout_s)
        self.transit = Transit(self.uow, DeviceTokens(self.nfc_tokens), self.orders, self.transit_payouts,
                               back_office=self.transit_back_office)
        self.handlers.setdefault("wallet.credited", []).append(self.transit.on_wallet_credited)  # fares owed
        self.rural_bank = RuralBank(s.bank_url, s.bank_secret.get_secret_value().encode(), timeout_s=s.bank_timeout_s)
        self.rural = RuralService(self.uow, self.wallet, self.orders, self.rural_bank, self.merchants.roster,
                                  s.secret_key.get_secret_value().encode())
        self.logistics = HttpLogistics(s.logistics_url, s.logistics_key.get_secret_value(),
                                       timeout_s=s.partner_timeout_s)
        self.rural_market = Marketplace(self.uow, self.wallet, self.rural, self.merchants.roster, self.logistics,
                                        s.secret_key.get_secret_value().encode(), fee_bps=s.rural_market_fee_bps,
                                        release_days=s.rural_release_days, dispute_days=s.rural_dispute_days)
        self.sms.rural = self.rural  # agents' and villagers' SMS: CK, DQ, QK, DLYE, DLMX, YJ, QH, JG

    def outbox_worker(self) -> OutboxWorker:
        s = self.settings
        return OutboxWorker(
            self.db, self.clock, self.handlers, max_attempts=s.outbox_max_attempts,
            backoff_base_s=s.outbox_backoff_base_s, backoff_max_s=s.outbox_backoff_max_s,
        )

    async def ensure_system_accounts(self) -> None:
        """Open the operator's own accounts (suspense, fees, …) if they are not there yet."""
        await self.ledger.open_accounts(list(SYSTEM_ACCOUNTS))
        await self.protection.open_accounts()
        await self.rural.open_accounts()
        await self.rural_market.open_accounts()

    async def stop_writers(self) -> None:
        """Finish the batches queued for the database (wallet transfers, ledger postings)."""
        await self.wallet.stop()
        await self.ledger.stop()

    async def close(self) -> None:
        await self.stop_writers()
        for partner in self.partners:
            await partner.close()
        await self.sp_billing.close()
        await self.sp_payouts.close()
        await self.warranty.close()
        await self.location.close()
        await self.transit_payouts.close()
        await self.transit_back_office.close()
        await self.rural_bank.close()
        await self.logistics.close()
        if self.sms.sender is not None:
            await self.sms.sender.close()
        if self.read_db is not self.db:
            await self.read_db.dispose()
        await self.db.dispose()


def build(settings: Settings | None = None, *, clock: Clock | None = None) -> Container:
    """Wire the platform from ``settings`` (read from the environment when not given)."""
    settings = settings or Settings()
    db = Database(settings.database_url, pool_size=settings.db_pool_size, pgbouncer=settings.database_pgbouncer)
    clock = clock or SystemClock()
    ledger = Ledger(db, clock, max_batch=settings.ledger_batch_max, writers=settings.ledger_writers)
    handlers: dict[str, list[Handler]] = {"wallet.user_registered": [_nobody]}
    uow = UnitOfWorkRunner(db, clock, ledger)
    secret = settings.secret_key.get_secret_value().encode()
    wallet = WalletService(uow, number_segments(), secret,
                           batch_writers=settings.transfer_batch_writers if settings.transfer_batching else 0,
                           request_ttl=settings.money_request_ttl)
    bank = HttpBankGateway(settings.bank_url, settings.bank_secret.get_secret_value().encode(),
                           timeout_s=settings.bank_timeout_s)
    orders = OrderBook(uow, settings.report_dir)
    banking = BankingService(uow, wallet, bank, card_bins(), orders,
                             fee=CashOutFee(settings.cash_out_fee_bps, settings.cash_out_fee_min))
    limiter = RateLimiter(settings.rate_limit_storage, RatePolicy(
        otp=settings.rate_limit_otp, pin=settings.rate_limit_pin, lookup=settings.rate_limit_lookup,
        sms=settings.rate_limit_sms))
    s = settings
    topup_gateways = {
        Route.OPERATOR_BILLING: HttpTopupGateway(Route.OPERATOR_BILLING.value, s.operator_billing_url,
                                                 s.operator_billing_secret.get_secret_value().encode(),
                                                 timeout_s=s.partner_timeout_s),
        Route.AGGREGATOR: HttpTopupGateway(Route.AGGREGATOR.value, s.aggregator_url,
                                           s.aggregator_secret.get_secret_value().encode(),
                                           timeout_s=s.partner_timeout_s),
    }
    topup = TopupService(uow, wallet, orders, dict(topup_gateways), price_rules(),
                         TopupPolicy(s.topup_min, s.topup_max, s.home_operator))
    biller_http = HttpBillerGateway(s.billers_url, s.billers_secret.get_secret_value().encode(),
                                    timeout_s=s.partner_timeout_s)
    bills = BillsService(uow, wallet, orders, {"biller_http": biller_http})
    providers = {
        OPERATOR_PRODUCTS: HttpProviderGateway(OPERATOR_PRODUCTS, s.products_url, s.products_secret.get_secret_value()
                                               .encode(), timeout_s=s.partner_timeout_s),
        INSURER: HttpProviderGateway(INSURER, s.insurer_url, s.insurer_secret.get_secret_value().encode(),
                                     timeout_s=s.partner_timeout_s),
    }
    products = ProductsService(uow, wallet, orders, dict(providers), operator_products(), insurance_products(),
                               s.home_operator, renewal_notice_days=s.product_renewal_notice_days)
    platform_key = load_or_create_key(s.merchant_key_file)
    merchants = MerchantService(uow, wallet, platform_key, categories(), Roster(s.operators),
                                notify_policy=s.notify_policy)
    envelopes = RedEnvelopes(merchants, uow)
    merchants.coupons = envelopes
    payouts = BankPayouts(s.bank_url, s.bank_secret.get_secret_value().encode(), timeout_s=s.bank_timeout_s)
    centre = HttpLotteryCentre(s.lottery_url, s.lottery_secret.get_secret_value().encode(),
                               timeout_s=s.partner_timeout_s)
    confirmations = Confirmations(uow, secret)
    lottery = LotteryService(uow, wallet, orders, centre, claim_threshold=s.lottery_claim_threshold)
    actions = ChannelActions(wallet, topup, bills, SavedBills(bills), max_consent=s.sms_payment_max,
                             products=products, lottery=lottery)
    kannel = KannelSender(s.kannel_sendsms_url, s.kannel_username, s.kannel_password.get_secret_value(),
                          dlr_url=s.sms_callback_url.rstrip("/") + "/sms/dlr", token=s.sms_inbound_token
                          .get_secret_value(), sender=s.sms_sender) if s.kannel_sendsms_url else None
    sms = SmsChannel(uow, actions, confirmations, limiter, kannel)
    handlers["sms.received"] = [sms.process]
    handlers["sms.send"] = [sms.deliver if kannel else ConsolePhones(s.sms_console_file).deliver
                            if settings.env is Environment.DEVELOPMENT else _log_handler]
    return Container(settings=settings, db=db, clock=clock, ledger=ledger, uow=uow, wallet=wallet,
                     orders=orders, banking=banking, topup=topup, topup_partners=TopupPartners(topup), bills=bills,
                     saved_bills=SavedBills(bills), complaints=Complaints(bills), products=products,
                     lottery=lottery,
                     merchants=merchants, red_envelopes=envelopes,
                     merchant_operators=MerchantOperators(uow, merchants),
                     merchant_notifier=MerchantNotifier(uow, platform_key, timeout_s=s.partner_timeout_s,
                                                        policy=s.notify_policy),
                     settlements=Settlements(uow, orders, payouts, s.report_dir),
                     partners=[bank, *topup_gateways.values(), biller_http, *providers.values(), centre, payouts],
                     rate_limiter=limiter, confirmations=confirmations, channel_actions=actions, sms=sms,
                     sms_token=s.sms_inbound_token.get_secret_value(), handlers=handlers)
