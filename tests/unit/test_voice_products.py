"""The voice menu's operator products (6) and lottery quick pick (7) as a pure dialog: the
list by digit, the confirmation, the payment numbered for its idempotency key, refusals
and back (the call against the services: tests/integration/test_voice_products.py)."""

from __future__ import annotations

from mobipay.channels.voice import dialog as D
from mobipay.channels.voice.prompts import text
from mobipay.lottery.errors import SalesClosed
from tests.unit.test_voice_dialog import at_menu, said

OFFERS = [D.ProductOffer("MUSIC_CRBT", D.Words("彩铃", "Colour ring-back tone"), 500),
          D.ProductOffer("MUSIC_TRACK", D.Words("整曲下载", "Full-track download"), 200)]
GAMES = [D.GameOffer("ssq", D.Words("双色球", "Double Colour Ball"), "2026137", D.Words("20点", "20:00")),
         D.GameOffer("fc3d", D.Words("福彩3D", "Welfare 3D"), "2026327", D.Words("20点", "20:00"))]


def test_the_main_menu_offers_products_and_lottery() -> None:
    menu = at_menu()
    assert "订购彩铃等移动业务请按6，彩票机选请按7" in text(menu.say[0], "zh")
    assert "operator services 6, lottery quick pick 7" in text(menu.say[0], "en")
    assert D.on_input(menu.state, "6").action == D.Products()
    assert D.on_input(menu.state, "7").action == D.LotteryGames()


def test_a_product_by_digit_confirmed_then_paid_once_per_confirmation() -> None:
    step = D.on_result(at_menu().state, D.Products(), OFFERS)
    assert said(step) == ["product_item", "product_item", "bills_back"] and step.expect == D.Expect("choice", "12")
    assert text(step.say[1], "zh") == "整曲下载，2元，请按2。"
    assert text(step.say[1], "en") == "Full-track download, 2 yuan, press 2."
    bad = D.on_input(step.state, "3")
    assert said(bad) == ["invalid_choice", "product_item", "product_item", "bills_back"] and bad.action is None
    step = D.on_input(step.state, "2")
    assert step.state.node == "product_confirm"
    assert text(step.say[0], "zh") == "订购整曲下载，2元，确认请按1，取消请按2。"
    assert D.on_input(step.state, "*").state.node == "products"  # back to the list
    assert said(D.on_input(step.state, "2")) == ["cancelled", "main_menu"]
    paying = D.on_input(step.state, "1")
    assert paying.action == D.BuyProduct("MUSIC_TRACK", 1) and paying.state.step == 1
    done = D.on_result(paying.state, paying.action, D.PaymentResult("done"))
    assert said(done) == ["product_done", "main_menu"] and done.state.products == () and done.state.amount == 0
    failed = D.on_result(paying.state, paying.action, D.PaymentResult("failed"))
    assert said(failed) == ["product_failed", "main_menu"]
    again = D.on_input(D.on_result(done.state, D.Products(), OFFERS).state, "1")
    assert D.on_input(again.state, "1").action == D.BuyProduct("MUSIC_CRBT", 2)  # a new key for a new payment


def test_a_quick_pick_game_count_confirmation_and_numbers_read_back() -> None:
    step = D.on_result(at_menu().state, D.LotteryGames(), GAMES)
    assert said(step) == ["game_item", "game_item", "bills_back"]
    assert text(step.say[0], "zh") == "双色球第2026137期，20点截止销售，请按1。"
    step = D.on_input(step.state, "1")
    assert step.state.node == "lottery_count" and step.expect == D.Expect("choice", "12345")
    assert said(D.on_input(step.state, "6")) == ["invalid_choice", "lottery_count"]
    assert said(D.on_input(step.state, "0"))[0] == "invalid_choice"
    step = D.on_input(step.state, "3")
    assert text(step.say[0], "zh") == "双色球第2026137期机选3注，共6元，确认请按1，取消请按2。"
    assert text(step.say[0], "en") == ("3 quick picks of Double Colour Ball draw 2026137 for 6 yuan: to confirm "
                                       "press 1, to cancel press 2.")
    assert D.on_input(step.state, "*").state.node == "lottery_count"
    paying = D.on_input(step.state, "1")
    assert paying.action == D.QuickPick("ssq", 3, "2026137", 1)
    numbers = D.Words("1、2、3、4、5、6，后区7", "1, 2, 3, 4, 5, 6, plus 7")
    done = D.on_result(paying.state, paying.action, D.Picked("done", numbers))
    assert said(done) == ["lottery_done", "main_menu"]
    assert text(done.say[0], "zh") == "投注成功，您的号码是1、2、3、4、5、6，后区7。"
    closed = D.on_result(paying.state, paying.action, SalesClosed("closed"))
    assert said(closed) == ["error", "main_menu"] and closed.say[0].error is not None
    assert said(D.on_result(paying.state, paying.action, D.Picked("failed", numbers))) == ["lottery_failed",
                                                                                           "main_menu"]


def test_every_new_prompt_has_both_languages_and_is_prerendered() -> None:
    statics = D.all_static_texts()
    for prompt in ("product_item", "product_confirm", "product_done", "game_item", "lottery_count",
                   "lottery_confirm", "lottery_done", "lottery_pending", "lottery_failed"):
        zh, en = D.PROMPTS[prompt]
        assert zh and en and any(t.startswith(zh.split("{")[0]) or zh.startswith("{") for _, t in statics)
