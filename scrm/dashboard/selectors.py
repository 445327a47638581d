from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from redis.exceptions import RedisError

from scrm.core.redis import get_redis
from scrm.customers.models import FollowStatus, Member
from scrm.dashboard.services import HEARTBEAT_KEY
from scrm.tenancy.models import Corp
from tasks.celery import LANES

STALE_AFTER_S = 90


@dataclass(frozen=True)
class LaneStatus:
    lane: str
    age_s: float | None  # None: never seen

    @property
    def alive(self) -> bool:
        return self.age_s is not None and self.age_s <= STALE_AFTER_S


def lane_status_list() -> list[LaneStatus]:
    try:
        raw = get_redis().mget([HEARTBEAT_KEY.format(lane=lane) for lane in LANES])
    except RedisError:
        return [LaneStatus(lane=lane, age_s=None) for lane in LANES]
    now = time.time()
    return [
        LaneStatus(lane=lane, age_s=None if value is None else max(0.0, now - float(value)))
        for lane, value in zip(LANES, raw, strict=True)
    ]


# -- growth: new customers, deletions by customers, net, per period / member / channel / day ------------

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Period:
    key: str
    label: str | Promise
    days: int  # calendar days (Asia/Shanghai) counted back from today, today included


PERIODS: dict[str, Period] = {
    p.key: p
    for p in (
        Period("today", _("Today"), 1),
        Period("7d", _("Last 7 days"), 7),
        Period("30d", _("Last 30 days"), 30),
    )
}


def period_start(*, days: int, now: datetime | None = None) -> datetime:
    """Midnight in Shanghai `days - 1` days before today: "7 days" is today and the six before it."""
    today = (now or timezone.now()).astimezone(SHANGHAI).date()
    return datetime.combine(today - timedelta(days=days - 1), dtime.min, SHANGHAI)


@dataclass(frozen=True)
class Growth:
    added: int  # follows added (a customer added by two members counts twice: two new relations)
    deleted: int  # follows whose customer deleted the member

    @property
    def net(self) -> int:
        return self.added - self.deleted


@dataclass(frozen=True)
class GrowthRow:
    label: str
    growth: Growth
    member_id: int | None = None


@dataclass(frozen=True)
class DayGrowth:
    day: date
    growth: Growth


@dataclass(frozen=True)
class GrowthOverview:
    summary: dict[str, Growth]  # every period in PERIODS
    by_member: list[GrowthRow]  # the chosen period, busiest first
    by_channel: list[GrowthRow]  # the chosen period, by Follow.state (the channel code's state)
    by_day: list[DayGrowth]  # the trend: one entry per Shanghai day, oldest first, zeros included


NO_CHANNEL = _("(no channel)")

# One scan of the follows added or deleted by their customer inside the widest window, grouped five ways at
# once (GROUPING SETS): by member, by channel, by day added, by day deleted, and overall. Five separate
# queries cost 600 ms at a million follows; this one about 120 ms (bench/bench_customer_list.py).
_GROWTH_SQL = """
SELECT GROUPING(member_id), GROUPING(state), GROUPING(added_day), GROUPING(deleted_day),
       member_id, state, added_day, deleted_day,
       count(*) FILTER (WHERE added_at >= %(period)s),
       count(*) FILTER (WHERE deleted AND status_changed_at >= %(period)s),
       count(*) FILTER (WHERE added_at >= %(today)s),
       count(*) FILTER (WHERE deleted AND status_changed_at >= %(today)s),
       count(*) FILTER (WHERE added_at >= %(week)s),
       count(*) FILTER (WHERE deleted AND status_changed_at >= %(week)s),
       count(*) FILTER (WHERE added_at >= %(month)s),
       count(*) FILTER (WHERE deleted AND status_changed_at >= %(month)s),
       count(*)
FROM (
    SELECT member_id, state, added_at, status_changed_at, status = %(deleted)s AS deleted,
           CASE WHEN added_at >= %(trend)s THEN (added_at AT TIME ZONE %(tz)s)::date END AS added_day,
           CASE WHEN status = %(deleted)s AND status_changed_at >= %(trend)s
                THEN (status_changed_at AT TIME ZONE %(tz)s)::date END AS deleted_day
    FROM customers_follow
    WHERE corp_id = %(corp)s
      AND (added_at >= %(widest)s OR (status = %(deleted)s AND status_changed_at >= %(widest)s))
) f
GROUP BY GROUPING SETS ((member_id), (state), (added_day), (deleted_day), ())
"""


def growth_overview(
    *, corp: Corp, period: str = "7d", trend_days: int = 30, now: datetime | None = None
) -> GrowthOverview:
    """New customers (follows added) and deletions by customers (follows whose status became
    deleted_by_customer), on Shanghai calendar days: per period, and for `period` by member and channel,
    and per day over the last `trend_days` days."""
    starts = {
        "period": period_start(days=PERIODS[period].days, now=now),
        "today": period_start(days=PERIODS["today"].days, now=now),
        "week": period_start(days=PERIODS["7d"].days, now=now),
        "month": period_start(days=PERIODS["30d"].days, now=now),
        "trend": period_start(days=trend_days, now=now),
    }
    params: dict[str, Any] = {
        **starts,
        "widest": min(starts.values()),
        "corp": corp.pk,
        "deleted": FollowStatus.DELETED_BY_CUSTOMER.value,
        "tz": str(SHANGHAI),
    }
    with connection.cursor() as cursor:
        cursor.execute(_GROWTH_SQL, params)
        rows = cursor.fetchall()
    summary = {key: Growth(added=0, deleted=0) for key in PERIODS}
    by_member: dict[int, Growth] = {}
    by_channel: dict[str, Growth] = {}
    added_by_day: dict[date, int] = {}
    deleted_by_day: dict[date, int] = {}
    for g_member, g_state, g_added, g_deleted, member_id, state, added_day, deleted_day, *counts in rows:
        added_p, deleted_p, added_t, deleted_t, added_w, deleted_w, added_m, deleted_m, total = counts
        if g_member and g_state and g_added and g_deleted:  # the () set: every row
            summary = {
                "today": Growth(added=added_t, deleted=deleted_t),
                "7d": Growth(added=added_w, deleted=deleted_w),
                "30d": Growth(added=added_m, deleted=deleted_m),
            }
        elif not g_member:
            if added_p or deleted_p:
                by_member[member_id] = Growth(added=added_p, deleted=deleted_p)
        elif not g_state:
            if added_p or deleted_p:
                by_channel[state or ""] = Growth(added=added_p, deleted=deleted_p)
        elif not g_added:
            if added_day is not None:
                added_by_day[added_day] = total
        elif deleted_day is not None:
            deleted_by_day[deleted_day] = total
    names = {m.pk: str(m) for m in Member.objects.filter(corp=corp, pk__in=list(by_member))}

    def busiest(rows: list[GrowthRow]) -> list[GrowthRow]:
        return sorted(rows, key=lambda r: (-r.growth.added, r.growth.deleted, r.label))

    first = starts["trend"].date()
    days = [first + timedelta(days=i) for i in range(trend_days)]
    return GrowthOverview(
        summary=summary,
        by_member=busiest(
            [GrowthRow(label=names.get(pk, str(pk)), growth=g, member_id=pk) for pk, g in by_member.items()]
        ),
        by_channel=busiest(
            [GrowthRow(label=st or str(NO_CHANNEL), growth=g) for st, g in by_channel.items()]
        ),
        by_day=[
            DayGrowth(day=d, growth=Growth(added=added_by_day.get(d, 0), deleted=deleted_by_day.get(d, 0)))
            for d in days
        ],
    )
