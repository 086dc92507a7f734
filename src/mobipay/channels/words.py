"""The platform's codes in people's words, for every channel: refusals and kinds of transaction.

Every channel refuses with the same stable codes as the API (docs/errors.md); this module is
the one place that turns a code into a short sentence, Chinese first and English too. Codes
a subscriber can reach by SMS or voice have their own words; any other code falls back to a
generic sentence plus the error's English title, so a new code is never silent.

Transactions carry a kind code (``p2p``, ``bill``, ``topup.failed``…); :func:`kind_words` is
the one place that names them, for the pages, SMS statements and the voice menu alike, so no
screen shows a raw code and a new code reads as "other" rather than as itself.
"""

from __future__ import annotations

from typing import Literal

from mobipay.kernel.errors import MobipayError
from mobipay.kernel.money import yuan as yuan  # the channels read yuan here with their words

Lang = Literal["zh", "en"]

#: code → (Chinese, English). ``{remaining}``, ``{tries_left}`` come from the error's extras.
WORDS: dict[str, tuple[str, str]] = {
    "INSUFFICIENT_FUNDS": ("余额不足。", "Not enough balance."),
    "LIMIT_EXCEEDED": ("超出账户限额，剩余可用{remaining}元。", "Over your account limit; {remaining} CNY left."),
    "USER_FROZEN": ("您的账户已冻结，请联系客服10086。", "Your wallet is frozen; call customer service."),
    "USER_CLOSED": ("该账户已销户。", "This wallet is closed."),
    "USER_NOT_FOUND": ("本号码尚未开通钱包，请先注册。", "This number has no wallet yet; register first."),
    "SELF_TRANSFER": ("不能转账给自己。", "You cannot send money to yourself."),
    "INVALID_MSISDN": ("手机号码不正确。", "Not a mobile number."),
    "INVALID_AMOUNT": ("金额不正确。", "Not a valid amount."),
    "INVALID_FACE_VALUE": ("充值金额须为整元，且在允许范围内。", "Top-ups are whole yuan within the allowed range."),
    "PIN_INCORRECT": ("支付密码错误，还可尝试{tries_left}次。", "Wrong PIN; {tries_left} {tries} left."),
    "PIN_LOCKED": ("密码错误次数过多，支付已锁定，请稍后再试。", "Too many wrong PINs; payments are locked for now."),
    "PIN_NOT_SET": ("尚未设置支付密码，请先在客户端设置。", "Set a payment PIN in the app first."),
    "PIN_REQUIRED": ("此金额需要支付密码。", "This amount needs your PIN."),
    "INVALID_PIN": ("支付密码为6位数字。", "The PIN is 6 digits."),
    "SAVED_BILL_NOT_FOUND": ("没有找到这个已保存的账单。", "No saved bill by that name."),
    "BILL_NOT_FOUND": ("暂无待缴账单。", "There is no open bill."),
    "BILLER_CLOSED": ("该缴费单位现在不受理缴费，请在营业时间再试。", "The biller is closed; try in opening hours."),
    "AMOUNT_NOT_ALLOWED": ("金额不符合该缴费单位的规定。", "The amount does not fit the biller's rules."),
    "DUPLICATE_BILL_PAYMENT": ("本期账单已缴过。", "This bill was already paid this period."),
    "BILL_PAYMENT_FAILED": ("缴费未成功，款项已退回。", "The bill payment failed; the money is back."),
    "TOPUP_FAILED": ("充值未成功，款项已退回。", "The top-up failed; the money is back."),
    "PARTNER_UNAVAILABLE": ("系统繁忙，未扣款，请稍后再试。", "Busy now and nothing was charged; try again later."),
    "SERVICE_UNAVAILABLE": ("系统繁忙，请稍后再试。", "Busy now; try again later."),
    "RATE_LIMITED": ("操作太频繁，请稍后再试。", "Too many requests; try again later."),
    "CONFIRMATION_REFUSED": ("验证码无效或已过期，请重新发起。", "Wrong or expired code; send the command again."),
    "UNKNOWN_NUMBER_SEGMENT": ("暂不支持该号段。", "This number range is not supported."),
    "REAL_NAME_REQUIRED": ("请先完成实名认证并绑定银行卡。", "Verify your real name and bind a bank card first."),
    "PRODUCT_NOT_FOUND": ("没有这个业务或保险产品，请从列表中选择。", "No such product; choose one from the list."),
    "PRODUCT_NOT_AVAILABLE": ("该业务仅限本运营商号码订购。", "This product is for the home operator's numbers only."),
    "DELIVERY_FAILED": ("业务开通未成功，款项已退回。", "The product could not be delivered; the money is back."),
    "POLICY_NOT_FOUND": ("没有找到这份已生效的保单。", "No such issued policy in your wallet."),
    "COOLING_OFF_OVER": ("已过犹豫期，不能退保。", "The cooling-off period is over; the policy cannot be cancelled."),
    "INVALID_ID_CARD": ("身份证号码不正确。", "Not a valid identity card number."),
    "INVALID_REAL_NAME": ("请按身份证填写姓名。", "Give the name exactly as on the identity card."),
    "UNKNOWN_GAME": ("没有这个彩票玩法，可选：双色球SSQ、大乐透DLT、福彩3D。",
                     "No such game; games: SSQ, DLT, 3D."),
    "INVALID_NUMBERS": ("号码不符合该玩法的规则。", "The numbers do not fit the game."),
    "SALES_CLOSED": ("本期已停止销售，请购买下一期。", "Sales for this draw have closed; buy for the next one."),
    "TICKET_REJECTED": ("彩票投注未成功，款项已退回。", "The ticket was not accepted; the money is back."),
    "TICKET_NOT_FOUND": ("没有这张彩票。", "No such ticket in your wallet."),
    "NOTHING_TO_CLAIM": ("这张彩票没有待兑的奖金。", "This ticket has no prize waiting for a claim."),
    "CLAIM_EXPIRED": ("已过兑奖期（开奖后60天），奖金不能再兑。", "The claim period (60 days after the draw) is over."),
    "IDENTITY_MISMATCH": ("姓名或身份证号与本钱包的实名信息不符。",
                          "The name or identity card number is not this wallet's verified identity."),
    "ALREADY_SUBSCRIBED": ("您已订购此业务，当前周期内无需重复订购。",
                           "You already subscribe to this product; no need to buy it again this period."),
    "SUBSCRIPTION_NOT_FOUND": ("没有这个订购。", "No such subscription in your wallet."),
    "PRODUCT_ORDER_NOT_FOUND": ("没有这笔业务订单。", "No such product order in your wallet."),
    "CANCELLATION_DECLINED": ("保险公司未同意退保，保单继续有效，保费未退。犹豫期内可再次申请。",
                              "The insurer declined: the policy stays in force and nothing was refunded; you may "
                              "ask again within the cooling-off period."),
    # handset protection (手机保障)
    "IMEI_INVALID": ("IMEI有误：应为15位数字，最后一位为校验位（拨*#06#查看）。",
                     "Not a valid IMEI: 15 digits, the last a check digit (dial *#06#)."),
    "HANDSET_UNKNOWN": ("该机型不在手机保障服务范围内。", "This handset model is not covered."),
    "IMEI_BLOCKLISTED": ("该手机已被登记为丢失或被盗，不能办理。", "This phone is on the lost-or-stolen blocklist."),
    "IMEI_ALREADY_ENROLLED": ("该手机已办理手机保障服务。", "This phone is already enrolled."),
    "PROTECTION_CITY_NOT_IN_PILOT": ("手机保障服务目前仅在长沙、株洲、衡阳、常德试点。",
                                     "Handset protection is piloted in Changsha, Zhuzhou, Hengyang and Changde only."),
    "PROTECTION_OUTSIDE_PERIOD": ("不在手机保障服务试点期内（9月1日至12月31日）。",
                                  "Outside the pilot's period (1 September to 31 December)."),
    "PROTECTION_ENROLMENT_WINDOW_PASSED": ("购机超过30天，不能办理手机保障服务。",
                                           "Phones enrol within 30 days of purchase."),
    "PROTECTION_PURCHASE_INVALID": ("购机凭证有误（日期不能晚于今天，须有发票号）。",
                                    "The proof of purchase is not valid (date, receipt number)."),
    "PROTECTION_PRICE_OUT_OF_RANGE": ("购机价格不在保障范围内（最高10000元）。",
                                      "The phone's price is outside the fee tiers (up to 10,000 CNY)."),
    "PROTECTION_OUTSIDE_MAINLAND": ("仅保障在中国大陆发生的事故，不含香港、澳门、台湾及境外。",
                                    "Only incidents in mainland China are covered (not Hong Kong, Macau, Taiwan)."),
    "PROTECTION_IN_WAITING_PERIOD": ("事故发生在等待期内，尚未开始保障。", "The incident is in the waiting period."),
    "PROTECTION_CLAIM_LIMIT_REACHED": ("12个月内理赔次数已达上限。", "The claim limit for 12 months is reached."),
}

