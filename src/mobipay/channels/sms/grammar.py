"""SMS commands as subscribers type them: Chinese or English keywords (pinyin initials as
operators' SMS services use them), any case, full-width letters and stray spaces
tolerated; an amount is typed with the digits 0-9. Pure parsing: what a message asks for,
or why it cannot be understood, with a reply that helps (never silence).

    YE | BAL | 余额                 balance
    ZZ 13800138000 50 | 转账 …      transfer 50 CNY to a number
    CZ [13800138000] 100 | 充值 …   top up a number (default: your own) with 100 CNY
    JF 电费 | 缴费 …                pay a saved bill by its nickname
    MX | 明细                       last transactions
    YW | 业务                       the operator's products, numbered
    DG 3 | 订购 MUSIC_CRBT          subscribe my number to a product (its number or code)
    CP SSQ [2] | 彩票 双色球 2       2 quick picks (机选, default 1) for the game's draw on sale
    CP | 彩票                       my last tickets and their prizes
    BX | POLICIES | 保险            my insurance policies, numbered (never bought by SMS)
    TB 2 | 退保 2                   cancel policy 2 in its cooling-off period (the premium back)
    GS | 挂失                       suspend my NFC cards at once (a lost phone or sticker card)
    SJBZ IMEI 3999 20261201 长沙 FP1 | 手机保障 …   enrol my phone in handset protection (IMEI, price in
                                    yuan, purchase date, city, receipt number); confirmed by code
    BZ | HELP | 帮助                help
    TD | STOP | 退订                stop reminders (codes and receipts still come)
    KT | START | 开通               reminders again
    123456                          the 6-digit code confirming a money command
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from mobipay.channels.sms.errors import CommandNotUnderstood
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.msisdn import normalize_msisdn

KEYWORDS = {
    "balance": ("YE", "BAL", "BALANCE", "余额"),
    "transfer": ("ZZ", "TRANSFER", "转账"),
    "topup": ("CZ", "TOPUP", "充值"),
    "bill": ("JF", "PAY", "缴费"),
    "history": ("MX", "HISTORY", "明细"),
    "help": ("BZ", "HELP", "帮助", "?"),
    "stop": ("TD", "STOP", "退订"),
    "start": ("KT", "START", "开通"),
    "products": ("YW", "PRODUCTS", "业务"),
    "product": ("DG", "BUY", "订购"),
    "lottery": ("CP", "LOTTERY", "彩票"),
    "policies": ("BX", "POLICIES", "INSURANCE", "保险"),
    "policy_cancel": ("TB", "退保"),
    "nfc_suspend": ("GS", "挂失"),
    "protect": ("SJBZ", "PROTECT", "手机保障"),
}
HELP = ("余额 YE；转账 ZZ 手机号 金额；充值 CZ [手机号] 金额；缴费 JF 名称；明细 MX；业务 YW；订购 DG 序号；"
        "彩票机选 CP SSQ [注数]；我的彩票 CP；我的保单 BX；退保 TB 序号；退订 TD。"
        " Balance YE; transfer ZZ number amount; top-up CZ [number] amount; pay bill JF name; history MX;"
        " products YW; buy DG number; lottery CP SSQ [bets]; my tickets CP; my policies BX; cancel one TB number.")
#: How a game may be typed (after NFKC and upper-casing) → its code.
GAMES = {"SSQ": "ssq", "双色球": "ssq", "DLT": "dlt", "大乐透": "dlt", "超级大乐透": "dlt",
         "FC3D": "fc3d", "3D": "fc3d", "福彩3D": "fc3d"}
MAX_POLICY = 99  # the highest position TB takes
GAMES_HELP = "玩法：双色球SSQ、大乐透DLT、福彩3D。Games: SSQ, DLT, 3D."
MAX_QUICK_PICKS = 5
#: Insurance is never bought by SMS: the insured's name and identity number must not travel in clear.
POLICIES_HELP = ("保险请在客户端或网上营业厅投保（需被保险人姓名和身份证号，不经短信发送）。查看保单请发BX，"
                 "犹豫期内退保请发TB 序号。Insurance is bought in the app (it needs the insured's identity number, "
                 "never sent by SMS). BX lists your policies; TB number cancels one.")
NFC_SUSPEND_HELP = ("挂失NFC卡请发：GS（手机丢失时，钱包的全部NFC卡立即停用；恢复请在客户端操作）。"
                    "Send GS to suspend all your NFC cards at once (resume them in the app).")
PROTECT_HELP = ("手机保障请发：SJBZ IMEI 购机价 购机日期 城市 发票号，如 SJBZ 353281110000011 3999 20261201 长沙 FP1。"
                "Send: SJBZ IMEI price date city receipt.")
CANCEL_HELP = ("退保请发：TB 保单序号，如 TB 1（回复BX查看保单）。"
               "Send: TB and the policy's number (BX lists them).")


@dataclass(frozen=True, slots=True)
class Command:
    action: str  # balance | transfer | topup | bill | history | help | stop | start | confirm
    #              | products | product | lottery | tickets | policies | policy_cancel | nfc_suspend
    msisdn: str | None = None
    amount: int | None = None  # fen
    name: str | None = None  # a saved bill, a product (number or code), a game code
    code: str | None = None
    count: int | None = None  # quick picks; a policy's position in BX
    words: tuple[str, ...] = ()  # handset protection: the purchase date, city and receipt number


def _amount(text: str, typed: str) -> int:
    """Yuan as typed (``50``, ``50.5``, ``50.50``, ``¥50``) to fen; refuses anything else.
    ``typed`` is the word before normalisation: an amount in other digits than 0-9
    (full-width "５０", superscript "5²", "①", Arabic-Indic…) is refused, not guessed at:
    NFKC would silently turn "5²" into 52."""
    if any(ch.isnumeric() and not ch.isascii() for ch in typed):
        raise CommandNotUnderstood("金额请用半角数字 0-9，如 50 或 12.50。Type the amount in the digits 0-9.")
    text = text.lstrip("¥￥").removesuffix("元").removesuffix("YUAN")
    if not re.fullmatch(r"[0-9]{1,7}(\.[0-9]{1,2})?", text):
        raise CommandNotUnderstood(f"金额应为数字，如 50 或 12.50（{text!r}）。Amount as a number, e.g. 50 or 12.50.")
    yuan, _, cents = text.partition(".")
    fen = int(yuan) * 100 + int((cents + "00")[:2])
    if fen <= 0:
        raise CommandNotUnderstood("金额须大于零。The amount must be more than zero.")
    return fen


def parse(text: str) -> Command:
    """The command in an SMS, or ``SMS_COMMAND_UNKNOWN`` whose detail is the reply to send."""
    clean = " ".join(unicodedata.normalize("NFKC", text).upper().split())
    if not clean:
        raise CommandNotUnderstood(HELP)
    if re.fullmatch(r"\d{6}", clean):
        return Command("confirm", code=clean)
    first, *rest = clean.split(" ")
    for chinese in ("余额", "转账", "充值", "缴费", "明细", "帮助", "退订", "开通", "业务", "订购", "彩票", "保险",
                    "退保", "挂失", "手机保障"):
        if first.startswith(chinese) and first != chinese:  # no space after a Chinese keyword
            first, rest = chinese, [first[len(chinese):], *rest]
    action = next((a for a, words in KEYWORDS.items() if first in words), None)
    typed_amount = text.split()[-1] if text.split() else ""  # the amount is the last word, as typed
    if action is None:
        raise CommandNotUnderstood(f"没看懂“{text.strip()[:20]}”。{HELP}")
    if action in ("balance", "history", "help", "stop", "start", "products"):
        if action == "products" and rest:
            raise CommandNotUnderstood("查看业务请发：YW；订购请发：DG 序号，如 DG 1。"
                                       "Send YW for the list, DG number to buy.")
        return Command(action)
    if action == "product":
        if len(rest) != 1:
            raise CommandNotUnderstood("订购请发：DG 序号，如 DG 1（回复YW查看业务）。"
                                       "Send: DG and the product's number (YW lists them).")
        return Command("product", name=rest[0][:32])
    if action == "lottery":
        return _lottery(rest, typed_amount)
    if action == "nfc_suspend":
        if rest:
            raise CommandNotUnderstood(NFC_SUSPEND_HELP)
        return Command("nfc_suspend")
    if action == "policies":
        if rest:  # BX <product>: someone trying to buy; say where, and why not here
            raise CommandNotUnderstood(POLICIES_HELP)
        return Command("policies")
    if action == "protect":
        return _protect(rest, text)
    if action == "policy_cancel":
        if len(rest) != 1 or any(ch.isnumeric() and not ch.isascii() for ch in typed_amount) or not (
                rest[0].isascii() and rest[0].isdigit() and 1 <= int(rest[0]) <= MAX_POLICY):
            raise CommandNotUnderstood(CANCEL_HELP)
        return Command("policy_cancel", count=int(rest[0]))
    if action == "transfer":
        if len(rest) != 2:
            raise CommandNotUnderstood("转账请发：ZZ 手机号 金额，如 ZZ 13800138000 50。Send: ZZ number amount.")
        return Command("transfer", msisdn=_number(rest[0]), amount=_amount(rest[1], typed_amount))
    if action == "topup":
        if len(rest) == 1:
            return Command("topup", amount=_amount(rest[0], typed_amount))
        if len(rest) == 2:
            return Command("topup", msisdn=_number(rest[0]), amount=_amount(rest[1], typed_amount))
        raise CommandNotUnderstood("充值请发：CZ [手机号] 金额，如 CZ 100。Send: CZ [number] amount.")
    if not rest:
        raise CommandNotUnderstood("缴费请发：JF 账单名称，如 JF 电费。Send: JF and the saved bill's name.")
    return Command("bill", name=" ".join(rest)[:32])


def _lottery(rest: list[str], typed: str) -> Command:
    """``CP`` (my tickets) or ``CP <game> [quick picks]``; the count in the digits 0-9 as typed."""
    if not rest:
        return Command("tickets")
    if len(rest) > 2 or rest[0] not in GAMES:
        raise CommandNotUnderstood(f"彩票机选请发：CP 玩法 [注数]，如 CP SSQ 2。{GAMES_HELP} Send: CP game [bets].")
    count = 1
    if len(rest) == 2:
        if not (typed.isascii() and rest[1].isascii() and rest[1].isdigit() and 1 <= int(rest[1]) <= MAX_QUICK_PICKS):
            raise CommandNotUnderstood(f"机选注数为1到{MAX_QUICK_PICKS}，如 CP SSQ 2。"
                                       f"Quick picks: 1 to {MAX_QUICK_PICKS} bets.")
        count = int(rest[1])
    return Command("lottery", name=GAMES[rest[0]], count=count)


def _protect(rest: list[str], text: str) -> Command:
    """``SJBZ IMEI price date city receipt``: the price in yuan (digits 0-9 as typed), the
    date YYYYMMDD or YYYY-MM-DD. The IMEI and the rest are checked by the programme."""
    if len(rest) != 5:
        raise CommandNotUnderstood(PROTECT_HELP)
    imei, price, day, city, receipt = rest
    typed_price = next((w for w in text.split() if unicodedata.normalize("NFKC", w).upper() == price), price)
    if not re.fullmatch(r"\d{15}", imei):
        raise CommandNotUnderstood("IMEI为15位数字（拨*#06#查看）。The IMEI is 15 digits (dial *#06#). " + PROTECT_HELP)
    digits = day.replace("-", "")
    if not re.fullmatch(r"20\d{6}", digits):
        raise CommandNotUnderstood("购机日期如 20261201。The purchase date as 20261201. " + PROTECT_HELP)
    return Command("protect", name=imei, amount=_amount(price, typed_price),
                   words=(f"{digits[:4]}-{digits[4:6]}-{digits[6:]}", city.lower()[:32], receipt[:64]))


def _number(text: str) -> str:
    try:
        return normalize_msisdn(text)
    except MobipayError:
        raise CommandNotUnderstood(f"“{text}”不是手机号。Not a mobile number.") from None
