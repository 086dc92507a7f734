"""Rural refusals, each with a stable code (see docs/errors.md).

A wrong cash-out or pick-up code and an unknown one are one answer (``RURAL_CODE_WRONG``):
the answer tells a guesser nothing; wrong codes count and lock the request after a few.
"""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class RuralInvalid(MobipayError):
    code = "RURAL_INVALID"
    status = 400
    title = "The rural request is not valid"


class AgentNotFound(MobipayError):
    code = "AGENT_NOT_FOUND"
    status = 404
    title = "No such agent (village payment service point)"


class AgentNotActive(MobipayError):
    code = "AGENT_NOT_ACTIVE"
    status = 422
    title = "This agent is suspended and cannot serve customers"


class AgentSessionInvalid(MobipayError):
    code = "AGENT_SESSION_INVALID"
    status = 401
    title = "Sign in as the agent's staff first (agent code, staff number and PIN)"


class StaffPinWrong(MobipayError):
    code = "AGENT_STAFF_PIN_WRONG"
    status = 401
    title = "The agent code, staff number or PIN is wrong"


class StaffLocked(MobipayError):
    code = "AGENT_STAFF_LOCKED"
    status = 429
    title = "Too many wrong PINs: this staff member is locked for a while"


class FloatInsufficient(MobipayError):
    code = "AGENT_FLOAT_INSUFFICIENT"
    status = 422
    title = "The agent's float is too low for this"


class AgentLimitExceeded(MobipayError):
    code = "AGENT_LIMIT_EXCEEDED"
    status = 422
    title = "Past one of the agent's limits (float or daily cash-out)"


class CustomerLimitExceeded(MobipayError):
    code = "RURAL_CUSTOMER_LIMIT_EXCEEDED"
    status = 422
    title = "Past the customer's daily limit at agents"


class CustomerNotRegistered(MobipayError):
    code = "RURAL_CUSTOMER_NOT_REGISTERED"
    status = 422
    title = "This number has no wallet: register it first"


class CashOutNotFound(MobipayError):
    code = "CASH_OUT_NOT_FOUND"
    status = 404
    title = "No such cash-out waiting at this agent"


class CashOutNotPending(MobipayError):
    code = "CASH_OUT_NOT_PENDING"
    status = 409
    title = "This cash-out is no longer waiting for the customer's code"


class CodeWrong(MobipayError):
    code = "RURAL_CODE_WRONG"
    status = 422
    title = "The code is wrong or expired"


class NotSuperAgent(MobipayError):
    code = "NOT_SUPER_AGENT"
    status = 403
    title = "Only the agent's own super-agent may rebalance its float"


class BankCardMissing(MobipayError):
    code = "AGENT_BANK_CARD_MISSING"
    status = 422
    title = "Bind the agent's bank card first"


class BankCardRejected(MobipayError):
    code = "AGENT_BANK_CARD_REJECTED"
    status = 422
    title = "The bank did not verify this card for the agent"


class FlagNotFound(MobipayError):
    code = "RURAL_FLAG_NOT_FOUND"
    status = 404
    title = "No such flagged transaction"


class ProductNotFound(MobipayError):
    code = "RURAL_PRODUCT_NOT_FOUND"
    status = 404
    title = "No such product on the rural marketplace"


class OutOfStock(MobipayError):
    code = "RURAL_OUT_OF_STOCK"
    status = 409
    title = "Not enough stock of this product"


class NotDeliverable(MobipayError):
    code = "RURAL_NOT_DELIVERABLE"
    status = 422
    title = "The seller does not deliver to this county"


class MarketOrderNotFound(MobipayError):
    code = "RURAL_ORDER_NOT_FOUND"
    status = 404
    title = "No such marketplace order"


class MarketOrderState(MobipayError):
    code = "RURAL_ORDER_STATE"
    status = 409
    title = "The order cannot do this in its present state"


class DisputeClosed(MobipayError):
    code = "RURAL_DISPUTE_CLOSED"
    status = 422
    title = "The time to open a dispute on this order has passed"


class DisputeDecided(MobipayError):
    code = "RURAL_DISPUTE_DECIDED"
    status = 409
    title = "This dispute is already decided (once per dispute)"


class SellerNotFound(MobipayError):
    code = "RURAL_SELLER_NOT_FOUND"
    status = 404
    title = "No such seller on the rural marketplace"


class NotSeller(MobipayError):
    code = "RURAL_NOT_SELLER"
    status = 403
    title = "This wallet is not a seller on the rural marketplace"