#: A limit error worded by the limit it names (``limit`` extra), before the code's words:
#: the SMS payment cap is not the account's limit, and its figure is a cap, not what is left.
LIMIT_WORDS: dict[str, tuple[str, str]] = {
    "sms_payment_max": ("短信确认的付款每笔最多{max}元，更大金额请用客户端。",
                        "Payments confirmed by SMS are up to {max} CNY each; use the app for more."),
}

#: Transaction kind code → (Chinese, English), short enough for an SMS statement line.
KIND_WORDS: dict[str, tuple[str, str]] = {
    "p2p": ("转账", "Transfer"), "p2p.claim": ("转账到账", "Transfer claimed"),
    "p2p.return": ("转账退回", "Transfer returned"),
    "cash_in": ("银行卡充值", "Cash-in"), "cash_out": ("提现", "Cash-out"),
    "close_payout": ("销户退款", "Closing payout"), "topup": ("话费充值", "Top-up"),
    "bill": ("生活缴费", "Bill payment"), "operator_product": ("移动业务", "Operator service"),
    "insurance": ("保险", "Insurance"),
    "insurance_cancel": ("退保", "Insurance refund"), "lottery": ("彩票", "Lottery"),
    "lottery.prize": ("彩票奖金", "Lottery prize"), "merchant.payment": ("商户消费", "Purchase"),
    "merchant.refund": ("商户退款", "Refund"),
    "enterprise.payment": ("企业一卡通消费", "Enterprise one-card purchase"),
    "merchant.settlement": ("商户结算", "Settlement"), "settlement": ("商户结算", "Settlement"),
    "campaign.fund": ("红包预算", "Red-envelope budget"), "campaign.issue": ("红包发放", "Red envelope issued"),
    "campaign.expire": ("红包过期退回", "Red envelope expired"), "partner.deposit": ("合作方预存", "Partner deposit"),
    "reversal": ("冲正", "Reversal"), "hold.post": ("预授权扣款", "Hold settled"),
    "hold.void": ("预授权撤销", "Hold released"), "hold.expire": ("预授权过期", "Hold expired"),
    "demo": ("演示数据", "Demo"),
}
#: ``<kind>.<suffix>`` codes of partner orders: the money back after a failure, a refund.
_KIND_SUFFIX_WORDS: dict[str, tuple[str, str]] = {"failed": ("退回", " returned"), "refund": ("退款", " refund")}
OTHER_KIND = ("其他", "Other")


