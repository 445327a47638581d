"""The receive quota: the three rules at their period boundaries (Asia/Shanghai), and concurrent
broadcasts that never push a customer over it (the sandbox's own audit counts what we included)."""

from __future__ import annotations

import threading
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from scrm.campaigns import selectors, services
from scrm.campaigns.models import Broadcast, QuotaLedger, SendChunk
from scrm.campaigns.quota import period, quota_release, quota_reserve
from tests.scrm.campaigns.conftest import Camp

SH = ZoneInfo("Asia/Shanghai")


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SH)


def test_periods_follow_the_shanghai_calendar() -> None:
    # 2026-01-31 23:59:59 in Shanghai is 15:59:59 UTC: still January there, whatever UTC says.
    assert period("days_of_month", sh(2026, 1, 31, 23, 59, 59)) == ("2026-01", 31)
    assert period("days_of_month", sh(2026, 2, 1, 0, 0, 0)) == ("2026-02", 28)
    assert period("days_of_month", sh(2028, 2, 29, 12)) == ("2028-02", 29)
    assert period("days_of_month", datetime(2026, 3, 31, 16, 0, tzinfo=ZoneInfo("UTC"))) == ("2026-04", 30)
    # ISO weeks start on Monday: Sunday 23:59 and Monday 00:00 are different periods.
    assert period("7_per_week", sh(2026, 11, 22, 23, 59, 59)) == ("2026-W47", 7)
    assert period("7_per_week", sh(2026, 11, 23, 0, 0)) == ("2026-W48", 7)
    assert period("7_per_week", sh(2027, 1, 1, 12)) == ("2026-W53", 7)  # ISO year, not calendar year
    assert period("1_per_day", sh(2026, 11, 21, 23, 59, 59)) == ("2026-11-21", 1)
    assert period("1_per_day", datetime(2026, 11, 21, 16, 0, tzinfo=ZoneInfo("UTC"))) == ("2026-11-22", 1)


def _reserve(rule: str, at: datetime, corp_pk: int, targets: list[str]) -> list[str]:
    key, allowance = period(rule, at)
    return quota_reserve(corp_pk=corp_pk, period_key=key, allowance=allowance, targets=targets)


@pytest.mark.django_db
def test_day_rule_boundary(world: object) -> None:
    corp_pk = world.corp_a.pk  # type: ignore[attr-defined]
    assert _reserve("1_per_day", sh(2026, 11, 21, 23, 59, 59), corp_pk, ["wmA", "wmB"]) == ["wmA", "wmB"]
    assert _reserve("1_per_day", sh(2026, 11, 21, 0, 0, 0), corp_pk, ["wmA", "wmC"]) == ["wmC"]
    assert _reserve("1_per_day", sh(2026, 11, 22, 0, 0, 0), corp_pk, ["wmA"]) == ["wmA"]


@pytest.mark.django_db
def test_week_rule_boundary(world: object) -> None:
    corp_pk = world.corp_a.pk  # type: ignore[attr-defined]
    for day in range(16, 23):  # Mon 16 … Sun 22 November 2026: one ISO week
        assert _reserve("7_per_week", sh(2026, 11, day, 12), corp_pk, ["wmA"]) == ["wmA"]
    assert _reserve("7_per_week", sh(2026, 11, 22, 23, 59, 59), corp_pk, ["wmA"]) == []
    assert _reserve("7_per_week", sh(2026, 11, 23, 0, 0), corp_pk, ["wmA"]) == ["wmA"]


@pytest.mark.django_db
def test_month_rule_boundary_and_release(world: object) -> None:
    corp_pk = world.corp_a.pk  # type: ignore[attr-defined]
    for _ in range(28):
        assert _reserve("days_of_month", sh(2026, 2, 14), corp_pk, ["wmA"]) == ["wmA"]
    assert _reserve("days_of_month", sh(2026, 2, 28, 23, 59, 59), corp_pk, ["wmA"]) == []
    # WeCom refused it (fail_list): the slot comes back.
    quota_release(corp_pk=corp_pk, period_key="2026-02", targets=["wmA"])
    assert _reserve("days_of_month", sh(2026, 2, 28, 23, 59, 59), corp_pk, ["wmA"]) == ["wmA"]
    assert _reserve("days_of_month", sh(2026, 3, 1, 0, 0), corp_pk, ["wmA"]) == ["wmA"]
    assert QuotaLedger.objects.get(target="wmA", period="2026-02").count == 28


@pytest.mark.django_db
def test_preview_counts_customers_at_quota(camp: Camp) -> None:
    camp.seed(members=2, customers=10, follows=10, tag_groups=1, seed=2)
    services.settings_save(
        corp=camp.corp,
        quota_rule="1_per_day",
        churn_threshold=Decimal("1"),
        approval_required=True,
        dnd_tag=None,
    )
    first = camp.approved()
    services.broadcast_send(broadcast_id=first.pk)
    audience = selectors.audience_of(camp.broadcast(name="second"))
    now = selectors.audience_preview(corp=camp.corp, audience=audience)
    assert now.total == 0 and now.excluded == {"quota": 10}
    # Tomorrow (Asia/Shanghai) they can receive again.
    tomorrow = selectors.audience_preview(corp=camp.corp, audience=audience, at=sh(2099, 1, 2, 0, 0))
    assert tomorrow.total == 10


@pytest.mark.django_db(transaction=True)
def test_concurrent_broadcasts_never_exceed_the_quota(camp: Camp) -> None:
    camp.seed(members=3, customers=60, follows=80, tag_groups=2, seed=9)
    camp.settings(quota_rule="1_per_day")
    services.settings_save(
        corp=camp.corp,
        quota_rule="1_per_day",
        churn_threshold=Decimal("1"),
        approval_required=True,
        dnd_tag=None,
    )
    # Three broadcasts to overlapping audiences (everyone; everyone but one tag; one member's customers).
    broadcasts = [camp.approved(name=f"b{i}", text=f"第 {i} 条") for i in range(3)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(broadcasts))

    def run(pk: int) -> None:
        try:
            barrier.wait()
            services.broadcast_send(broadcast_id=pk)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(b.pk,)) for b in broadcasts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    reached = sum(
        len(c.reserved) - len(c.fail_list)
        for c in SendChunk.objects.filter(broadcast__in=broadcasts, status=SendChunk.Status.CREATED)
    )
    assert reached == camp.customers()  # each customer in exactly one of the three
    assert max(QuotaLedger.objects.filter(corp=camp.corp).values_list("count", flat=True)) == 1
    assert camp.findings()["over_quota"] == 0
    statuses = {Broadcast.objects.get(pk=b.pk).status for b in broadcasts}
    assert statuses <= {Broadcast.Status.SENT, Broadcast.Status.DONE}
