"""The voice dialog: one definition of the menus, prompts and keypad rules, no I/O.

Both voice fronts (VoiceXML documents for the operator's IVR, and our own SIP user agent)
interpret this module, so a caller hears the same words and presses the same keys on
either. It is a state machine over immutable :class:`CallState` values:

* :func:`begin` starts a call; :func:`on_input` takes what the caller keyed (``"1"``,
  ``"13800138000"`` — an entry without its closing ``#`` —, ``"*"`` for back, or ``None``
  when nothing came before the timeout); :func:`on_result` takes the outcome of a service
  action the previous step asked for.
* Each returns a :class:`Step`: the new state, what to say, what input to wait for, and at
  most one :class:`Action` for the caller of this module to run (the session, which owns the
  services). Money is integer fen; amounts are keyed in whole yuan.

Bad input never reaches a service: malformed numbers and amounts are refused here with the
same error codes the services use (``INVALID_MSISDN``, ``INVALID_AMOUNT``, ``INVALID_PIN``),
and the session speaks them through :mod:`mobipay.channels.words`.

A village agent's staff phone gets its own menu (the ``agent_*``, ``cashin_*`` and
``cashout_*`` nodes at the end of the module): the staff PIN, then cash-in, cash-out with
the customer's code, float, statement and commissions, each one of the rural context's use
cases; its refusals are worded here (:data:`AGENT_WORDS`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from mobipay.kernel.errors import InvalidAmount, MobipayError
from mobipay.kernel.msisdn import normalize_msisdn
from mobipay.lottery.model import BET_PRICE, MAX_BETS
from mobipay.rural.model import CODE_TRIES
from mobipay.wallet.errors import InvalidPin

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

#: Prompt id → (Chinese, English). ``{name}`` marks a dynamic part filled from :class:`Say` params.
PROMPTS: dict[str, tuple[str, str]] = {
    "welcome": ("欢迎致电手机钱包。", "Welcome to the mobile wallet."),
    "enter_pin": ("请输入六位支付密码，以井号键结束。", "Please enter your six digit PIN, then press hash."),
    "main_menu": ("查询余额请按1，话费充值请按2，转账请按3，缴费请按4，查询最近交易请按5，"
                  "订购彩铃等移动业务请按6，彩票机选请按7，查询或退保我的保单请按8，"
                  "For English press 9，结束通话请按0。",
                  "For your balance press 1, mobile top-up 2, transfer 3, pay a bill 4, recent transactions 5, "
                  "operator services 6, lottery quick pick 7, my insurance policies 8, 中文请按9, "
                  "to end the call press 0."),
    "balance_is": ("您的可用余额为{amount}元。", "Your available balance is {amount} yuan."),
    "recent_none": ("暂无交易记录。", "There are no transactions yet."),
    "recent_in": ("{date}，{kind}，收入{amount}元。", "{date}, {kind}, {amount} yuan in."),
    "recent_out": ("{date}，{kind}，支出{amount}元。", "{date}, {kind}, {amount} yuan out."),
    "topup_whom": ("为本机充值请按1，为其他号码充值请按2，返回请按星号键。",
                   "To top up this phone press 1, another number press 2, to go back press star."),
    "topup_number": ("请输入要充值的手机号码，以井号键结束。", "Enter the mobile number to top up, then press hash."),
    "topup_amount": ("请输入充值金额，以元为单位，以井号键结束。", "Enter the amount in yuan, then press hash."),
    "topup_confirm_own": ("为本机充值{amount}元，确认请按1，取消请按2。",
                          "Top up this phone with {amount} yuan: to confirm press 1, to cancel press 2."),
    "topup_confirm": ("为{number}充值{amount}元，确认请按1，取消请按2。",
                      "Top up {number} with {amount} yuan: to confirm press 1, to cancel press 2."),
    "topup_done": ("充值成功。", "The top-up is done."),
    "topup_pending": ("充值已受理，结果将以短信通知您。",
                      "The top-up is accepted; a text message will tell you the result."),
    "topup_failed": ("充值未成功，款项已退回。", "The top-up failed; the money is back."),
    "transfer_number": ("请输入收款人手机号码，以井号键结束。",
                        "Enter the recipient's mobile number, then press hash."),
    "transfer_amount": ("请输入转账金额，以元为单位，以井号键结束。", "Enter the amount in yuan, then press hash."),
    "transfer_confirm": ("向{number}转账{amount}元，确认请按1，取消请按2。",
                         "Send {amount} yuan to {number}: to confirm press 1, to cancel press 2."),
    "transfer_done": ("转账已完成。", "The transfer is done."),
    "bills_none": ("您还没有保存的账单，请先在客户端添加。", "You have no saved bills; add one in the app first."),
    "bill_item": ("{name}请按{n}。", "For {name} press {n}."),
    "bills_back": ("返回请按星号键。", "To go back press star."),
    "bill_confirm": ("{name}本期应缴{amount}元，确认缴费请按1，取消请按2。",
                     "{name}: {amount} yuan due; to pay press 1, to cancel press 2."),
    "bill_done": ("缴费成功。", "The bill is paid."),
    "bill_pending": ("缴费已受理，结果将以短信通知您。",
                     "The payment is accepted; a text message will tell you the result."),
    "bill_failed": ("缴费未成功，款项已退回。", "The bill payment failed; the money is back."),
    "product_item": ("{name}，{amount}元，请按{n}。", "{name}, {amount} yuan, press {n}."),
    "product_confirm": ("订购{name}，{amount}元，确认请按1，取消请按2。",
                        "Subscribe to {name} for {amount} yuan: to confirm press 1, to cancel press 2."),
    "product_done": ("订购成功。", "The service is active."),
    "product_pending": ("订购已受理，结果将以短信通知您。",
                        "The order is accepted; a text message will tell you the result."),
    "product_failed": ("订购未成功，款项已退回。", "The order failed; the money is back."),
    "game_item": ("{name}第{issue}期，{close}截止销售，请按{n}。", "{name} draw {issue}, sales close at {close}, "
                  "press {n}."),
    "lottery_count": ("机选几注？每注2元，请按1到5，返回请按星号键。",
                      "How many quick picks? 2 yuan each; press 1 to 5, to go back press star."),
    "lottery_confirm": ("{name}第{issue}期机选{count}注，共{amount}元，确认请按1，取消请按2。",
                        "{count} quick picks of {name} draw {issue} for {amount} yuan: to confirm press 1, "
                        "to cancel press 2."),
    "lottery_done": ("投注成功，您的号码是{numbers}。", "The ticket is bought; your numbers are {numbers}."),
    "lottery_pending": ("投注已受理，您的号码是{numbers}，出票结果将以短信通知您。",
                        "The ticket is accepted; your numbers are {numbers}; a text message will confirm it."),
    "lottery_failed": ("投注未成功，款项已退回。", "The ticket was not accepted; the money is back."),
    "policies_none": ("您还没有保单。保险请在客户端投保。", "You have no policies; insurance is bought in the app."),
    "policy_item": ("第{n}份保单，{name}，保费{amount}元，{status}。", "Policy {n}: {name}, premium {amount} yuan, "
                    "{status}."),
    "policy_options_cancel": ("退保请按1，听下一份请按2，返回请按星号键。",
                              "To cancel this policy press 1, for the next one press 2, to go back press star."),
    "policy_options": ("听下一份请按2，返回请按星号键。", "For the next policy press 2, to go back press star."),
    "policies_end": ("保单已全部读完。", "That was your last policy."),
    "policy_confirm": ("退保{name}，保费{amount}元退回您的钱包，保障随即终止。确认退保请按1，取消请按2。",
                       "Cancel {name}: the {amount} yuan premium comes back to your wallet and the cover ends. "
                       "To confirm press 1, to keep the policy press 2."),
    "policy_cancel_done": ("退保成功，保费{amount}元已退回您的钱包。",
                           "The policy is cancelled; the {amount} yuan premium is back in your wallet."),
    "policy_cancel_pending": ("退保已受理，结果将以短信通知您。",
                              "The cancellation is accepted; a text message will tell you the result."),
    "policy_cancel_declined": ("保险公司未同意退保，保单继续有效，保费没有退回。您可以在{until}前再次申请退保。",
                               "The insurer declined the cancellation: the policy stays in force and the premium "
                               "was not refunded. You may ask again until {until}."),
    "policy_kept": ("保单未退，继续有效。", "The policy is kept."),
    "cancelled": ("已取消。", "Cancelled."),
    "invalid_choice": ("输入有误。", "That is not one of the choices."),
    "no_input": ("没有收到您的按键。", "We did not get your input."),
    "error": ("{words}", "{words}"),
    "goodbye": ("感谢使用，再见。", "Thank you, goodbye."),
    # village agents (代理点): a staff phone calling the same number; see docs/rural.md
    "who": ("代理点业务请按1，个人钱包业务请按2。", "For agent services press 1, for your own wallet press 2."),
    "agent_pin": ("请输入代理点员工密码，以井号键结束。", "Please enter your agent staff PIN, then press hash."),
    "agent_pin_invalid": ("员工密码是六位数字。", "The staff PIN is six digits."),
    "agent_menu": ("代理点服务：存款请按1，取款请按2，查询备付金余额请按3，查询最近五笔交易请按4，查询本月佣金请按5，"
                   "For English press 9，结束通话请按0。",
                   "Agent services: for a cash-in press 1, a cash-out 2, your float balance 3, the last five "
                   "transactions 4, this month's commissions 5, 中文请按9, to end the call press 0."),
    "cashin_number": ("请输入存款客户的手机号码，以井号键结束。",
                      "Enter the customer's mobile number, then press hash."),
    "cashin_amount": ("请输入存款金额，以元为单位，以井号键结束。",
                      "Enter the cash-in amount in yuan, then press hash."),
    "cashin_confirm": ("从备付金向{number}的钱包存入{amount}元，客户手续费{fee}元。确认请按1，取消请按2。",
                       "Pay {amount} yuan from your float into the wallet of {number}; the customer's fee is {fee} "
                       "yuan. To confirm press 1, to cancel press 2."),
    "cashin_done": ("存款成功，{amount}元已到客户钱包。备付金余额{balance}元。",
                    "Cash-in done: {amount} yuan is in the customer's wallet. Your float is {balance} yuan."),
    "cashout_number": ("请输入取款客户的手机号码，以井号键结束。",
                       "Enter the customer's mobile number, then press hash."),
    "cashout_amount": ("请输入取款金额，以元为单位，以井号键结束。",
                       "Enter the cash-out amount in yuan, then press hash."),
    "cashout_confirm": ("{number}取现{amount}元，客户另付手续费{fee}元，共从客户钱包扣除{total}元。"
                        "向客户发送验证码请按1，取消请按2。",
                        "{number} takes {amount} yuan in cash and pays a {fee} yuan fee: {total} yuan from the "
                        "customer's wallet. To text the customer a code press 1, to cancel press 2."),
    "cashout_code": ("验证码已发送到客户手机。请客户本人读出验证码，输入六位验证码后按井号键。返回请按星号键。",
                     "A code was texted to the customer. Have the customer read it out, key the six digits, then "
                     "press hash. To go back press star."),
    "cashout_code_invalid": ("验证码是六位数字。", "The code is six digits."),
    "cashout_done": ("取现成功，请付给客户{amount}元现金。备付金余额{balance}元。",
                     "Cash-out done: give the customer {amount} yuan in cash. Your float is {balance} yuan."),
    "float_is": ("备付金余额{amount}元，现金{cash}元。", "Your float is {amount} yuan; cash in the till {cash} yuan."),
    "statement_line": ("{date}，{kind}{amount}元。", "{date}, {kind}, {amount} yuan."),
    "commissions_are": ("本月佣金：待付{accrued}元，审核中{held}元，已付{paid}元。",
                        "Commissions this month: {accrued} yuan due, {held} yuan held, {paid} yuan paid."),
}

#: Refusals of the rural context as an agent hears them (the channel words have none of them).
AGENT_WORDS: dict[str, tuple[str, str]] = {
    "AGENT_STAFF_PIN_WRONG": ("员工密码错误。", "The staff PIN is wrong."),
    "AGENT_STAFF_LOCKED": ("密码错误次数过多，请稍后再试。", "Too many wrong PINs; try again later."),
    "AGENT_NOT_ACTIVE": ("本代理点已暂停服务。", "This agent is suspended."),
    "AGENT_NOT_FOUND": ("本号码不是代理点员工。", "This number is no agent's staff."),
    "AGENT_FLOAT_INSUFFICIENT": ("备付金余额不足，请先补充备付金。", "Your float is too low; buy float first."),
    "AGENT_LIMIT_EXCEEDED": ("已超过代理点的限额，未办理。",
                             "That is past one of the agent's limits; nothing was done."),
    "RURAL_CUSTOMER_LIMIT_EXCEEDED": ("已超过客户今日在代理点的限额，未办理。",
                                      "That is past the customer's daily limit at agents; nothing was done."),
    "RURAL_CUSTOMER_NOT_REGISTERED": ("该号码还没有开通钱包，请先为客户注册。",
                                      "This number has no wallet; register the customer first."),
    "CASH_OUT_NOT_FOUND": ("没有等待验证码的取现，请重新办理。", "No cash-out is waiting for a code; start again."),
    "CASH_OUT_NOT_PENDING": ("这笔取现已不再等待验证码，请重新办理。",
                             "This cash-out no longer waits for a code; start again."),
    "RURAL_CODE_WRONG": ("验证码错误或已过期。", "The code is wrong or has expired."),
    "AGENT_SESSION_INVALID": ("请先输入员工密码。", "Enter the staff PIN first."),
    # AGENT_LIMIT_EXCEEDED by the limit it names
    "float": ("备付金将超过上限，请先售出部分备付金。", "The float would pass its cap; sell some float first."),
    "daily_cash_out": ("代理点今日的取现额度不足。", "The agent's cash-outs for today would pass its limit."),
}
#: ``RURAL_INVALID`` where the amount was checked (a quote) and where the customer's wallet was.
AGENT_AMOUNT_WORDS = ("代理点单笔金额为1元到5000元。", "An amount at agents is 1 to 5000 yuan.")
AGENT_WALLET_WORDS = ("客户钱包余额不足以支付取现金额和手续费。",
                      "The customer's wallet does not hold the amount and its fee.")
#: Transaction kinds in the mini statement.
AGENT_KIND_WORDS: dict[str, tuple[str, str]] = {
    "cash_in": ("存款", "cash-in"), "cash_out": ("取现", "cash-out"), "rebalance": ("调拨", "float moved"),
    "float_buy": ("购入备付金", "float bought"), "float_sell": ("售出备付金", "float sold"),
    "commission": ("佣金", "commission"), "market": ("商城订单", "marketplace order"),
}

#: Menu keys in the main menu.
MAIN_MENU_KEYS = "1234567890"
#: Consecutive no-input or bad-input turns before the call is ended politely.
MAX_RETRIES = 2
#: Wrong PINs one call may try before it is ended (the wallet locks payments at its own limit).
MAX_PIN_TRIES = 3
#: Longest keypad entry accepted (a PIN is 6, a number 11, an amount at most 6 digits of yuan).
MAX_ENTRY = 20
MAX_AMOUNT_DIGITS = 6
MAX_BILLS = 8
MAX_PRODUCTS = 8  # one key each
MAX_QUICK_PICKS = MAX_BETS
MAX_POLICIES = 9  # read one by one; the newest first
AGENT_MENU_KEYS = "1234590"
STATEMENT_LINES = 5  # the agent's mini statement
QUICK_PICK_PRICE = BET_PRICE  # fen a bet


# --------------------------------------------------------------------------- what is said


@dataclass(frozen=True, slots=True)
class Fen:
    """An amount of money, spoken as yuan."""

    value: int


@dataclass(frozen=True, slots=True)
class Digits:
    """A number read digit by digit (a phone number)."""

    value: str


@dataclass(frozen=True, slots=True)
class Words:
    """Free text already in both languages (a bill's nickname, a kind of transaction)."""

    zh: str
    en: str


Value = Fen | Digits | Words | int


@dataclass(frozen=True, slots=True)
class Say:
    """One prompt with its dynamic parts; ``error`` is spoken through the channel words."""

    prompt: str
    params: tuple[tuple[str, Value], ...] = ()
    error: MobipayError | None = None

    def param(self, name: str) -> Value:
        return dict(self.params)[name]


def say(prompt: str, **params: Value) -> Say:
    if prompt not in PROMPTS:
        raise KeyError(f"unknown prompt {prompt!r}")
    return Say(prompt, tuple(params.items()))


def say_error(exc: MobipayError) -> Say:
    return Say("error", error=exc)


# --------------------------------------------------------------------------- what is awaited


@dataclass(frozen=True, slots=True)
class Expect:
    """The input a step waits for: one key of ``keys`` (a menu), or digits closed by ``#``.

    ``*`` (back) is always accepted. ``prompt`` repeats after a timeout or a bad input.
    """

    kind: Literal["choice", "digits"]
    keys: str = ""
    max_digits: int = MAX_ENTRY


# --------------------------------------------------------------------------- what is done


@dataclass(frozen=True, slots=True)
class Identify:
    """Look the calling line up: a registered, active wallet or a refusal."""


@dataclass(frozen=True, slots=True)
class VerifyPin:
    pin: str


@dataclass(frozen=True, slots=True)
class Balance:
    pass


@dataclass(frozen=True, slots=True)
class Recent:
    limit: int = 3


@dataclass(frozen=True, slots=True)
class Transfer:
    to: str  # E.164
    amount: int  # fen
    step: int  # numbers the idempotency key within the call


@dataclass(frozen=True, slots=True)
class Topup:
    number: str | None  # None: the caller's own phone
    amount: int
    step: int


@dataclass(frozen=True, slots=True)
class SavedBills:
    pass


@dataclass(frozen=True, slots=True)
class BillDue:
    name: str


@dataclass(frozen=True, slots=True)
class PayBill:
    name: str
    bill_id: str | None
    amount: int
    step: int


@dataclass(frozen=True, slots=True)
class Products:
    """The operator's products on offer."""


@dataclass(frozen=True, slots=True)
class BuyProduct:
    code: str
    step: int


@dataclass(frozen=True, slots=True)
class LotteryGames:
    """The games with the draw on sale now."""


@dataclass(frozen=True, slots=True)
class QuickPick:
    game: str
    count: int  # bets
    issue: str  # the draw the caller was told of
    step: int


@dataclass(frozen=True, slots=True)
class Policies:
    """My insurance policies (listed and cancelled here, never sold: see docs/voice.md)."""


@dataclass(frozen=True, slots=True)
class CancelPolicy:
    policy_id: str
    attempts: int  # cancellation attempts there were when the policy was read out
    step: int


@dataclass(frozen=True, slots=True)
class AgentSignIn:
    """The calling staff phone's staff PIN (the rural context counts wrong ones and locks)."""

    pin: str


@dataclass(frozen=True, slots=True)
class AgentQuote:
    """The customer's fee for an amount (``kind``: cash_in or cash_out), said before confirming."""

    kind: Literal["cash_in", "cash_out"]
    amount: int


@dataclass(frozen=True, slots=True)
class AgentCashIn:
    customer: str  # E.164
    amount: int
    step: int


@dataclass(frozen=True, slots=True)
class AgentStartCashOut:
    """Nothing moves: the customer is texted a code (the service's agent-started cash-out)."""

    customer: str
    amount: int
    step: int


@dataclass(frozen=True, slots=True)
class AgentConfirmCashOut:
    """The code the customer read out, for the request this call started."""

    code: str
    request_id: str


@dataclass(frozen=True, slots=True)
class AgentFloat:
    pass


@dataclass(frozen=True, slots=True)
class AgentStatement:
    limit: int = STATEMENT_LINES


@dataclass(frozen=True, slots=True)
class AgentCommissions:
    """This (Beijing) month's commissions of the agent."""


AgentAction = (AgentSignIn | AgentQuote | AgentCashIn | AgentStartCashOut | AgentConfirmCashOut | AgentFloat
               | AgentStatement | AgentCommissions)
AGENT_ACTIONS = (AgentSignIn, AgentQuote, AgentCashIn, AgentStartCashOut, AgentConfirmCashOut, AgentFloat,
                 AgentStatement, AgentCommissions)

Action = (Identify | VerifyPin | Balance | Recent | Transfer | Topup | SavedBills | BillDue | PayBill | Products
          | BuyProduct | LotteryGames | QuickPick | Policies | CancelPolicy | AgentAction)


@dataclass(frozen=True, slots=True)
class RecentLine:
    """A statement line as the dialog needs it (the session converts the channel's Line)."""

    month: int
    day: int
    kind: Words
    amount: int  # signed fen


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """How a payment ended for the caller: done now, accepted and settled later, or failed
    at the partner (the hold was released: the money is back)."""

    state: Literal["done", "pending", "failed"]


@dataclass(frozen=True, slots=True)
class DueBill:
    bill_id: str | None
    amount: int


@dataclass(frozen=True, slots=True)
class ProductOffer:
    code: str
    name: Words
    price: int  # fen


@dataclass(frozen=True, slots=True)
class GameOffer:
    code: str
    name: Words
    issue: str
    close: Words  # the sales cut-off, as said


@dataclass(frozen=True, slots=True)
class Picked:
    """A quick-pick ticket: how it ended, and the numbers picked (as said)."""

    state: Literal["done", "pending", "failed"]
    numbers: Words


@dataclass(frozen=True, slots=True)
class PolicyOffer:
    """A policy as read out: its status in words (in force, until when it can be cancelled…)."""

    policy_id: str
    name: Words
    premium: int  # fen
    status: Words
    cancellable: bool
    attempts: int


@dataclass(frozen=True, slots=True)
class Cancelled:
    """How a cancellation ended: refunded, at the insurer, or declined (nothing refunded;
    ``until``: when asking again stops being possible)."""

    state: Literal["done", "pending", "declined"]
    until: Words | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who the calling line is: an agent's staff phone, a wallet, or both (then the caller chooses)."""

    agent: bool
    subscriber: bool


@dataclass(frozen=True, slots=True)
class StaffIn:
    """The staff PIN was right: the staff member this call now acts for."""

    staff_id: str


@dataclass(frozen=True, slots=True)
class AgentDone:
    """A cash-in or cash-out paid: the amount and the agent's float after it."""

    amount: int
    float_after: int


@dataclass(frozen=True, slots=True)
class CashOutAsked:
    """The customer was texted a code for this request."""

    request_id: str


@dataclass(frozen=True, slots=True)
class FloatInfo:
    float_balance: int
    cash: int


@dataclass(frozen=True, slots=True)
class AgentLine:
    when: Words
    kind: str
    amount: int  # fen


@dataclass(frozen=True, slots=True)
class CommissionInfo:
    accrued: int
    held: int
    paid: int


Outcome = (None | int | list[RecentLine] | list[str] | PaymentResult | DueBill | list[ProductOffer]
           | list[GameOffer] | Picked | list[PolicyOffer] | Cancelled | Caller | StaffIn | AgentDone | CashOutAsked
           | FloatInfo | list[AgentLine] | CommissionInfo | MobipayError)


# --------------------------------------------------------------------------- the state


@dataclass(frozen=True, slots=True)
class CallState:
    """Everything the dialog remembers between keys (serialisable: the VXML front carries it)."""

    node: str = "identify"
    lang: Lang = "zh"
    retries: int = 0  # consecutive no-input or invalid turns at this node
    pin_tries: int = 0
    pin: str | None = None  # set once verified; passed to payments above the PIN-free amount
    step: int = 0  # payments attempted in this call (idempotency keys)
    to: str = ""
    number: str = ""  # top-up number; "" for the caller's own phone
    amount: int = 0
    bills: tuple[str, ...] = ()
    bill: str = ""
    bill_id: str | None = None
    products: tuple[tuple[str, str, str, int], ...] = ()  # (code, zh, en, price) as offered
    product: int = 0  # 1-based position of the chosen product
    games: tuple[tuple[str, str, str, str, str, str], ...] = ()  # (code, zh, en, issue, close zh, close en)
    game: int = 0  # 1-based position of the chosen game
    count: int = 0  # quick picks
    #: (id, zh, en, premium, status zh, status en, cancellable 0/1, attempts) as read out
    policies: tuple[tuple[str, str, str, int, str, str, int, int], ...] = ()
    policy: int = 0  # 1-based position of the policy being read
    #: an agent's call: the staff member whose PIN was verified ("" until then), the quoted fee,
    #: the cash-out request waiting for the customer's code
    staff: str = ""
    fee: int = 0
    request: str = ""
    code_tries: int = 0  # wrong codes keyed for that request


@dataclass(frozen=True, slots=True)
class Step:
    state: CallState
    say: tuple[Say, ...] = ()
    expect: Expect | None = None
    action: Action | None = None
    end: bool = False


CHOICE_NODES: dict[str, str] = {"menu": MAIN_MENU_KEYS, "topup_whom": "12", "topup_confirm": "12",
                                "transfer_confirm": "12", "bill_confirm": "12", "product_confirm": "12",
                                "lottery_count": "123456789"[:MAX_QUICK_PICKS], "lottery_confirm": "12",
                                "policy_confirm": "12", "who": "12", "agent_menu": AGENT_MENU_KEYS,
                                "cashin_confirm": "12", "cashout_confirm": "12"}
#: Nodes whose keys are the positions of a list the state carries.
LIST_NODES = ("bills", "products", "games")
#: Policies are read one at a time: 1 cancels the one just read (when it may be), 2 reads the next.
POLICY_NODE = "policy"
AGENT_DIGIT_NODES = ("agent_pin", "cashin_number", "cashin_amount", "cashout_number", "cashout_amount",
                     "cashout_code")
AGENT_CHOICE_NODES = ("who", "agent_menu", "cashin_confirm", "cashout_confirm")
DIGIT_NODES = ("pin", "topup_number", "topup_amount", "transfer_number", "transfer_amount", *AGENT_DIGIT_NODES)
#: Where ``*`` goes back to.
BACK: dict[str, str] = {"topup_whom": "menu", "topup_number": "topup_whom", "topup_amount": "topup_whom",
                        "topup_confirm": "topup_amount", "transfer_number": "menu",
                        "transfer_amount": "transfer_number", "transfer_confirm": "transfer_amount",
                        "bills": "menu", "bill_confirm": "bills", "products": "menu", "product_confirm": "products",
                        "games": "menu", "lottery_count": "games", "lottery_confirm": "lottery_count",
                        "policy": "menu", "policy_confirm": "policy",
                        "cashin_number": "agent_menu", "cashin_amount": "cashin_number",
                        "cashin_confirm": "cashin_amount", "cashout_number": "agent_menu",
                        "cashout_amount": "cashout_number", "cashout_confirm": "cashout_amount",
                        "cashout_code": "agent_menu"}


def node_prompt(state: CallState) -> tuple[Say, ...]:
    """What a node says when it is entered (and repeats on a reprompt)."""
    n = state.node
    if n == "pin":
        return (say("enter_pin"),)
    if n == "menu":
        return (say("main_menu"),)
    if n == "topup_confirm":
        if state.number:
            return (say("topup_confirm", number=Digits(state.number), amount=Fen(state.amount)),)
        return (say("topup_confirm_own", amount=Fen(state.amount)),)
    if n == "transfer_confirm":
        return (say("transfer_confirm", number=Digits(_national(state.to)), amount=Fen(state.amount)),)
    if n == "bills":
        items = tuple(say("bill_item", name=Words(b, b), n=i) for i, b in enumerate(state.bills, 1))
        return (*items, say("bills_back"))
    if n == "bill_confirm":
        return (say("bill_confirm", name=Words(state.bill, state.bill), amount=Fen(state.amount)),)
    if n == "products":
        items = tuple(say("product_item", name=Words(zh, en), amount=Fen(price), n=i)
                      for i, (_, zh, en, price) in enumerate(state.products, 1))
        return (*items, say("bills_back"))
    if n == "product_confirm":
        _, zh, en, price = state.products[state.product - 1]
        return (say("product_confirm", name=Words(zh, en), amount=Fen(price)),)
    if n == "games":
        items = tuple(say("game_item", name=Words(zh, en), issue=Digits(issue), close=Words(czh, cen), n=i)
                      for i, (_, zh, en, issue, czh, cen) in enumerate(state.games, 1))
        return (*items, say("bills_back"))
    if n == POLICY_NODE:
        _, zh, en, premium, szh, sen, cancellable, _ = state.policies[state.policy - 1]
        return (say("policy_item", n=state.policy, name=Words(zh, en), amount=Fen(premium), status=Words(szh, sen)),
                say("policy_options_cancel" if cancellable else "policy_options"))
    if n == "policy_confirm":
        _, zh, en, premium, *_ = state.policies[state.policy - 1]
        return (say("policy_confirm", name=Words(zh, en), amount=Fen(premium)),)
    if n == "cashin_confirm":
        return (say("cashin_confirm", number=Digits(_national(state.to)), amount=Fen(state.amount),
                    fee=Fen(state.fee)),)
    if n == "cashout_confirm":
        return (say("cashout_confirm", number=Digits(_national(state.to)), amount=Fen(state.amount),
                    fee=Fen(state.fee), total=Fen(state.amount + state.fee)),)
    if n == "lottery_confirm":
        _, zh, en, issue, _, _ = state.games[state.game - 1]
        return (say("lottery_confirm", name=Words(zh, en), issue=Digits(issue), count=state.count,
                    amount=Fen(state.amount)),)
    return (say(n),)


def expect_for(state: CallState) -> Expect:
    if state.node == POLICY_NODE:
        return Expect("choice", "12" if state.policies[state.policy - 1][6] else "2")
    if state.node in LIST_NODES:
        listed = {"bills": state.bills, "products": state.products, "games": state.games}[state.node]
        return Expect("choice", "".join(str(i) for i in range(1, len(listed) + 1)))
    if state.node in CHOICE_NODES:
        return Expect("choice", CHOICE_NODES[state.node])
    return Expect("digits", max_digits=MAX_ENTRY)


def _enter(state: CallState, node: str, *before: Say) -> Step:
    s = replace(state, node=node, retries=0)
    return Step(s, (*before, *node_prompt(s)), expect_for(s))


def _goodbye(state: CallState, *before: Say) -> Step:
    return Step(replace(state, node="end"), (*before, say("goodbye")), end=True)


def _retry(state: CallState, why: Say) -> Step:
    """A timeout or a bad input: say why and ask again, or end the call after too many."""
    if state.retries >= MAX_RETRIES:
        return _goodbye(state, why)
    s = replace(state, retries=state.retries + 1)
    return Step(s, (why, *node_prompt(s)), expect_for(s))


def _national(msisdn: str) -> str:
    return msisdn[3:] if msisdn.startswith("+86") else msisdn


# --------------------------------------------------------------------------- transitions


def begin(lang: Lang = "zh") -> Step:
    """A new call: greet, then identify the calling line."""
    return Step(CallState(node="identify", lang=lang), (say("welcome"),), action=Identify())


def parse_amount(keys: str) -> int:
    """Whole yuan keyed on the pad, as fen; refuses empty, zero and over-long amounts."""
    digits = keys.lstrip("0")
    if not (keys.isascii() and keys.isdigit()) or not digits or len(digits) > MAX_AMOUNT_DIGITS:
        raise InvalidAmount("key the amount in whole yuan, e.g. 50 then #", field="amount")
    return int(digits) * 100


def on_input(state: CallState, keys: str | None) -> Step:
    """What the caller keyed at ``state.node`` (``None``: nothing before the timeout)."""
    if keys is None:
        return _retry(state, say("no_input"))
    node = state.node
    if keys == "*":
        if node in BACK:
            return _enter(state, BACK[node])
        return _enter(state, node)  # at the PIN or the main menu: start the entry again
    if node in LIST_NODES or node in CHOICE_NODES or node == POLICY_NODE:
        allowed = expect_for(state).keys
        if len(keys) != 1 or keys not in allowed:
            return _retry(state, say("invalid_choice"))
        return _choose(replace(state, retries=0), keys)
    if node in DIGIT_NODES:
        if not (keys.isascii() and keys.isdigit()) or len(keys) > MAX_ENTRY:  # DTMF keys: 0-9 only
            return _retry(state, say("invalid_choice"))
        return _entered(state, keys)
    raise ValueError(f"no input is expected at node {node!r}")


def _choose(state: CallState, key: str) -> Step:
    node = state.node
    if node in AGENT_CHOICE_NODES:
        return _agent_choose(state, key)
    if node == "menu":
        match key:
            case "1":
                return Step(state, action=Balance())
            case "2":
                return _enter(state, "topup_whom")
            case "3":
                return _enter(state, "transfer_number")
            case "4":
                return Step(state, action=SavedBills())
            case "5":
                return Step(state, action=Recent())
            case "6":
                return Step(state, action=Products())
            case "7":
                return Step(state, action=LotteryGames())
            case "8":
                return Step(state, action=Policies())
            case "9":
                return _enter(replace(state, lang="en" if state.lang == "zh" else "zh"), "menu")
            case _:
                return _goodbye(state)
    if node == "topup_whom":
        if key == "1":
            return _enter(replace(state, number=""), "topup_amount")
        return _enter(state, "topup_number")
    if node == "bills":
        name = state.bills[int(key) - 1]
        return Step(replace(state, bill=name), action=BillDue(name))
    if node == "products":
        return _enter(replace(state, product=int(key), amount=state.products[int(key) - 1][3]), "product_confirm")
    if node == "games":
        return _enter(replace(state, game=int(key)), "lottery_count")
    if node == "lottery_count":
        return _enter(replace(state, count=int(key), amount=int(key) * QUICK_PICK_PRICE), "lottery_confirm")
    if node == POLICY_NODE:
        if key == "1":
            return _enter(state, "policy_confirm")
        if state.policy >= len(state.policies):
            return _enter(replace(state, policies=(), policy=0), "menu", say("policies_end"))
        return _enter(replace(state, policy=state.policy + 1), POLICY_NODE)
    # the confirmations: 1 pays, 2 cancels
    if key == "2" and node == "policy_confirm":
        return _enter(replace(state, policies=(), policy=0), "menu", say("policy_kept"))
    if key == "2":
        return _enter(state, "menu", say("cancelled"))
    step = state.step + 1
    paying = replace(state, step=step)
    if node == "topup_confirm":
        return Step(paying, action=Topup(state.number or None, state.amount, step))
    if node == "transfer_confirm":
        return Step(paying, action=Transfer(state.to, state.amount, step))
    if node == "product_confirm":
        return Step(paying, action=BuyProduct(state.products[state.product - 1][0], step))
    if node == "lottery_confirm":
        code, _, _, issue, _, _ = state.games[state.game - 1]
        return Step(paying, action=QuickPick(code, state.count, issue, step))
    if node == "policy_confirm":
        policy_id, *_, attempts = state.policies[state.policy - 1]
        return Step(paying, action=CancelPolicy(policy_id, attempts, step))
    return Step(paying, action=PayBill(state.bill, state.bill_id, state.amount, step))


def _entered(state: CallState, keys: str) -> Step:
    node = state.node
    if node in AGENT_DIGIT_NODES:
        return _agent_entered(state, keys)
    try:
        if node == "pin":
            if len(keys) != 6:  # the wallet's own code for a malformed PIN, spoken without a try counted
                raise InvalidPin("a payment PIN is exactly 6 digits", field="pin")
            return Step(state, action=VerifyPin(keys))
        if node in ("topup_number", "transfer_number"):
            msisdn = normalize_msisdn(keys)
            if node == "topup_number":
                return _enter(replace(state, number=_national(msisdn)), "topup_amount")
            return _enter(replace(state, to=msisdn), "transfer_amount")
        amount = parse_amount(keys)
        return _enter(replace(state, amount=amount), "topup_confirm" if node == "topup_amount" else "transfer_confirm")
    except MobipayError as exc:
        return _retry(state, say_error(exc))


def on_result(state: CallState, action: Action, outcome: Outcome) -> Step:
    """The outcome of ``action``: a value, or the service's refusal."""
    if isinstance(action, Identify):
        if isinstance(outcome, MobipayError):  # unknown, frozen or closed: say so, and only that
            return _goodbye(state, say_error(outcome))
        if isinstance(outcome, Caller) and outcome.agent:  # an agent's staff phone
            return _enter(state, "who" if outcome.subscriber else "agent_pin")
        return _enter(state, "pin")
    if isinstance(action, AGENT_ACTIONS):
        return _agent_result(state, action, outcome)
    if isinstance(action, VerifyPin):
        if outcome is None:
            return _enter(replace(state, pin=action.pin, pin_tries=0), "menu")
        assert isinstance(outcome, MobipayError)
        if outcome.code == "PIN_INCORRECT":
            tries = state.pin_tries + 1
            if tries >= MAX_PIN_TRIES:
                return _goodbye(replace(state, pin_tries=tries), say_error(outcome))
            return _enter(replace(state, pin_tries=tries), "pin", say_error(outcome))
        return _goodbye(state, say_error(outcome))  # locked, not set, …
    if isinstance(outcome, MobipayError):
        if isinstance(action, BillDue):
            return _enter(state, "bills", say_error(outcome))
        return _enter(replace(state, policies=(), policy=0), "menu", say_error(outcome))
    if isinstance(action, Balance):
        assert isinstance(outcome, int)
        return _enter(state, "menu", say("balance_is", amount=Fen(outcome)))
    if isinstance(action, Recent):
        assert isinstance(outcome, list)
        lines: list[Say] = []
        for line in outcome:
            assert isinstance(line, RecentLine)
            date = Words(f"{line.month}月{line.day}日", f"{line.month}/{line.day}")
            lines.append(say("recent_in" if line.amount > 0 else "recent_out", date=date, kind=line.kind,
                             amount=Fen(abs(line.amount))))
        return _enter(state, "menu", *(lines or [say("recent_none")]))
    if isinstance(action, SavedBills):
        assert isinstance(outcome, list)
        names = tuple(str(n) for n in outcome[:MAX_BILLS])
        if not names:
            return _enter(state, "menu", say("bills_none"))
        return _enter(replace(state, bills=names), "bills")
    if isinstance(action, BillDue):
        assert isinstance(outcome, DueBill)
        return _enter(replace(state, bill_id=outcome.bill_id, amount=outcome.amount), "bill_confirm")
    if isinstance(action, Products):
        assert isinstance(outcome, list)
        offers = tuple((o.code, o.name.zh, o.name.en, o.price) for o in outcome[:MAX_PRODUCTS]
                       if isinstance(o, ProductOffer))
        return _enter(replace(state, products=offers), "products")
    if isinstance(action, LotteryGames):
        assert isinstance(outcome, list)
        games = tuple((o.code, o.name.zh, o.name.en, o.issue, o.close.zh, o.close.en) for o in outcome[:9]
                      if isinstance(o, GameOffer))
        return _enter(replace(state, games=games), "games")
    if isinstance(action, Policies):
        assert isinstance(outcome, list)
        policies = tuple((o.policy_id, o.name.zh, o.name.en, o.premium, o.status.zh, o.status.en, int(o.cancellable),
                          o.attempts) for o in outcome[:MAX_POLICIES] if isinstance(o, PolicyOffer))
        if not policies:
            return _enter(state, "menu", say("policies_none"))
        return _enter(replace(state, policies=policies, policy=1), POLICY_NODE)
    cleared = replace(state, to="", number="", amount=0, bill="", bill_id=None, products=(), product=0, games=(),
                      game=0, count=0, policies=(), policy=0)
    if isinstance(action, CancelPolicy):
        assert isinstance(outcome, Cancelled)
        premium = state.policies[state.policy - 1][3]
        if outcome.state == "declined":
            return _enter(cleared, "menu", say("policy_cancel_declined", until=outcome.until or Words("-", "-")))
        if outcome.state == "done":
            return _enter(cleared, "menu", say("policy_cancel_done", amount=Fen(premium)))
        return _enter(cleared, "menu", say("policy_cancel_pending"))
    if isinstance(action, QuickPick):
        assert isinstance(outcome, Picked)
        if outcome.state == "failed":
            return _enter(cleared, "menu", say("lottery_failed"))
        return _enter(cleared, "menu", say(f"lottery_{outcome.state}", numbers=outcome.numbers))
    assert isinstance(outcome, PaymentResult)
    if isinstance(action, Transfer):
        return _enter(cleared, "menu", say("transfer_done"))
    kind = "topup" if isinstance(action, Topup) else "product" if isinstance(action, BuyProduct) else "bill"
    return _enter(cleared, "menu", say(f"{kind}_{outcome.state}"))


# --------------------------------------------------------------------------- agents (代理点)
#
# A village agent's staff phone calling the service number: the staff PIN, then the agent's
# menu. Every money move goes through the rural context's use cases (the same ones the
# agents' SMS menu uses): cash-in pays the customer's wallet from the float; a cash-out the
# agent starts texts the customer a code, and only the code the customer reads out pays it.


def _agent_choose(state: CallState, key: str) -> Step:
    node = state.node
    if node == "who":
        return _enter(state, "agent_pin" if key == "1" else "pin")
    if node == "agent_menu":
        match key:
            case "1":
                return _enter(state, "cashin_number")
            case "2":
                return _enter(state, "cashout_number")
            case "3":
                return Step(state, action=AgentFloat())
            case "4":
                return Step(state, action=AgentStatement())
            case "5":
                return Step(state, action=AgentCommissions())
            case "9":
                return _enter(replace(state, lang="en" if state.lang == "zh" else "zh"), "agent_menu")
            case _:
                return _goodbye(state)
    if key == "2":  # a confirmation cancelled: nothing was asked of the service
        return _enter(_agent_cleared(state), "agent_menu", say("cancelled"))
    step = state.step + 1
    moving = replace(state, step=step)
    if node == "cashin_confirm":
        return Step(moving, action=AgentCashIn(state.to, state.amount, step))
    return Step(moving, action=AgentStartCashOut(state.to, state.amount, step))


def _agent_entered(state: CallState, keys: str) -> Step:
    node = state.node
    if node == "agent_pin":
        if len(keys) != 6:  # malformed: not sent, so no wrong try is counted
            return _retry(state, say("agent_pin_invalid"))
        return Step(state, action=AgentSignIn(keys))
    if node == "cashout_code":
        if len(keys) != 6:
            return _retry(state, say("cashout_code_invalid"))
        return Step(state, action=AgentConfirmCashOut(keys, state.request))
    try:
        if node in ("cashin_number", "cashout_number"):
            msisdn = normalize_msisdn(keys)
            return _enter(replace(state, to=msisdn), "cashin_amount" if node == "cashin_number" else "cashout_amount")
        amount = parse_amount(keys)
    except MobipayError as exc:
        return _retry(state, say_error(exc))
    return Step(replace(state, amount=amount), action=AgentQuote("cash_in" if node == "cashin_amount" else "cash_out",
                                                                  amount))


def _agent_cleared(state: CallState) -> CallState:
    return replace(state, to="", amount=0, fee=0, request="", code_tries=0, retries=0)


def agent_error(exc: MobipayError, action: Action | None = None) -> Say:
    """A rural refusal in the agent's words (anything else in the channel's words)."""
    if exc.code == "RURAL_INVALID":
        zh, en = AGENT_WALLET_WORDS if isinstance(action, AgentStartCashOut) else AGENT_AMOUNT_WORDS
        return say("error", words=Words(zh, en))
    limit = str(exc.extra.get("limit", "")) if exc.code == "AGENT_LIMIT_EXCEEDED" else ""
    if limit in AGENT_WORDS or exc.code in AGENT_WORDS:
        return say("error", words=Words(*AGENT_WORDS[limit if limit in AGENT_WORDS else exc.code]))
    return say_error(exc)


def _agent_result(state: CallState, action: Action, outcome: Outcome) -> Step:
    if isinstance(action, AgentSignIn):
        if isinstance(outcome, StaffIn):
            return _enter(replace(state, staff=outcome.staff_id, pin_tries=0), "agent_menu")
        assert isinstance(outcome, MobipayError)
        if outcome.code == "AGENT_STAFF_PIN_WRONG":
            tries = state.pin_tries + 1
            if tries >= MAX_PIN_TRIES:
                return _goodbye(replace(state, pin_tries=tries), agent_error(outcome))
            return _enter(replace(state, pin_tries=tries), "agent_pin", agent_error(outcome))
        return _goodbye(state, agent_error(outcome))  # locked, suspended, …
    if isinstance(outcome, MobipayError):
        why = agent_error(outcome, action)
        if isinstance(action, AgentQuote):  # a bad amount: asked again, nothing asked of anyone
            return _retry(replace(state, amount=0), why)
        wrong_code = isinstance(action, AgentConfirmCashOut) and outcome.code == "RURAL_CODE_WRONG"
        if wrong_code and state.code_tries + 1 < CODE_TRIES:  # the customer may read it again
            s = replace(state, code_tries=state.code_tries + 1, retries=0)
            return Step(s, (why, *node_prompt(s)), expect_for(s))
        return _enter(_agent_cleared(state), "agent_menu", why)
    if isinstance(action, AgentQuote):
        assert isinstance(outcome, int)
        return _enter(replace(state, fee=outcome), "cashin_confirm" if action.kind == "cash_in" else "cashout_confirm")
    if isinstance(action, AgentStartCashOut):
        assert isinstance(outcome, CashOutAsked)
        return _enter(replace(state, request=outcome.request_id, code_tries=0), "cashout_code")
    if isinstance(action, AgentCashIn | AgentConfirmCashOut):
        assert isinstance(outcome, AgentDone)
        done = "cashin_done" if isinstance(action, AgentCashIn) else "cashout_done"
        return _enter(_agent_cleared(state), "agent_menu",
                      say(done, amount=Fen(outcome.amount), balance=Fen(outcome.float_after)))
    if isinstance(action, AgentFloat):
        assert isinstance(outcome, FloatInfo)
        return _enter(state, "agent_menu", say("float_is", amount=Fen(outcome.float_balance), cash=Fen(outcome.cash)))
    if isinstance(action, AgentStatement):
        assert isinstance(outcome, list)
        lines = [say("statement_line", date=line.when, kind=Words(*AGENT_KIND_WORDS.get(line.kind, (line.kind,
                                                                                                   line.kind))),
                     amount=Fen(line.amount)) for line in outcome if isinstance(line, AgentLine)]
        return _enter(state, "agent_menu", *(lines or [say("recent_none")]))
    assert isinstance(outcome, CommissionInfo)
    return _enter(state, "agent_menu", say("commissions_are", accrued=Fen(outcome.accrued), held=Fen(outcome.held),
                                           paid=Fen(outcome.paid)))


def all_static_texts() -> list[tuple[Lang, str]]:
    """Every fixed piece of every prompt, per language (what ``mobipay voice prompts`` renders)."""
    import string

    out: list[tuple[Lang, str]] = []
    for zh, en in PROMPTS.values():
        for lang, text in (("zh", zh), ("en", en)):
            for literal, _, _, _ in string.Formatter().parse(text):
                if literal and literal.strip(" ,，。.:;"):
                    out.append((lang, literal))  # type: ignore[arg-type]
    return out