def kind_words(code: str) -> tuple[str, str]:
    """A transaction kind code as (Chinese, English): its own words, else its order kind's
    with the suffix (``topup.failed`` → 话费充值退回), else "other" (never the raw code)."""
    if code in KIND_WORDS:
        return KIND_WORDS[code]
    base, _, suffix = code.partition(".")
    if base in KIND_WORDS and suffix in _KIND_SUFFIX_WORDS:
        (zh, en), (zh_s, en_s) = KIND_WORDS[base], _KIND_SUFFIX_WORDS[suffix]
        return zh + zh_s, en + en_s
    return KIND_WORDS.get(base.split(":")[0], OTHER_KIND)


def kind_name(code: str, lang: Lang = "zh") -> str:
    """A transaction kind code in ``lang``."""
    zh, en = kind_words(code)
    return zh if lang == "zh" else en


#: States of orders, red envelopes and ledger transfers as people read them.
STATE_WORDS: dict[str, tuple[str, str]] = {
    "pending": ("处理中", "Processing"), "succeeded": ("成功", "Done"), "failed": ("未成功", "Failed"),
    "issued": ("可使用", "Ready to use"), "used": ("已使用", "Used"), "expired": ("已过期", "Expired"),
    "posted": ("已入账", "Posted"), "post_pending": ("冻结转扣款", "Hold settled"),
    "void_pending": ("冻结撤销", "Hold released"), "reversal": ("冲正", "Reversal"),
}


def state_name(code: str, lang: Lang = "zh") -> str:
    """A state (of an order, a red envelope, a ledger transfer) in ``lang``; an unknown one as it is."""
    zh, en = STATE_WORDS.get(code, (code, code))
    return zh if lang == "zh" else en


