"""The operator's own accounts (chart of accounts) and how wallet accounts are named.

Account codes are stable, readable strings: a context opens the accounts it needs with
:data:`SYSTEM_ACCOUNTS` or :func:`wallet_account` and refers to them by code.
"""

from __future__ import annotations

from mobipay.ledger.model import AccountKind, AccountSpec

BANK_SETTLEMENT = "asset:bank:settlement"  # the operator's reserve at its bank, backing wallets
SUSPENSE = "liability:suspense"  # money in flight to someone not yet identified
FEE_INCOME = "income:fees"
OPERATOR_EQUITY = "equity:operator"
PAYABLE_OPERATOR_BILLING = "liability:payable:operator_billing"  # top-ups the home operator credited
PAYABLE_AGGREGATOR = "liability:payable:topup_aggregator"  # top-ups the aggregator credited
TOPUP_DISCOUNTS = "expense:marketing:topup_discounts"  # what price rules took off the face value
TOPUP_PARTNER_COMMISSION = "expense:commission:topup_partners"  # what internet partners keep of a top-up
SETTLEMENT_IN_TRANSIT = "liability:settlement:in_transit"  # merchants' settled money on its way to their banks
OPERATOR_PRODUCT_INCOME = "income:operator_products"  # wireless music, 12580, Fetion sold from wallets
PAYABLE_INSURER = "liability:payable:insurer"  # premiums collected for insurers
PAYABLE_LOTTERY = "liability:payable:lottery_centre"  # ticket sales owed to the lottery centre
RECEIVABLE_LOTTERY = "asset:receivable:lottery_centre"  # winnings paid out, owed back by the centre
PAYABLE_PRIZE_TAX = "liability:payable:tax:lottery_prizes"  # income tax withheld from prizes, owed to the tax office

SYSTEM_ACCOUNTS: tuple[AccountSpec, ...] = (
    AccountSpec(BANK_SETTLEMENT, AccountKind.ASSET, name="Reserve at settlement bank"),
    AccountSpec(SUSPENSE, AccountKind.LIABILITY, name="Suspense", debits_must_not_exceed_credits=True),
    AccountSpec(FEE_INCOME, AccountKind.INCOME, name="Fee income"),
    AccountSpec(OPERATOR_EQUITY, AccountKind.EQUITY, name="Operator equity"),
    AccountSpec(PAYABLE_OPERATOR_BILLING, AccountKind.LIABILITY, name="Payable to the operator's billing system"),
    AccountSpec(PAYABLE_AGGREGATOR, AccountKind.LIABILITY, name="Payable to the top-up aggregator"),
    AccountSpec(TOPUP_DISCOUNTS, AccountKind.EXPENSE, name="Top-up discounts"),
    AccountSpec(TOPUP_PARTNER_COMMISSION, AccountKind.EXPENSE, name="Commission of top-up partners"),
    AccountSpec(SETTLEMENT_IN_TRANSIT, AccountKind.LIABILITY, name="Merchant settlements in transit",
                debits_must_not_exceed_credits=True),
    AccountSpec(OPERATOR_PRODUCT_INCOME, AccountKind.INCOME, name="Operator products sold from wallets"),
    AccountSpec(PAYABLE_INSURER, AccountKind.LIABILITY, name="Premiums payable to insurers"),
    AccountSpec(PAYABLE_LOTTERY, AccountKind.LIABILITY, name="Ticket sales payable to the lottery centre"),
    AccountSpec(RECEIVABLE_LOTTERY, AccountKind.ASSET, name="Winnings receivable from the lottery centre"),
    AccountSpec(PAYABLE_PRIZE_TAX, AccountKind.LIABILITY, name="Income tax withheld from lottery prizes"),
)


WALLET_PREFIX = "wallet:"


def wallet_owner(code: str) -> str | None:
    """The number whose wallet an account code is (None for any other account)."""
    return code.removeprefix(WALLET_PREFIX) if code.startswith(WALLET_PREFIX) else None


def wallet_account(msisdn: str, currency: str = "CNY") -> AccountSpec:
    """A subscriber's wallet: what the operator owes them, never below zero."""
    return AccountSpec(
        f"{WALLET_PREFIX}{msisdn}", AccountKind.LIABILITY, currency=currency, owner=msisdn,
        name=f"Wallet {msisdn}", debits_must_not_exceed_credits=True,
    )
