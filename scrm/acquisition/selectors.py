"""Reads for channel codes and welcome scripts: lists, one code with its statistics, previews."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from scrm.acquisition import caps
from scrm.acquisition.cache import script_content_load
from scrm.acquisition.content import Rendered, render
from scrm.acquisition.models import (
    ChannelCode,
    ChannelMember,
    WelcomeAttachment,
    WelcomeAttempt,
    WelcomeScript,
)
from scrm.customers.models import Member, Tag
from scrm.tenancy.models import Corp


def code_list(*, corp: Corp) -> QuerySet[ChannelCode]:
    return (
        ChannelCode.objects.filter(corp=corp, status=ChannelCode.Status.ACTIVE)
        .select_related("script")
        .annotate(add_count=Count("adds", distinct=True))
        .defer("qr_png")
        .order_by("-created_at")
    )


def code_alerts(*, corp: Corp) -> QuerySet[ChannelCode]:
    return (
        ChannelCode.objects.filter(corp=corp, status=ChannelCode.Status.ACTIVE)
        .exclude(alert="")
        .defer("qr_png")
    )


def code_get(*, corp: Corp, pk: int) -> ChannelCode:
    return (
        ChannelCode.objects.select_related("script")
        .defer("qr_png")
        .get(corp=corp, pk=pk, status=ChannelCode.Status.ACTIVE)
    )


def code_seats(*, corp: Corp, code: ChannelCode) -> list[ChannelMember]:
    return list(ChannelMember.objects.filter(corp=corp, code=code).select_related("member"))


def code_usage(*, corp: Corp, code: ChannelCode, seats: Sequence[ChannelMember]) -> dict[str, caps.Usage]:
    return caps.caps_usage(code_id=code.pk, userids=[s.member.userid for s in seats])


def member_choices(*, corp: Corp) -> QuerySet[Member]:
    return Member.objects.filter(corp=corp, status=Member.Status.ACTIVE).order_by("name", "userid")


def tag_choices(*, corp: Corp) -> QuerySet[Tag]:
    return (
        Tag.objects.filter(corp=corp, deleted=False).select_related("group").order_by("group__name", "name")
    )


def script_list(*, corp: Corp) -> QuerySet[WelcomeScript]:
    return WelcomeScript.objects.filter(corp=corp).annotate(
        code_count=Count("codes", filter=Q(codes__status=ChannelCode.Status.ACTIVE), distinct=True),
        member_count=Count("member_links", distinct=True),
    )


def script_get(*, corp: Corp, pk: int) -> WelcomeScript:
    return WelcomeScript.objects.get(corp=corp, pk=pk)


def script_attachments(*, corp: Corp, script: WelcomeScript) -> list[WelcomeAttachment]:
    return list(
        WelcomeAttachment.objects.filter(corp=corp, script=script)
        .select_related("media", "variant")
        .defer("media__content")
    )


def script_member_ids(*, corp: Corp, script: WelcomeScript) -> list[int]:
    return list(script.member_links.filter(corp=corp).values_list("member_id", flat=True))


def script_preview(
    *,
    corp: Corp,
    script: WelcomeScript,
    at: datetime | None = None,
    member_name: str = "",
    channel_name: str = "",
) -> Rendered | None:
    """The welcome as a customer would receive it at `at`, with sample values for the variables."""
    content = script_content_load(corp_pk=corp.pk, script_id=script.pk)
    if content is None:
        return None
    at = at or timezone.now()
    return render(
        content,
        now_local=at.astimezone(caps.SHANGHAI),
        now_epoch=at.timestamp(),
        values={"customer_nickname": "张三", "member_name": member_name, "channel_name": channel_name},
    )


# -- statistics ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayStats:
    day: date
    adds: int = 0
    deleted_by_customer: int = 0
    retained_7d: float | None = None  # share of that day's adds still friends 7 days later
    retained_30d: float | None = None
    welcome: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MemberShare:
    userid: str
    name: str
    adds: int
    over_cap: int


@dataclass(frozen=True)
class CodeStats:
    days: list[DayStats]
    members: list[MemberShare]
    total_adds: int
    total_deleted: int
    welcome_totals: dict[str, int]
    latency_p50: int | None
    latency_p95: int | None
    over_cap: int


# Adds per Beijing day, deletions by the customer on the day they happened, and whether each add was still
# a friendship 7 and 30 days on (the follow is active, or changed status only later).
_DAILY = """
WITH a AS (
  SELECT (ca.added_at AT TIME ZONE 'Asia/Shanghai')::date AS day, ca.added_at, f.status, f.status_changed_at
  FROM acquisition_channeladd ca
  LEFT JOIN customers_follow f ON f.customer_id = ca.customer_id AND f.member_id = ca.member_id
  WHERE ca.corp_id = %(corp)s AND ca.code_id = %(code)s AND ca.added_at >= %(since)s - interval '30 days'
)
SELECT day, count(*),
  count(*) FILTER (WHERE added_at <= %(now)s - interval '7 days'),
  count(*) FILTER (WHERE added_at <= %(now)s - interval '7 days' AND (status = 'active'
      OR status_changed_at > added_at + interval '7 days')),
  count(*) FILTER (WHERE added_at <= %(now)s - interval '30 days'),
  count(*) FILTER (WHERE added_at <= %(now)s - interval '30 days' AND (status = 'active'
      OR status_changed_at > added_at + interval '30 days'))