#: Mobile operators (number segments) and bill categories by name.
OPERATOR_WORDS: dict[str, tuple[str, str]] = {
    "china_mobile": ("中国移动", "China Mobile"), "china_unicom": ("中国联通", "China Unicom"),
    "china_telecom": ("中国电信", "China Telecom"), "china_broadnet": ("中国广电", "China Broadnet"),
}
CATEGORY_WORDS: dict[str, tuple[str, str]] = {
    "water": ("水费", "Water"), "electricity": ("电费", "Electricity"), "gas": ("燃气", "Gas"),
    "telecom": ("固话宽带", "Telecom"), "bus_card": ("公交卡", "Bus card"), "cable_tv": ("有线电视", "Cable TV"),
    "heating": ("暖气", "Heating"), "medical_insurance": ("医保", "Medical insurance"),
}


#: Lottery games by name (the model's names are Chinese only).
GAME_WORDS: dict[str, tuple[str, str]] = {
    "ssq": ("双色球", "Double Colour Ball"), "dlt": ("超级大乐透", "Super Lotto"), "fc3d": ("福彩3D", "Welfare 3D"),
}
#: The operator's products by name in English (the catalogue names them in Chinese); a
#: product missing here reads as its catalogue description.
PRODUCT_WORDS: dict[str, str] = {
    "MUSIC_CRBT": "Colour ring-back tone", "MUSIC_CLUB_VIP": "Wireless music club premium",
    "MUSIC_TRACK": "Full-track download", "INFO_12580_LIFE": "12580 life news",
    "INFO_12580_WEATHER": "12580 weather forecast", "INFO_12580_TRAFFIC": "12580 traffic reports",
    "FETION_VIP": "Fetion membership", "FETION_SMS_PACK": "Fetion SMS pack",
}
#: Product families and periods as people read them.
FAMILY_WORDS: dict[str, tuple[str, str]] = {
    "music": ("无线音乐", "Wireless music"), "info": ("12580信息服务", "12580 information"),
    "fetion": ("飞信", "Fetion"),
}
PERIOD_WORDS: dict[str, tuple[str, str]] = {"monthly": ("元/月", " CNY a month"), "once": ("元/次", " CNY once")}
#: Insurers and kinds of cover by name.
INSURER_WORDS: dict[str, tuple[str, str]] = {"pingan": ("中国平安", "Ping An"), "cpic": ("中国太保", "CPIC")}
COVER_WORDS: dict[str, tuple[str, str]] = {"accident": ("意外险", "Accident"), "travel": ("旅行险", "Travel")}


def game_words(code: str) -> tuple[str, str]:
    """A lottery game's code (``ssq``) as (Chinese, English)."""
    return GAME_WORDS.get(code, (code, code))


def product_words(code: str, name: str, description: str = "") -> tuple[str, str]:
    """One of the operator's products as (Chinese, English)."""
    return name, PRODUCT_WORDS.get(code, description or name)


def operator_name(code: str, lang: Lang = "zh") -> str:
    """A mobile operator's code (``china_mobile``) by name."""
    zh, en = OPERATOR_WORDS.get(code, (code, code))
    return zh if lang == "zh" else en


def code_words(code: str, title: str) -> tuple[str, str]:
    """A code's words (Chinese, English); a code without its own reads as a generic Chinese
    sentence and the error's English ``title``, so a new code is never shown as itself."""
    return WORDS.get(code) or ("操作未成功。", title + ".")


def say(exc: MobipayError, lang: Lang = "zh") -> str:
    """``exc`` as one short sentence in ``lang``."""
    zh, en = LIMIT_WORDS.get(str(exc.extra.get("limit"))) or code_words(exc.code, exc.title)
    extras = {k: (yuan(v) if k in ("remaining", "max") and isinstance(v, int) else v) for k, v in exc.extra.items()}
    extras["tries"] = "try" if extras.get("tries_left") == 1 else "tries"
    text = zh if lang == "zh" else en
    try:
        return text.format(**extras)
    except (KeyError, IndexError):  # an error raised without the extra: drop the figure, keep the sense
        return text.split("，")[0].rstrip("。") + "。" if lang == "zh" else text.split(";")[0].rstrip(".") + "."


def both(exc: MobipayError) -> str:
    """Chinese then English, as an SMS reply carries them."""
    return f"{say(exc, 'zh')} {say(exc, 'en')}"
