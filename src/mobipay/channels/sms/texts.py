"""The words of every SMS the platform sends: Chinese first, then English, one catalogue.

Services emit ``SmsRequested(template, params)`` and never format text themselves; this is
the one place to change what subscribers read. Amounts arrive as ``*_fen`` integers and are
shown in yuan. A template missing here still sends a clear generic message (and is logged),
never nothing. ``reminder`` templates are the ones a subscriber can stop with ``TD``;
codes, receipts and refusals always go out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from mobipay.channels.words import WORDS, Lang, code_words, yuan
from mobipay.kernel.errors import CATALOGUE

log = structlog.get_logger(__name__)

#: template → (Chinese, English) with str.format fields from the event's params.
TEMPLATES: dict[str, tuple[str, str]] = {
    "otp.register": ("注册验证码{code}，{minutes}分钟内有效，请勿告诉他人。",
                     "Sign-up code {code}, valid {minutes} min. Never share it."),
    "otp.login": ("登录验证码{code}，{minutes}分钟内有效，请勿告诉他人。",
                  "Sign-in code {code}, valid {minutes} min. Never share it."),
    "otp.reset_pin": ("重置支付密码验证码{code}，{minutes}分钟内有效，请勿告诉他人。",
                      "PIN reset code {code}, valid {minutes} min. Never share it."),
    "confirm.request": ("{summary}。请在{minutes}分钟内回复验证码{code}确认，不是本人操作请忽略。",
                        "Reply {code} within {minutes} min to confirm; ignore if it was not you."),
    "pin.reset": ("您的支付密码已重置。如非本人操作，请立即致电客服。",
                  "Your payment PIN was reset. If it was not you, call us now."),
    "pin.locked": ("支付密码连续输错，付款（含免密支付）已锁定{minutes}分钟。如非本人操作，请致电客服或重置密码。",
                   "Wrong PIN too often: all payments locked {minutes} min. Not you? Call us."),
    "p2p.received": ("{from}向您转账{amount}元，已到账。", "{from} sent you {amount} CNY."),
    "p2p.invite": ("{from}向您转账{amount}元，请在3天内注册钱包领取，逾期退回。",
                   "{from} sent you {amount} CNY; register within 3 days to claim it."),
    "p2p.returned": ("您转给{to}的{amount}元对方未领取，已退回。",
                     "{amount} CNY to {to} was not claimed and is back in your wallet."),
    "request.received": ("{from}向您请求付款{amount}元，请在客户端确认或拒绝。",
                         "{from} asks you for {amount} CNY; accept or decline in the app."),
    "request.declined": ("{by}拒绝了您的付款请求。", "{by} declined your request."),
    "request.expired": ("您向{payer}请求的{amount}元{days}天内未付款，请求已过期。",
                        "Your request to {payer} for {amount} CNY expired unpaid after {days} days."),
    "request.expired_payer": ("{from}向您请求的{amount}元已过期，无需再付款。",
                              "The request from {from} for {amount} CNY has expired; nothing to pay."),
    "card.bound": ("您已绑定{bank}尾号{card}的银行卡。", "{bank} card ending {card} is now bound."),
    "cash_in.succeeded": ("银行卡充入{amount}元成功。", "Cash-in of {amount} CNY succeeded."),
    "cash_in.failed": ("银行卡充入{amount}元未成功，未扣款。", "Cash-in of {amount} CNY failed; nothing was taken."),
    "cash_out.succeeded": ("提现{amount}元成功，手续费{fee}元。", "Cash-out of {amount} CNY done, fee {fee} CNY."),
    "cash_out.failed": ("提现{amount}元未成功，款项已退回钱包。", "Cash-out of {amount} CNY failed; money is back."),
    "close_payout.succeeded": ("销户余额{amount}元已退至您的银行卡。", "{amount} CNY paid to your card."),
    "close_payout.failed": ("销户余额{amount}元退款未成功，我们会再试。",
                            "Paying out {amount} CNY failed; we will try again."),
    "topup.succeeded": ("为{msisdn}充值{face}元成功，实付{price}元。", "Topped up {msisdn} with {face} CNY."),
    "topup.failed": ("为{msisdn}充值{face}元未成功，{price}元已退回。", "Top-up of {msisdn} failed; money is back."),
    "topup.received": ("您的号码已到账充值{face}元。", "Your number was topped up with {face} CNY."),
    "bill.succeeded": ("{biller}缴费{amount}元成功，凭证号{ref}。", "Paid {amount} CNY to {biller}, ref {ref}."),
    "bill.failed": ("{biller}缴费{amount}元未成功，款项已退回。", "Payment to {biller} failed; money is back."),
    "bill.reminder": ("{nickname}{biller}新账单{amount}元，{due}前缴费，回复JF {nickname}缴费。",
                      "New {biller} bill {amount} CNY due {due}."),
    "bill.autopay": ("{nickname}{biller}新账单{amount}元，将按约定自动缴费。",
                     "New {biller} bill {amount} CNY will be paid automatically."),
    "bill.autopay_refused": ("{biller}自动缴费未成功（{code}），请手动缴费。",
                             "Autopay to {biller} failed ({code}); please pay it yourself."),
    "complaint.open": ("投诉{id}已受理（{biller}），我们会尽快处理。", "Complaint {id} about {biller} received."),
    "complaint.in_progress": ("投诉{id}正在处理。", "Complaint {id} is being handled."),
    "complaint.resolved": ("投诉{id}已处理：{note}", "Complaint {id} resolved: {note}"),
    "complaint.rejected": ("投诉{id}未予支持：{note}", "Complaint {id} rejected: {note}"),
    "operator_product.succeeded": ("{name}已开通。", "{name} is now active."),
    "operator_product.failed": ("{name}开通未成功，款项已退回。", "{name} could not be activated; money is back."),
    "insurance.succeeded": ("{name}投保成功，保单号{ref}。", "{name} policy {ref} issued."),
    "insurance.failed": ("{name}投保未成功，款项已退回。", "{name} could not be issued; money is back."),
    "insurance_cancel.succeeded": ("{name}已退保，{amount}元已退回。", "{name} cancelled; {amount} CNY refunded."),
    "insurance_cancel.failed": ("{name}退保未成功，请联系客服。", "Cancelling {name} failed; call us."),
    "insurance_cancel.declined": ("{name}退保申请未获保险公司同意，保单继续有效，保费未退。{until}前可再次申请退保。",
                                  "Cancelling {name} was declined: the policy stays, nothing refunded. "
                                  "You may ask again until {until}."),
    "product.renewal_notice": ("{name}将于{date}自动续订，从钱包扣费{amount}元。如不需要，请在此前退订。",
                               "{name} renews on {date} for {amount} CNY from your wallet; cancel before then "
                               "if you do not want it."),
    "product.renewed": ("{name}已续订，扣费{amount}元，有效期至{until}。", "{name} renewed for {amount} CNY, "
                        "until {until}."),
    "product.renewal_failed": ("{name}续订未成功，款项{amount}元已退回，服务已停止。",
                               "{name} could not be renewed; {amount} CNY is back; the service has stopped."),
    "product.renewal_refused": ("{name}续订未成功（{code}），未扣款，服务已停止。如需继续请重新订购。",
                                "{name} was not renewed ({code}); nothing charged; the service has stopped."),
    "product.cancelled": ("{name}已退订，本期服务至{until}，到期不再续订扣费。",
                          "{name} cancelled: it stays active until {until} and will not renew."),
    "product.ended": ("{name}已到期停止。", "{name} has ended."),
    "lottery.succeeded": ("彩票{game}第{issue}期投注成功，票号{serial}。", "Lottery ticket {serial} for draw {issue}."),
    "lottery.failed": ("彩票{game}第{issue}期投注未成功，款项已退回。", "Lottery ticket refused; money is back."),
    "lottery.won": ("恭喜！{game}第{issue}期中{tier}等奖，奖金{amount}元已到账。",
                    "You won tier {tier} of {game} {issue}: {amount} CNY."),
    "lottery.won_taxed": ("恭喜！{game}第{issue}期中{tier}等奖，依法代扣个人所得税{tax}元，税后奖金{amount}元已到账。",
                          "You won tier {tier} of {game} {issue}: {amount} CNY paid after {tax} CNY income tax."),
    "lottery.claim": ("恭喜！{game}第{issue}期中{tier}等奖，奖金{amount}元（代扣税{tax}元）。"
                      "请于{until}前在客户端用本人身份证兑奖。",
                      "You won tier {tier} of {game} {issue}: {amount} CNY ({tax} CNY tax). Claim it in the app "
                      "with your identity card by {until}."),
    "campaign.message": ("{text}", ""),
    "campaign.red_envelope": ("{merchant}送您红包「{name}」，打开手机钱包红包专区领取（活动{campaign}）。",
                              "{merchant} has a red envelope for you: {name}. Claim it in the wallet's envelope zone."),
    "campaign.prize_won": ("恭喜！您在「{draw}」抽奖中获得{number}号奖品{prize}（抽奖码{entry}），我们将送奖上门，"
                           "请于{until}前致电客服确认收货地址。",
                           "You won prize {number}, {prize}, in the {draw} draw (entry {entry}). We deliver it to "
                           "your door: call us with your address by {until}."),
    "campaign.delivery_out": ("您的奖品{prize}今天由{vehicle}送奖上门，请保持电话畅通。",
                              "Your prize {prize} is on its way today ({vehicle}); keep your phone on."),
    "campaign.delivered": ("您的奖品{prize}已由{receiver}签收，感谢参与。",
                           "Your prize {prize} was received by {receiver}."),
    "campaign.delivery_failed": ("您的奖品{prize}今日未能送达（{reason}），我们将再次安排，请于{until}前确认地址。",
                                 "Your prize {prize} could not be delivered today ({reason}); we will try again. "
                                 "Confirm your address by {until}."),
    "campaign.prize_unclaimed": ("您的奖品{prize}已过领取期限{until}，视为放弃。",
                                 "Your prize {prize} was not claimed by {until} and is forfeited."),
    "merchant.paid": ("您在{merchant}支付{amount}元成功。", "Paid {amount} CNY at {merchant}."),
    "groupbuy.vouchers": ("聚惠啦：您已购买{deal}{count}张，付{amount}元。券码{codes}，"
                          "{until}前到店出示券码或钱包中的二维码。",
                          "聚惠啦: {count} x {deal} bought for {amount} CNY. Codes {codes}, valid until {until}: show "
                          "a code or the QR code in your wallet at the shop."),
    "groupbuy.consumed": ("聚惠啦：您的{deal}已验证{count}张，剩余{left}张未使用。",
                          "聚惠啦: {count} voucher(s) of {deal} used; {left} left."),
    "groupbuy.refund_request": ("聚惠啦：{deal}{count}张券已退款{amount}元，已退回钱包。",
                                "聚惠啦: {count} voucher(s) of {deal} refunded, {amount} CNY back in your wallet."),
    "groupbuy.refund_expiry": ("聚惠啦：{deal}{count}张券已过期未使用，已自动退款{amount}元到钱包。",
                               "聚惠啦: {count} unused voucher(s) of {deal} expired: {amount} CNY refunded to your "
                               "wallet."),
    "groupbuy.refund_group_failed": ("聚惠啦：{deal}未能成团，已全额退款{amount}元到钱包。",
                                     "聚惠啦: {deal} did not get enough buyers: {amount} CNY refunded in full to your "
                                     "wallet."),
    "tourism.notice": ("{bureau}：游客对贵社{date}团队的投诉（工单{order}）已受理，"
                       "请于{until}前书面答复事实、理由和证据。",
                       "{bureau}: a tourist's complaint about your tour of {date} (work order {order}) is accepted; "
                       "reply in writing with the facts, reasons and evidence by {until}."),
    "tourism.refunded": ("{agency}已按调解结果退款{amount}元到您的钱包（投诉工单{order}）。",
                         "{agency} refunded {amount} CNY to your wallet as mediated (work order {order})."),
    "cinema.tickets": ("电影票：{cinema}{hall}《{film}》{time} {seats}。取票串码{code}，"
                       "请在影院自助机输入取票，勿告诉他人。",
                       "Cinema: {film} at {cinema} {hall}, {time}, seats {seats}. Ticket code {code}: type it at the "
                       "cinema's kiosk to print your tickets. Never share it."),
    "cinema.changed": ("电影票已改签：{cinema}{hall}《{film}》{time} {seats}。新取票串码{code}，原串码已失效。",
                       "Tickets changed: {film} at {cinema} {hall}, {time}, seats {seats}. New ticket code {code}; "
                       "the old code no longer works."),
    "cinema.refund_request": ("《{film}》{time}的电影票已退票，退款{amount}元已退回钱包（手续费{fee}元）。",
                              "Tickets for {film} at {time} refunded: {amount} CNY back in your wallet (fee {fee})."),
    "cinema.refund_cancelled": ("影院已取消《{film}》{time}的场次，票款{amount}元已全额退回钱包。",
                                "The cinema cancelled {film} at {time}: {amount} CNY refunded in full to your wallet."),
    "cinema.printed": ("您的{count}张电影票已于{time}在影院自助机取出。如非本人操作，请联系影院。",
                       "Your {count} cinema ticket(s) were printed at the kiosk at {time}. Not you? Tell the cinema."),
    "enterprise.enrolled": ("{employer}已为您开通企业一卡通：餐补等福利将发放到钱包中的企业账户，"
                            "在单位食堂和商店付款时优先使用。",
                            "{employer} enrolled you in its enterprise one-card: allowances arrive in your wallet and "
                            "pay first at its canteen and shop."),
    "enterprise.paid": ("您在{merchant}消费{amount}元：企业补贴付{allowance}元，钱包付{wallet}元。",
                        "Paid {amount} CNY at {merchant}: allowance {allowance}, wallet {wallet}."),
    "merchant.paid_with_privilege": ("您在{merchant}支付{amount}元成功：联盟优惠{privilege}元，钱包付{paid}元。",
                                     "Paid {amount} CNY at {merchant}: alliance privilege {privilege}, wallet {paid}."),
    "merchant.paid_with_envelope": ("您在{merchant}支付{amount}元成功：红包抵扣{envelope}元，钱包付{paid}元。",
                                    "Paid {amount} CNY at {merchant}: red envelope {envelope}, wallet {paid}."),
    "merchant_application.submitted": ("商户申请{name}（{id}）已收到，审核结果将短信通知。",
                                       "Merchant application {id} received; the decision comes by SMS."),
    "merchant_application.approved": ("商户申请{name}（{id}）已通过审核：{reason}",
                                      "Merchant application {id} approved: {reason}"),
    "merchant_application.rejected": ("商户申请{name}（{id}）未通过审核：{reason}",
                                      "Merchant application {id} rejected: {reason}"),
    "merchant_application.more_info": ("商户申请{name}（{id}）需补充材料：{reason}。请补充后重新提交。",
                                       "Merchant application {id} needs more: {reason}. Resubmit it with that."),
    "merchant.refunded": ("{merchant}退款{amount}元已退回您的钱包，退款单号{out_request_no}。",
                          "{merchant} refunded {amount} CNY to your wallet, refund no. {out_request_no}."),
    "reversal.in": ("运营方冲正交易{ref}，{amount}元已退回您的钱包。如有疑问请致电客服。",
                    "A transaction ({ref}) was reversed: {amount} CNY is back in your wallet."),
    "reversal.out": ("运营方冲正交易{ref}，已从您的钱包扣回{amount}元。如有疑问请致电客服。",
                     "A transaction ({ref}) was reversed: {amount} CNY was taken back from your wallet."),
    "order.refunded": ("订单{ref}对账后退款{amount}元已退回您的钱包。",
                       "Order {ref}: {amount} CNY refunded to your wallet."),
    "wallet.frozen": ("您的钱包已被冻结（余额{balance}元），暂不能收付款。如有疑问请致电客服。",
                      "Your wallet is frozen (balance {balance} CNY): no payments in or out. Call us with questions."),
    "wallet.unfrozen": ("您的钱包已解冻，可正常收付款，余额{balance}元。",
                        "Your wallet is unfrozen; balance {balance} CNY."),
    "red_envelope.issued": ("您获得{campaign}红包{face}元，付款时可用。", "You got a {face} CNY red envelope."),
    "bulk.paid": ("{funder}向您发放{amount}元（{note}），已到账。", "{funder} paid you {amount} CNY ({note})."),
    "bulk.invite": ("{funder}向您发放{amount}元（{note}），请在{days}天内用本号码注册钱包领取，逾期退回。",
                    "{funder} paid you {amount} CNY ({note}); register a wallet with this number within {days} "
                    "days to claim it."),
    "protection.enrolled": ("您的{model}（IMEI尾号{imei}）已加入手机保障服务，首月服务费{amount}元已扣，"
                            "{from}起保障生效。理赔手续费：损坏{damage}元，丢失或被盗{loss}元。",
                            "Your {model} (IMEI ...{imei}) is protected; first month {amount} CNY paid; cover from "
                            "{from}. Handling fee: damage {damage}, loss or theft {loss} CNY."),
    "protection.fee_collected": ("手机保障服务（{model}）本月服务费{amount}元已扣，保障至{until}。",
                                 "Handset protection ({model}): {amount} CNY paid, covered until {until}."),
    "protection.lapsed": ("手机保障服务（{model}）本月服务费{amount}元扣款未成功（{code}），保障已暂停。",
                          "Handset protection ({model}): the {amount} CNY fee failed ({code}); cover has stopped."),
    "protection.submitted": ("您的手机保障理赔申请{id}（{kind_zh}）已受理，我们会尽快审核。",
                             "Handset protection claim {id} ({kind}) received; we will review it shortly."),
    "protection.more_info": ("理赔申请{id}需补充资料：{reason}。请在客户端补充。",
                             "Claim {id} needs more: {reason}. Add it in the app."),
    "protection.second_review": ("理赔申请{id}正在复核，结果将短信通知。",
                                 "Claim {id} is in a second review; the result comes by SMS."),
    "protection.approved": ("理赔申请{id}已通过，请支付手续费{amount}元，之后为您调配同型号新机。",
                            "Claim {id} approved: pay the {amount} CNY handling fee and we allocate a phone of the "
                            "same model."),
    "protection.rejected": ("理赔申请{id}未通过：{reason}", "Claim {id} rejected: {reason}"),
    "protection.fee_paid": ("理赔申请{id}手续费{amount}元已支付，正在为您调配同型号手机。",
                            "Claim {id}: {amount} CNY paid; a phone of the same model is being allocated."),
    "protection.allocated": ("理赔申请{id}：{hall}已为您预留{model}一台。",
                             "Claim {id}: a {model} is reserved for you at {hall}."),
    "protection.ready_for_pickup": ("理赔申请{id}：新机已到{hall}（{address}），请携带身份证领取。",
                                    "Claim {id}: your phone is ready at {hall}, {address}; bring your ID card."),
    "protection.out_for_delivery": ("理赔申请{id}：新机已寄出，请保持电话畅通。",
                                    "Claim {id}: your phone is on its way; keep your phone on."),
    "protection.handed_over": ("理赔申请{id}：同型号新机已交付，保障服务继续有效。",
                               "Claim {id}: your replacement is handed over; your cover continues."),
    "sms.reply": ("{text}", ""),  # a reply already worded by the SMS channel
    # Replies to SMS commands
    "reply.balance": ("您的钱包可用余额{balance}元。", "Balance: {balance} CNY."),
    "reply.history": ("最近交易：{rows}。", "Latest transactions (date, kind, CNY) as above."),
    "reply.history_empty": ("暂无交易记录。", "No transactions yet."),
    "reply.transferred": ("已向{to}转账{amount}元，余额{balance}元。", "Sent {amount} CNY to {to}; balance {balance}."),
    "reply.order_pending": ("{what}{amount}元已受理，结果将短信通知。", "Accepted: {amount} CNY; result by SMS."),
    "reply.stop": ("已退订提醒短信，验证码和交易通知仍会发送。回复KT恢复。",
                   "Reminders stopped; codes and receipts still come. Reply KT to resume."),
    "reply.start": ("已恢复提醒短信。回复TD退订。", "Reminders resumed. Reply TD to stop."),
    "reply.products": ("业务（回复DG 序号订购）：{rows}。", "Products as above: reply DG and the number to subscribe."),
    "reply.lottery_bought": ("{game}第{issue}期机选号码：{numbers}，共{amount}元，出票结果将短信通知。",
                             "{game_en} draw {issue}, quick picks {numbers}: {amount} CNY; ticket by SMS."),
    "reply.tickets": ("我的彩票：{rows}。", "My latest tickets (draw, bets, CNY, prize) as above."),
    "reply.tickets_empty": ("暂无彩票。发送CP SSQ机选一注双色球。", "No tickets yet; send CP SSQ for a quick pick."),
    "reply.policies": ("我的保单：{rows}。犹豫期内退保请回复TB 序号。",
                       "My policies (product, insured, state, cancellable until) as above; reply TB and the "
                       "number to cancel one in its cooling-off period."),
    "reply.policies_empty": ("暂无保单。保险请在客户端或网上营业厅投保。",
                             "No policies yet; insurance is bought in the app or the web wallet."),
    "reply.policy_cancelled": ("{name}已退保，保费{amount}元已退回，无需再次申请。",
                               "This policy is already cancelled; {amount} CNY was refunded."),
    "reply.policy_cancelling": ("{name}退保处理中，结果将短信通知。",
                                "This policy's cancellation is in progress; the result comes by SMS."),
}

#: Templates a subscriber may stop with TD (reminders and marketing, never codes or receipts).
REMINDERS = frozenset({"bill.reminder", "red_envelope.issued", "campaign.message", "campaign.red_envelope"})


def _shown(params: Mapping[str, Any], lang: Lang = "en") -> dict[str, Any]:
    """Params as shown: ``*_fen`` integers become yuan under the name without the suffix; an
    error code reads as its words in the text's language (its title when it has none)."""
    shown: dict[str, Any] = {}
    for key, value in params.items():
        if key.endswith("_fen") and isinstance(value, int):
            shown[key.removesuffix("_fen")] = yuan(value)
        shown[key] = value
    code = shown.get("code")
    if isinstance(code, str) and (code in CATALOGUE or code in WORDS) and not code.isdigit():
        zh, en = code_words(code, CATALOGUE[code].title if code in CATALOGUE else code)
        text = zh if lang == "zh" else en
        shown["code"] = text.rstrip("。.")
    return shown


def render(template: str, params: Mapping[str, Any]) -> str:
    """The SMS text for ``template`` with ``params``: Chinese, then English."""
    zh, en = TEMPLATES.get(template, ("", ""))
    try:
        text = zh.format(**_shown(params, "zh")) + (" " + en.format(**_shown(params)) if en else "")
    except (KeyError, IndexError):
        log.warning("sms.template_params_missing", template=template, params=sorted(params))
        text = ""
    if not text.strip():
        if template not in TEMPLATES:
            log.warning("sms.template_unknown", template=template)
        text = "您的账户有一条新通知，请登录客户端查看。You have a new notice; open the app to see it."
    return text