FROM a GROUP BY day
"""
_DELETED = """
SELECT (f.status_changed_at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(DISTINCT f.id)
FROM acquisition_channeladd ca
JOIN customers_follow f ON f.customer_id = ca.customer_id AND f.member_id = ca.member_id
WHERE ca.corp_id = %(corp)s AND ca.code_id = %(code)s AND f.status = 'deleted_by_customer'
  AND f.status_changed_at >= %(since)s
GROUP BY 1
"""
_WELCOME = """
SELECT (created_at AT TIME ZONE 'Asia/Shanghai')::date, status, count(*)
FROM acquisition_welcomeattempt WHERE corp_id = %(corp)s AND code_id = %(code)s AND created_at >= %(since)s
GROUP BY 1, 2
"""
_LATENCY = """
SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms),
       percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms)
FROM acquisition_welcomeattempt
WHERE corp_id = %(corp)s AND code_id = %(code)s AND created_at >= %(since)s AND status = 'sent'
"""
_MEMBERS = """
SELECT m.userid, m.name, count(*), count(*) FILTER (WHERE ca.over_cap)
FROM acquisition_channeladd ca JOIN customers_member m ON m.id = ca.member_id
WHERE ca.corp_id = %(corp)s AND ca.code_id = %(code)s AND ca.added_at >= %(since)s
GROUP BY m.userid, m.name ORDER BY 3 DESC
"""


def code_stats(*, corp: Corp, code: ChannelCode, days: int = 30, now: datetime | None = None) -> CodeStats:
    now = now or timezone.now()
    today = now.astimezone(caps.SHANGHAI).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=caps.SHANGHAI)
    params: dict[str, Any] = {"corp": corp.pk, "code": code.pk, "since": since, "now": now}
    with connection.cursor() as cursor:
        cursor.execute(_DAILY, params)
        daily = {row[0]: row[1:] for row in cursor.fetchall()}
        cursor.execute(_DELETED, params)
        deleted = dict(cursor.fetchall())
        cursor.execute(_WELCOME, params)
        welcome: dict[date, dict[str, int]] = {}
        for day, status, n in cursor.fetchall():
            welcome.setdefault(day, {})[status] = n
        cursor.execute(_LATENCY, params)
        p50, p95 = cursor.fetchone() or (None, None)
        cursor.execute(_MEMBERS, params)
        members = [MemberShare(u, n, a, o) for u, n, a, o in cursor.fetchall()]
    out: list[DayStats] = []
    for i in range(days):
        day = first + timedelta(days=i)
        adds, old7, kept7, old30, kept30 = daily.get(day, (0, 0, 0, 0, 0))
        out.append(
            DayStats(
                day=day,
                adds=adds,
                deleted_by_customer=deleted.get(day, 0),
                retained_7d=round(kept7 / old7, 3) if old7 else None,
                retained_30d=round(kept30 / old30, 3) if old30 else None,
                welcome=welcome.get(day, {}),
            )
        )
    totals: dict[str, int] = {}
    for d in out:
        for status, n in d.welcome.items():
            totals[status] = totals.get(status, 0) + n
    return CodeStats(
        days=out,
        members=members,
        total_adds=sum(d.adds for d in out),
        total_deleted=sum(d.deleted_by_customer for d in out),
        welcome_totals=totals,
        latency_p50=p50,
        latency_p95=p95,
        over_cap=sum(m.over_cap for m in members),
    )


def code_attempts(*, corp: Corp, code: ChannelCode, limit: int = 20) -> list[WelcomeAttempt]:
    return list(WelcomeAttempt.objects.filter(corp=corp, code=code).order_by("-created_at")[:limit])
