"""The voice dialog as a pure state machine: menus, keypad entries, PIN, refusals, retries;
and the pieces of the SIP front that need no network (INFO bodies, RFC 4733 events)."""

from __future__ import annotations

import struct

import pytest
from aiortp import RtpPacket

from mobipay.channels.voice import dialog as D
from mobipay.channels.voice.prompts import segments, spoken_amount, text
from mobipay.channels.voice.sip import KeyReceiver, info_keys
from mobipay.kernel.errors import InvalidAmount
from mobipay.wallet.errors import PinIncorrect, PinLocked, UserFrozen, UserNotFound

BOB = "13900139000"


def said(step: D.Step) -> list[str]:
    return [s.prompt for s in step.say]


def at_menu(lang: D.Lang = "zh") -> D.Step:
    step = D.on_result(D.begin(lang).state, D.Identify(), None)
    step = D.on_input(step.state, "135790")
    assert step.action == D.VerifyPin("135790")
    return D.on_result(step.state, step.action, None)


def test_a_call_greets_identifies_then_asks_for_the_pin() -> None:
    step = D.begin()
    assert said(step) == ["welcome"] and step.action == D.Identify() and step.expect is None
    step = D.on_result(step.state, D.Identify(), None)
    assert said(step) == ["enter_pin"]
    assert step.state.node == "pin" and step.expect == D.Expect("digits", max_digits=D.MAX_ENTRY)


@pytest.mark.parametrize("refusal", [UserNotFound("x"), UserFrozen("x")])
def test_an_unknown_or_frozen_caller_hears_why_and_the_call_ends(refusal: Exception) -> None:
    step = D.on_result(D.begin().state, D.Identify(), refusal)  # type: ignore[arg-type]
    assert step.end and said(step) == ["error", "goodbye"]
    assert step.say[0].error is refusal
    assert step.action is None and step.expect is None


def test_a_malformed_pin_is_refused_without_asking_the_wallet() -> None:
    state = D.on_result(D.begin().state, D.Identify(), None).state
    step = D.on_input(state, "1357")
    assert step.action is None and said(step) == ["error", "enter_pin"]
    assert step.say[0].error is not None and step.say[0].error.code == "INVALID_PIN"
    assert step.state.retries == 1


def test_wrong_pins_are_retried_then_the_call_ends_and_a_lockout_ends_it_at_once() -> None:
    state = D.on_result(D.begin().state, D.Identify(), None).state
    for attempt in range(1, D.MAX_PIN_TRIES + 1):
        step = D.on_input(state, "000000")
        assert step.action == D.VerifyPin("000000")
        step = D.on_result(step.state, step.action, PinIncorrect("wrong", tries_left=5 - attempt))
        state = step.state
        if attempt < D.MAX_PIN_TRIES:
            assert said(step) == ["error", "enter_pin"] and not step.end
    assert step.end and said(step) == ["error", "goodbye"] and state.pin is None

    fresh = D.on_result(D.begin().state, D.Identify(), None).state
    step = D.on_result(fresh, D.VerifyPin("000000"), PinLocked("locked"))
    assert step.end and step.say[0].error is not None and step.say[0].error.code == "PIN_LOCKED"


def test_the_main_menu_runs_the_balance_and_says_it_in_yuan() -> None:
    menu = at_menu()
    assert menu.state.node == "menu" and menu.state.pin == "135790" and said(menu) == ["main_menu"]
    step = D.on_input(menu.state, "1")
    assert step.action == D.Balance()
    step = D.on_result(step.state, step.action, 12_345)
    assert said(step) == ["balance_is", "main_menu"] and step.say[0].param("amount") == D.Fen(12_345)
    assert text(step.say[0], "zh") == "您的可用余额为123.45元。"
    assert text(step.say[0], "en") == "Your available balance is 123.45 yuan."


def test_a_transfer_collects_number_and_amount_confirms_and_pays_once_per_step() -> None:
    s = D.on_input(at_menu().state, "3")
    assert s.state.node == "transfer_number" and said(s) == ["transfer_number"]
    s = D.on_input(s.state, BOB)
    assert s.state.to == "+86" + BOB and s.state.node == "transfer_amount"
    s = D.on_input(s.state, "50")
    assert s.state.amount == 5_000 and said(s) == ["transfer_confirm"]
    assert text(s.say[0], "zh") == f"向{BOB}转账50元，确认请按1，取消请按2。"
    paying = D.on_input(s.state, "1")
    assert paying.action == D.Transfer("+86" + BOB, 5_000, 1) and paying.state.step == 1
    done = D.on_result(paying.state, paying.action, D.PaymentResult("done"))
    assert said(done) == ["transfer_done", "main_menu"] and done.state.amount == 0 and done.state.to == ""
    again = D.on_input(D.on_input(D.on_input(done.state, "3").state, BOB).state, "7")
    assert D.on_input(again.state, "1").action == D.Transfer("+86" + BOB, 700, 2)  # a new key for a new payment


