"""The voice menu's insurance policies (8) as a pure dialog: read one by one, the one just
read cancelled after a confirmation, numbered for the call, a decline said with "not
refunded" and until when; the call against the services: tests/integration/test_voice_insurance.py."""

from __future__ import annotations

from mobipay.channels.voice import dialog as D
from mobipay.channels.voice.prompts import text
from mobipay.products.errors import CoolingOffOver
from tests.unit.test_voice_dialog import at_menu, said

POLICIES = [D.PolicyOffer("ip_1", D.Words("综合意外险", "Ping An accident cover, 365 days"), 5_000,
                          D.Words("11月25日起保障，12月9日12点前可退保",
                                  "cover from 11/25, cancellable until 12/9 12:00"),
                          True, 0),
            D.PolicyOffer("ip_2", D.Words("短期意外险", "Ping An accident cover, 30 days"), 990,
                          D.Words("保障中", "in force"), False, 0)]


def test_the_main_menu_offers_policies_on_8() -> None:
    menu = at_menu()
    assert "查询或退保我的保单请按8" in text(menu.say[0], "zh")
    assert "my insurance policies 8" in text(menu.say[0], "en")
    assert D.MAIN_MENU_KEYS == "1234567890" and menu.expect == D.Expect("choice", "1234567890")
    assert D.on_input(menu.state, "8").action == D.Policies()


def test_policies_are_read_one_by_one() -> None:
    none = D.on_result(at_menu().state, D.Policies(), [])
    assert said(none) == ["policies_none", "main_menu"]
    first = D.on_result(at_menu().state, D.Policies(), POLICIES)
    assert said(first) == ["policy_item", "policy_options_cancel"] and first.expect == D.Expect("choice", "12")
    assert text(first.say[0], "zh") == "第1份保单，综合意外险，保费50元，11月25日起保障，12月9日12点前可退保。"
    assert text(first.say[0], "en") == ("Policy 1: Ping An accident cover, 365 days, premium 50 yuan, cover from "
                                        "11/25, cancellable until 12/9 12:00.")
    second = D.on_input(first.state, "2")
    assert said(second) == ["policy_item", "policy_options"] and second.expect == D.Expect("choice", "2")
    assert text(second.say[0], "zh") == "第2份保单，短期意外险，保费9.90元，保障中。"
    assert said(D.on_input(second.state, "1")) == ["invalid_choice", "policy_item", "policy_options"]  # not cancellable
    end = D.on_input(second.state, "2")
    assert said(end) == ["policies_end", "main_menu"] and end.state.policies == ()
    assert D.on_input(second.state, "*").state.node == "menu"


def test_the_policy_just_read_is_cancelled_after_confirmation_numbered_for_the_call() -> None:
    first = D.on_result(at_menu().state, D.Policies(), POLICIES)
    confirm = D.on_input(first.state, "1")
    assert said(confirm) == ["policy_confirm"]
    assert text(confirm.say[0], "zh") == ("退保综合意外险，保费50元退回您的钱包，保障随即终止。"
                                          "确认退保请按1，取消请按2。")
    assert D.on_input(confirm.state, "*").state.node == "policy"  # back to the policy
    kept = D.on_input(confirm.state, "2")
    assert said(kept) == ["policy_kept", "main_menu"] and kept.action is None
    cancelling = D.on_input(confirm.state, "1")
    assert cancelling.action == D.CancelPolicy("ip_1", 0, 1) and cancelling.state.step == 1
    done = D.on_result(cancelling.state, cancelling.action, D.Cancelled("done"))
    assert said(done) == ["policy_cancel_done", "main_menu"] and done.state.policies == ()
    assert text(done.say[0], "zh") == "退保成功，保费50元已退回您的钱包。"
    pending = D.on_result(cancelling.state, cancelling.action, D.Cancelled("pending"))
    assert said(pending) == ["policy_cancel_pending", "main_menu"]
    refused = D.on_result(cancelling.state, cancelling.action, CoolingOffOver("over"))
    assert said(refused) == ["error", "main_menu"] and refused.say[0].error is not None


def test_a_declined_cancellation_says_nothing_was_refunded_and_until_when() -> None:
    confirm = D.on_input(D.on_result(at_menu().state, D.Policies(), POLICIES).state, "1")
    cancelling = D.on_input(confirm.state, "1")
    assert cancelling.action is not None
    declined = D.on_result(cancelling.state, cancelling.action,
                           D.Cancelled("declined", D.Words("12月9日12点", "12/9 12:00")))
    assert said(declined) == ["policy_cancel_declined", "main_menu"]
    assert text(declined.say[0], "zh") == ("保险公司未同意退保，保单继续有效，保费没有退回。"
                                           "您可以在12月9日12点前再次申请退保。")
    assert "was not refunded. You may ask again until 12/9 12:00." in text(declined.say[0], "en")


def test_every_new_prompt_has_both_languages_and_is_prerendered() -> None:
    statics = D.all_static_texts()
    for prompt in ("policies_none", "policy_item", "policy_options_cancel", "policy_options", "policies_end",
                   "policy_confirm", "policy_cancel_done", "policy_cancel_pending", "policy_cancel_declined",
                   "policy_kept"):
        zh, en = D.PROMPTS[prompt]
        assert zh and en and any(t.startswith(zh.split("{")[0]) for _, t in statics), prompt
