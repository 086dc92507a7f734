"""Merchant applications (issue 29) on the in-memory stores: the applicant reads the status
with the token its application's answer carried, is told every decision by SMS, resubmits
an application sent back for more information (it returns to the review queue), and gets
nothing usable (API app, store, portal account) before approval or after a rejection."""

from __future__ import annotations

import pytest

from mobipay.kernel.errors import ValidationFailed
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.roles import Roster
from mobipay.merchants import errors
from mobipay.merchants.model import MerchantState
from mobipay.merchants.reference_data import categories
from mobipay.merchants.service import Merchant, MerchantService
from mobipay.merchants.signing import new_rsa_key
from mobipay.wallet.service import WalletService
from tests.support.memory import MemoryRunner

CONTACT = "+8613900139000"


@pytest.fixture
def merchants(runner: MemoryRunner, wallet: WalletService) -> MerchantService:
    return MerchantService(runner, wallet, new_rsa_key()[0], categories(), Roster("rev:merchant_review;risk:risk"),
                           store=runner.merchant_stores)


async def apply(merchants: MerchantService, mcc: str = "5732") -> tuple[Merchant, str]:
    """An electronics shop (standard risk: a person reviews it) applying over the API."""
    return await merchants.apply_online(name="数码港", credit_code="91350100M000100Y43", legal_person="李国",
                                        contact="13900139000", mcc=mcc, website="https://digital.example",
                                        settlement_account="6222020200112233")


def told(runner: MemoryRunner) -> list[tuple[str, str]]:
    return [(e.template, e.to) for e in runner.events if isinstance(e, SmsRequested)]


async def test_the_applicant_reads_the_status_and_hears_each_decision(merchants: MerchantService,
                                                                     runner: MemoryRunner) -> None:
    shop, token = await apply(merchants)
    assert shop.state is MerchantState.SUBMITTED and token.startswith("mat_")
    assert token not in str(runner.merchant_store.merchants[shop.id])  # kept only as its hash
    assert told(runner) == [("merchant_application.submitted", CONTACT)]
    assert (await merchants.application(shop.id, token)).merchant.state is MerchantState.SUBMITTED
    for wrong in (token + "x", ""):
        with pytest.raises(errors.ApplicationNotFound):
            await merchants.application(shop.id, wrong)
    with pytest.raises(errors.ApplicationNotFound):  # an unknown id looks exactly the same
        await merchants.application("mch_nope", token)

    await merchants.review(shop.id, MerchantState.MORE_INFO, actor="rev", reason="send the business licence")
    status = await merchants.application(shop.id, token)
    assert (status.merchant.state, status.merchant.reason) == (MerchantState.MORE_INFO, "send the business licence")
    last = runner.events[-1]
    assert isinstance(last, SmsRequested) and last.template == "merchant_application.more_info"
    assert last.to == CONTACT and last.params["reason"] == "send the business licence"

    assert shop.id not in [m.id for m in await merchants.review_queue()]  # waiting for the applicant
    again = await merchants.resubmit(shop.id, token, note="licence attached to the website",
                                     website="https://digital.example/licence")
    assert again.merchant.state is MerchantState.SUBMITTED and again.merchant.reason == ""
    assert again.merchant.website == "https://digital.example/licence" and again.applicant_note.startswith("licence")
    assert [m.id for m in await merchants.review_queue()] == [shop.id]  # back in the queue
    assert runner.audits[-1]["action"] == "merchant.resubmit"

    await merchants.review(shop.id, MerchantState.APPROVED, actor="rev", reason="licence checked")
    assert told(runner)[-1] == ("merchant_application.approved", CONTACT)
    app_id, key = await merchants.create_app(shop.id, "HMAC")  # usable now
    assert app_id in runner.merchant_store.apps and key


async def test_a_resubmission_is_checked_and_only_for_more_information(merchants: MerchantService,
                                                                      runner: MemoryRunner) -> None:
    shop, token = await apply(merchants)
    with pytest.raises(errors.StateInvalid, match="submitted"):  # nobody asked for more yet
        await merchants.resubmit(shop.id, token, note="more")
    await merchants.review(shop.id, MerchantState.MORE_INFO, actor="rev", reason="which category?")
    before = runner.merchant_store.merchants[shop.id]
    with pytest.raises(ValidationFailed):
        await merchants.resubmit(shop.id, token, note="  ")
    with pytest.raises(errors.InvalidMerchantField):
        await merchants.resubmit(shop.id, token, note="new category", mcc="1234")
    with pytest.raises(errors.ApplicationNotFound):
        await merchants.resubmit(shop.id, "mat_guess", note="hi")
    assert runner.merchant_store.merchants[shop.id] == before  # refused: nothing changed

    # a new category brings its own terms, and a person still decides (not the low-risk rule)
    again = await merchants.resubmit(shop.id, token, note="we sell books", mcc="5942")
    assert (again.merchant.mcc, again.merchant.fee_bps, again.merchant.state) == ("5942", 60, MerchantState.SUBMITTED)


async def test_nothing_is_usable_before_approval_or_after_rejection(merchants: MerchantService,
                                                                   runner: MemoryRunner) -> None:
    shop, token = await apply(merchants)
    for state in (None, MerchantState.MORE_INFO, MerchantState.REJECTED):
        if state is not None:
            await merchants.review(shop.id, state, actor="rev", reason=f"decided {state.value}")
        current = await merchants.merchant(shop.id)
        with pytest.raises(errors.MerchantNotApproved, match=current.state.value):
            await merchants.create_app(shop.id, "HMAC")
        with pytest.raises(errors.MerchantNotApproved):
            await merchants.add_store(current, "旗舰店")
        with pytest.raises(errors.MerchantNotApproved):
            await merchants.add_store(shop, "旗舰店")  # the caller's stale copy does not let it through
    assert runner.merchant_store.apps == {} and runner.merchant_store.stores == {}
    assert told(runner)[-1] == ("merchant_application.rejected", CONTACT)
    with pytest.raises(errors.StateInvalid):
        await merchants.resubmit(shop.id, token, note="please")  # a rejection is final
    assert (await merchants.application(shop.id, token)).merchant.state is MerchantState.REJECTED


async def test_a_low_risk_applicant_is_told_of_the_approval_by_rule(merchants: MerchantService,
                                                                   runner: MemoryRunner) -> None:
    shop, _ = await apply(merchants, mcc="5942")
    assert shop.state is MerchantState.APPROVED
    assert told(runner) == [("merchant_application.approved", CONTACT)]
    await merchants.add_store(shop, "旗舰店")
    await merchants.review(shop.id, MerchantState.SUSPENDED, actor="risk", reason="chargebacks")
    assert len(told(runner)) == 1  # suspending is not an application decision: no application SMS
    await merchants.add_store(await merchants.merchant(shop.id), "二店")  # suspended: it was approved
    assert len(runner.merchant_store.stores) == 2
