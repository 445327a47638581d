"""Overview growth: new customers, deletions by customers and net, per period, member, channel and day,
on Shanghai calendar days; and the overview page that draws them."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from scrm.customers import services
from scrm.customers.models import FollowStatus, Member
from scrm.dashboard import selectors
from scrm.tenancy.models import Corp
from tests.conftest import World, client_for

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 2026-03-10 00:30 in Shanghai is still 2026-03-09 in UTC: days must be Shanghai's.
NOW = datetime(2026, 3, 10, 0, 30, tzinfo=SHANGHAI)


def add(
    world: World, userid: str, extid: str, at: datetime, state: str = "", corp: Corp | None = None
) -> None:
    services.follow_apply_event(
        corp=corp or world.corp_a,
        userid=userid,
        external_userid=extid,
        event_time=int(at.timestamp()),
        rank=services.RANK_ADD,
        status=FollowStatus.ACTIVE,
        state=state,
        timeline_kind="added",
    )


def delete(
    world: World, userid: str, extid: str, at: datetime, by: str = FollowStatus.DELETED_BY_CUSTOMER
) -> None:
    services.follow_apply_event(
        corp=world.corp_a,
        userid=userid,
        external_userid=extid,
        event_time=int(at.timestamp()),
        rank=services.RANK_DELETE,
        status=by,
        timeline_kind=by,
    )


def seed(world: World, now: datetime) -> None:
    today = now.replace(hour=0, minute=10)
    add(world, "li", "wm1", today, state="spring")  # today
    add(world, "han", "wm1", today + timedelta(minutes=5))  # today, same person, second member
    add(world, "li", "wm2", today - timedelta(minutes=20), state="spring")  # yesterday (23:50)
    add(world, "han", "wm3", now - timedelta(days=5), state="autumn")  # within 7 days
    add(world, "li", "wm4", now - timedelta(days=20))  # within 30 days
    add(world, "li", "wm5", now - timedelta(days=40))  # outside every period
    delete(world, "li", "wm2", today + timedelta(minutes=1))  # deleted by the customer today
    delete(world, "li", "wm5", now - timedelta(days=3))  # deleted by the customer within 7 days
    delete(world, "han", "wm3", now - timedelta(days=2), by=FollowStatus.DELETED_BY_MEMBER)  # not counted
    add(world, "x", "wmB", today, corp=world.corp_b)  # another corp


@pytest.mark.django_db
def test_growth_summary_per_period(world: World) -> None:
    seed(world, NOW)
    summary = selectors.growth_overview(corp=world.corp_a, now=NOW).summary
    assert (summary["today"].added, summary["today"].deleted, summary["today"].net) == (2, 1, 1)
    assert (summary["7d"].added, summary["7d"].deleted, summary["7d"].net) == (4, 2, 2)
    assert (summary["30d"].added, summary["30d"].deleted, summary["30d"].net) == (5, 2, 3)


def breakdown(rows: list[selectors.GrowthRow]) -> dict[str, tuple[int, int]]:
    return {r.label: (r.growth.added, r.growth.deleted) for r in rows}


@pytest.mark.django_db
def test_growth_by_member_and_channel(world: World) -> None:
    seed(world, NOW)
    week = selectors.growth_overview(corp=world.corp_a, period="7d", now=NOW)
    assert breakdown(week.by_member) == {"li": (2, 2), "han": (2, 0)}
    assert [r.label for r in week.by_member] == ["han", "li"]  # most added first, then fewest deleted
    # wm2 came through "spring" and deleted the member today; wm5 had no channel
    assert breakdown(week.by_channel) == {
        "spring": (2, 1),
        "autumn": (1, 0),
        str(selectors.NO_CHANNEL): (1, 1),
    }
    today = selectors.growth_overview(corp=world.corp_a, period="today", now=NOW)
    assert breakdown(today.by_member) == {"li": (1, 1), "han": (1, 0)}
    month = selectors.growth_overview(corp=world.corp_a, period="30d", now=NOW)
    assert breakdown(month.by_member) == {"li": (3, 2), "han": (2, 0)}
    assert {r.member_id for r in month.by_member} == set(
        Member.objects.filter(corp=world.corp_a, userid__in=["li", "han"]).values_list("pk", flat=True)
    )


@pytest.mark.django_db
def test_growth_by_day_uses_shanghai_days(world: World) -> None:
    seed(world, NOW)
    days = selectors.growth_overview(corp=world.corp_a, trend_days=30, now=NOW).by_day
    assert len(days) == 30 and days[-1].day == NOW.date() and days[0].day == NOW.date() - timedelta(days=29)
    by_day = {d.day: (d.growth.added, d.growth.deleted) for d in days}
    assert by_day[NOW.date()] == (2, 1)
    assert by_day[NOW.date() - timedelta(days=1)] == (1, 0)  # 23:50 yesterday, Shanghai time
    assert by_day[NOW.date() - timedelta(days=3)] == (0, 1)  # wm5 deleted the member
    assert sum(d.growth.added for d in days) == 5 and sum(d.growth.deleted for d in days) == 2
    short = selectors.growth_overview(corp=world.corp_a, trend_days=7, now=NOW).by_day
    assert len(short) == 7 and sum(d.growth.added for d in short) == 4


def chart_data(html: str, element_id: str) -> dict[str, Any]:
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html)
    assert match, element_id
    data: dict[str, Any] = json.loads(match.group(1))
    return data


@pytest.mark.django_db
def test_overview_page_shows_stats_and_charts(world: World) -> None:
    now = timezone.now().astimezone(SHANGHAI)
    add(world, "li", "wm1", now - timedelta(minutes=1), state="spring")
    add(world, "han", "wm2", now - timedelta(days=3), state="spring")
    delete(world, "han", "wm2", now - timedelta(minutes=2))
    client = client_for(world.victor)
    html = client.get("/").content.decode()
    # the existing cards stay
    assert "data-lane=" in html
    cells = dict(re.findall(r'data-period="today" data-metric="(\w+)"[^>]*>([-+]?\d+)<', html))
    assert cells == {"added": "1", "deleted": "1", "net": "0"}
    trend = chart_data(html, "trend-chart")
    assert len(trend["labels"]) == 30 and sum(trend["series"][0]["data"]) == 2
    members = chart_data(html, "member-chart")
    assert set(members["labels"]) == {"li", "han"}
    assert "/static/chart.js/chart.umd.min.js" in html and "/static/js/charts.js" in html
    # another period, and an unknown one falls back to 7 days
    assert client.get("/?period=30d").status_code == 200
    assert client.get("/?period=forever").context["period"].key == "7d"


@pytest.mark.django_db
def test_overview_is_corp_scoped(world: World) -> None:
    add(world, "li", "wm1", timezone.now() - timedelta(minutes=1), state="spring-a")
    html = client_for(world.charlie).get("/").content.decode()
    cells = dict(re.findall(r'data-period="30d" data-metric="(\w+)"[^>]*>([-+]?\d+)<', html))
    assert cells == {"added": "0", "deleted": "0", "net": "0"}
    assert "spring-a" not in html


def test_chart_js_is_served_from_node_modules() -> None:
    from django.contrib.staticfiles import finders

    found = finders.find("chart.js/chart.umd.min.js")
    assert found and "node_modules" in str(found), "run `npm ci` (scripts/test does it)"
