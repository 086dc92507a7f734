"""Ledger refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class LedgerError(MobipayError):
    """Base of ledger refusals."""


class AccountNotFound(LedgerError):
    code = "ACCOUNT_NOT_FOUND"
    status = 404
    title = "Account not found"


class AccountExists(LedgerError):
    code = "ACCOUNT_EXISTS"
    status = 409
    title = "An account with this code exists with other attributes"


class AccountFrozen(LedgerError):
    code = "ACCOUNT_FROZEN"
    status = 422
    title = "Account is frozen"


class InsufficientFunds(LedgerError):
    code = "INSUFFICIENT_FUNDS"
    status = 422
    title = "Insufficient funds"


class CreditsExceedDebits(LedgerError):
    code = "CREDITS_EXCEED_DEBITS"
    status = 422
    title = "Credits would exceed debits on this account"


class CurrencyMismatch(LedgerError):
    code = "CURRENCY_MISMATCH"
    status = 422
    title = "Leg currency differs from the account currency"


class UnbalancedTransfer(LedgerError):
    code = "UNBALANCED_TRANSFER"
    status = 400
    title = "Debits and credits of a transfer must be equal per currency"


class InvalidTransfer(LedgerError):
    code = "INVALID_TRANSFER"
    status = 400
    title = "The transfer is malformed"


class PendingTransferNotFound(LedgerError):
    code = "PENDING_TRANSFER_NOT_FOUND"
    status = 404
    title = "No pending transfer (hold) with this id"


class PendingTransferAlreadyPosted(LedgerError):
    code = "PENDING_TRANSFER_ALREADY_POSTED"
    status = 409
    title = "The hold was already posted"


class PendingTransferAlreadyVoided(LedgerError):
    code = "PENDING_TRANSFER_ALREADY_VOIDED"
    status = 409
    title = "The hold was already voided"


class PendingTransferExpired(LedgerError):
    code = "PENDING_TRANSFER_EXPIRED"
    status = 409
    title = "The hold has expired"


class PendingTransferNotExpired(LedgerError):
    code = "PENDING_TRANSFER_NOT_EXPIRED"
    status = 409
    title = "The hold has not expired yet"


class ExceedsPendingAmount(LedgerError):
    code = "EXCEEDS_PENDING_AMOUNT"
    status = 422
    title = "Posting more than the hold"


class TransferNotFound(LedgerError):
    code = "TRANSFER_NOT_FOUND"
    status = 404
    title = "Transfer not found"


class AlreadyReversed(LedgerError):
    code = "ALREADY_REVERSED"
    status = 409
    title = "The transfer was already reversed"


class NotReversible(LedgerError):
    code = "NOT_REVERSIBLE"
    status = 422
    title = "This kind of transfer cannot be reversed"


class LinkedTransferFailed(LedgerError):
    code = "LINKED_TRANSFER_FAILED"
    status = 422
    title = "Another transfer in the linked chain failed"


class LinkedChainOpen(LedgerError):
    code = "LINKED_CHAIN_OPEN"
    status = 400
    title = "The last transfer of a batch is marked linked: the chain never closes"