@pytest.mark.parametrize(("node_keys", "bad", "code"), [
    (("3",), "12345", "INVALID_MSISDN"),
    (("3",), "23800138000", "INVALID_MSISDN"),
    (("3", BOB), "0", "INVALID_AMOUNT"),
    (("3", BOB), "000", "INVALID_AMOUNT"),
    (("3", BOB), "1234567", "INVALID_AMOUNT"),
    (("2", "2"), "1380013800", "INVALID_MSISDN"),
    (("2", "1"), "0", "INVALID_AMOUNT"),
])
def test_malformed_numbers_and_amounts_are_refused_by_code_and_asked_again(node_keys: tuple[str, ...], bad: str,
                                                                           code: str) -> None:
    state = at_menu().state
    for keys in node_keys:
        state = D.on_input(state, keys).state
    step = D.on_input(state, bad)
    assert step.action is None and step.state.node == state.node and step.state.retries == 1
    assert step.say[0].error is not None and step.say[0].error.code == code
    assert said(step)[1:] == said(D.Step(state, D.node_prompt(state)))  # the same question again


def test_silence_reprompts_then_says_goodbye() -> None:
    state = at_menu().state
    for n in range(1, D.MAX_RETRIES + 1):
        step = D.on_input(state, None)
        assert said(step) == ["no_input", "main_menu"] and step.state.retries == n and not step.end
        state = step.state
    step = D.on_input(state, None)
    assert step.end and said(step) == ["no_input", "goodbye"]


def test_a_good_key_resets_the_retry_count_and_a_bad_choice_is_not_an_action() -> None:
    state = D.on_input(at_menu().state, None).state
    assert state.retries == 1
    step = D.on_input(state, "?")  # every key 0-9 is a menu entry now; "?" is what a VoiceXML nomatch sends
    assert said(step) == ["invalid_choice", "main_menu"] and step.action is None and step.state.retries == 2
    assert D.on_input(step.state, "1").state.retries == 0


def test_star_goes_back_one_step() -> None:
    s = D.on_input(D.on_input(at_menu().state, "3").state, BOB)
    assert s.state.node == "transfer_amount"
    back = D.on_input(s.state, "*")
    assert back.state.node == "transfer_number" and said(back) == ["transfer_number"]
    assert D.on_input(back.state, "*").state.node == "menu"
    confirm = D.on_input(s.state, "20")
    assert D.on_input(confirm.state, "*").state.node == "transfer_amount"
    cancel = D.on_input(confirm.state, "2")
    assert said(cancel) == ["cancelled", "main_menu"] and cancel.action is None


def test_top_up_own_phone_or_another_number() -> None:
    whom = D.on_input(at_menu().state, "2")
    assert said(whom) == ["topup_whom"]
    own = D.on_input(D.on_input(whom.state, "1").state, "30")
    assert said(own) == ["topup_confirm_own"]
    assert D.on_input(own.state, "1").action == D.Topup(None, 3_000, 1)
    other = D.on_input(D.on_input(D.on_input(whom.state, "2").state, "13700137000").state, "50")
    assert text(other.say[0], "zh") == "为13700137000充值50元，确认请按1，取消请按2。"
    paying = D.on_input(other.state, "1")
    assert paying.action == D.Topup("13700137000", 5_000, 1)
    for state, prompt in (("done", "topup_done"), ("pending", "topup_pending"), ("failed", "topup_failed")):
        assert said(D.on_result(paying.state, paying.action, D.PaymentResult(state)))[0] == prompt  # type: ignore[arg-type]


def test_pay_a_saved_bill() -> None:
    step = D.on_input(at_menu().state, "4")
    assert step.action == D.SavedBills()
    assert said(D.on_result(step.state, step.action, [])) == ["bills_none", "main_menu"]
    listed = D.on_result(step.state, step.action, ["家里电费", "燃气"])
    assert said(listed) == ["bill_item", "bill_item", "bills_back"] and listed.expect == D.Expect("choice", "12")
    assert text(listed.say[1], "zh") == "燃气请按2。"
    assert said(D.on_input(listed.state, "3")) == ["invalid_choice", "bill_item", "bill_item", "bills_back"]
    due = D.on_input(listed.state, "2")
    assert due.action == D.BillDue("燃气")
    confirm = D.on_result(due.state, due.action, D.DueBill("bill_1", 8_850))
    assert text(confirm.say[0], "zh") == "燃气本期应缴88.50元，确认缴费请按1，取消请按2。"
    assert D.on_input(confirm.state, "1").action == D.PayBill("燃气", "bill_1", 8_850, 1)
    refused = D.on_result(due.state, due.action, InvalidAmount("x"))
    assert refused.state.node == "bills" and said(refused)[0] == "error"


