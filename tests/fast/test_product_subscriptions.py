"""The subscription rules of monthly operator products, without I/O: calendar periods that
never drift, the renewal order id that makes a rerun charge nothing twice, when a
subscription still holds its product, when the renewal notice is due, what may be
cancelled; and the ids of insurance cancellation attempts. (The use cases on a database:
tests/integration/test_product_subscriptions.py.)"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mobipay.kernel.errors import MobipayError
from mobipay.products.model import Subscription, SubscriptionState, add_months, renewal_order_id
from mobipay.products.service import cancel_order_id, subscription_id

JAN31 = datetime(2026, 1, 31, 4, 0, tzinfo=UTC)  # noon in Beijing


def sub(state: SubscriptionState = SubscriptionState.ACTIVE, **changes: object) -> Subscription:
    base = Subscription("ps_1", "usr_1", "+8613800138000", "FETION_VIP", state, JAN31, 1, add_months(JAN31, 1),
                        "po_1", None, 0, JAN31, None)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_periods_are_calendar_months_from_the_first_purchase() -> None:
    assert add_months(JAN31, 1) == datetime(2026, 2, 28, 4, 0, tzinfo=UTC)  # clamped to February's end
    assert add_months(JAN31, 2) == datetime(2026, 3, 31, 4, 0, tzinfo=UTC)  # and back: no drift
    assert add_months(JAN31, 12) == datetime(2027, 1, 31, 4, 0, tzinfo=UTC)
    assert add_months(datetime(2027, 12, 31, 17, 0, tzinfo=UTC), 2) == datetime(2028, 2, 29, 17, 0, tzinfo=UTC)
    # 31 December 17:00 UTC is 1 January in Beijing: the Beijing calendar decides (1 March, not 29 February)
    assert add_months(datetime(2027, 12, 31, 17, 0, tzinfo=UTC), 2).tzinfo is UTC


def test_renewal_ids_derive_from_subscription_and_period() -> None:
    assert renewal_order_id("ps_1", 2) == renewal_order_id("ps_1", 2)  # a rerun: the same order
    assert len({renewal_order_id("ps_1", 2), renewal_order_id("ps_1", 3), renewal_order_id("ps_2", 2)}) == 3
    assert len(renewal_order_id("ps_1", 2)) <= 40  # fits partner_orders.id
    assert subscription_id("po_1") != subscription_id("po_2") and len(subscription_id("po_1")) <= 40


def test_what_holds_the_product() -> None:
    paid_until = add_months(JAN31, 1)
    assert sub(SubscriptionState.PENDING).holds_product(paid_until + timedelta(days=99))  # at the provider
    assert sub().holds_product(paid_until - timedelta(seconds=1))
    assert not sub().holds_product(paid_until)  # ran out (the worker will renew or lapse it)
    assert sub(renewal_order="pr_1").holds_product(paid_until)  # its renewal is at the provider
    assert sub(SubscriptionState.CANCELLED).holds_product(paid_until - timedelta(seconds=1))  # paid: still in
    for done in (SubscriptionState.ENDED, SubscriptionState.LAPSED, SubscriptionState.FAILED):
        assert not sub(done).holds_product(JAN31)


def test_renewal_and_notice_are_due() -> None:
    paid_until, notice = add_months(JAN31, 1), timedelta(days=3)
    assert not sub().notice_due(paid_until - notice - timedelta(seconds=1), notice)
    assert sub().notice_due(paid_until - notice, notice)
    assert not sub(reminded_cycle=1).notice_due(paid_until - notice, notice)  # told once per period
    assert not sub().notice_due(paid_until, notice)  # too late to warn: it renews now
    assert not sub(SubscriptionState.CANCELLED).notice_due(paid_until - notice, notice)  # will not renew
    assert sub().renewal_due(paid_until) and not sub().renewal_due(paid_until - timedelta(seconds=1))
    assert not sub(renewal_order="pr_1").renewal_due(paid_until)  # placed already
    assert not sub(SubscriptionState.CANCELLED).renewal_due(paid_until)


def test_what_may_be_cancelled() -> None:
    assert sub().check_cancellable() is True
    assert sub(SubscriptionState.CANCELLED).check_cancellable() is False  # again: nothing changes
    for state in (SubscriptionState.PENDING, SubscriptionState.ENDED, SubscriptionState.LAPSED,
                  SubscriptionState.FAILED):
        with pytest.raises(MobipayError) as info:
            sub(state).check_cancellable()
        assert info.value.code == "SUBSCRIPTION_NOT_ACTIVE" and info.value.extra["state"] == state.value


def test_cancellation_attempts_are_orders_of_their_own() -> None:
    first = cancel_order_id("ip_1", 1)
    assert first.startswith("ic_") and len({first, cancel_order_id("ip_1", 2), cancel_order_id("ip_1", 3)}) == 3
    assert cancel_order_id("ip_1", 2) == cancel_order_id("ip_1", 2)