def test_recent_transactions_are_read_newest_first_with_direction() -> None:
    step = D.on_input(at_menu().state, "5")
    assert step.action == D.Recent()
    lines = [D.RecentLine(11, 25, D.Words("转账", "transfer"), -2_500), D.RecentLine(11, 24, D.Words("充入", "cash-in"),
                                                                                    100_000)]
    out = D.on_result(step.state, step.action, lines)
    assert [text(s, "zh") for s in out.say[:2]] == ["11月25日，转账，支出25元。", "11月24日，充入，收入1000元。"]
    assert said(D.on_result(step.state, step.action, [])) == ["recent_none", "main_menu"]


def test_nine_switches_between_chinese_and_english() -> None:
    menu = at_menu()
    en = D.on_input(menu.state, "9")
    assert en.state.lang == "en" and said(en) == ["main_menu"]
    assert text(en.say[0], "en").startswith("For your balance press 1")
    assert D.on_input(en.state, "9").state.lang == "zh"


def test_every_prompt_has_both_languages_and_fixed_pieces_to_render() -> None:
    for pid, (zh, en) in D.PROMPTS.items():
        assert zh and en, pid
        assert sorted(n for _, n, _, _ in __import__("string").Formatter().parse(zh) if n) == sorted(
            n for _, n, _, _ in __import__("string").Formatter().parse(en) if n), pid
    fixed = D.all_static_texts()
    assert ("zh", "欢迎致电手机钱包。") in fixed and ("en", "Your available balance is ") in fixed


def test_prompt_segments_split_fixed_words_from_dynamic_parts() -> None:
    item = D.say("transfer_confirm", number=D.Digits("13900139000"), amount=D.Fen(5_025))
    segs = segments(item, "zh")
    assert segs[0].text == "向" and segs[0].fixed
    assert [s.text for s in segs[1:12]] == list("一三九零零一三九零零零") and all(s.fixed for s in segs[1:12])
    assert segs[12].text == "转账" and (segs[13].text, segs[13].fixed) == ("50.25", False)
    assert spoken_amount(5_000, "zh") == "50" and spoken_amount(5, "en") == "0.05"


def test_sip_info_bodies() -> None:
    assert info_keys("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n") == "5"
    assert info_keys("application/dtmf-relay; charset=utf-8", "Signal= #\r\n") == "#"
    assert info_keys("application/dtmf-relay", "Signal=11\r\n") == "#"
    assert info_keys("application/dtmf", "*") == "*"
    assert info_keys("application/dtmf-relay", "Signal=X\r\n") == ""
    assert info_keys("text/plain", "5") == ""


def _event(key: int, end: bool, ts: int, seq: int) -> RtpPacket:
    return RtpPacket(payload_type=101, sequence_number=seq, timestamp=ts, ssrc=1,
                     payload=struct.pack("!BBH", key, 0x80 if end else 0, 160))


def test_rfc4733_events_one_key_each_even_when_replayed_with_the_same_timestamp() -> None:
    keys: list[str] = []
    rx = KeyReceiver(keys.append)
    # "1" with redundant end packets, then "1" again replayed from the same recording (same
    # timestamp and sequence numbers, as sipp replays a pcap), then "#".
    for _ in range(2):
        for seq, end in ((10, False), (11, False), (12, True), (13, True), (14, True)):
            rx.handle_packet(_event(1, end, 13280, seq))
    for seq, end in ((20, False), (21, True), (22, True)):
        rx.handle_packet(_event(11, end, 92640, seq))
    assert keys == ["1", "1", "#"]


@pytest.mark.parametrize("command", [[], ["sip"], ["prompts"]])
def test_voice_commands_have_help_with_an_example(command: list[str]) -> None:
    from typer.testing import CliRunner

    from mobipay.app.cli import app

    r = CliRunner().invoke(app, ["voice", *command, "--help"])
    assert r.exit_code == 0, r.output
    assert "Example:" in r.output


def test_the_answer_uses_the_telephone_event_payload_type_the_caller_offered() -> None:
    from types import SimpleNamespace

    from aiosipua import negotiate_sdp, parse_sdp

    from mobipay.channels.voice.sip import telephone_event_pt

    def offer(pt: int | None) -> str:
        fmts = "0" if pt is None else f"0 {pt}"
        te = "" if pt is None else f"a=rtpmap:{pt} telephone-event/8000\r\n"
        return (f"v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio 40000 RTP/AVP {fmts}\r\na=rtpmap:0 PCMU/8000\r\n{te}")

    for pt, expected in ((96, 96), (101, 101), (None, 101)):
        sdp = parse_sdp(offer(pt))
        got = telephone_event_pt(SimpleNamespace(sdp_offer=sdp))  # type: ignore[arg-type]
        assert got == expected
        answer, chosen = negotiate_sdp(sdp, "127.0.0.1", 31000, supported_codecs=[0], dtmf_payload_type=got)
        assert chosen == 0
        assert answer.audio is not None
        assert ([c.payload_type for c in answer.audio.codecs if c.encoding_name.lower() == "telephone-event"]
                == ([] if pt is None else [pt]))
