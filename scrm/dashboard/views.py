from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from scrm.dashboard.selectors import (
    PERIODS,
    GrowthRow,
    growth_overview,
    lane_status_list,
)
from scrm.tenancy.permissions import corp_view

TREND_DAYS = 30
TOP_N = 15  # the charts show the top members / channels; the tables below them show all
ADDED_COLOR, DELETED_COLOR, NET_COLOR = "#1f7a4d", "#c0362c", "#2563eb"


def _breakdown_chart(rows: list[GrowthRow]) -> dict[str, Any]:
    top = rows[:TOP_N]
    return {
        "labels": [r.label for r in top],
        "series": [
            {"label": _("New"), "data": [r.growth.added for r in top], "color": ADDED_COLOR},
            {
                "label": _("Deleted by customers"),
                "data": [r.growth.deleted for r in top],
                "color": DELETED_COLOR,
            },
        ],
    }


@corp_view()
def home(request: HttpRequest) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    period = request.GET.get("period", "7d")
    if period not in PERIODS:
        period = "7d"
    growth = growth_overview(corp=corp, period=period, trend_days=TREND_DAYS)
    days = growth.by_day
    trend = {
        "labels": [d.day.strftime("%m-%d") for d in days],
        "series": [
            {"label": _("New"), "data": [d.growth.added for d in days], "color": ADDED_COLOR},
            {
                "label": _("Deleted by customers"),
                "data": [d.growth.deleted for d in days],
                "color": DELETED_COLOR,
            },
            {"label": _("Net"), "data": [d.growth.net for d in days], "color": NET_COLOR, "type": "line"},
        ],
    }
    return render(
        request,
        "dashboard/home.html",
        {
            "lanes": lane_status_list(),
            "periods": list(PERIODS.values()),
            "period": PERIODS[period],
            "summary": [(PERIODS[key], g) for key, g in growth.summary.items()],
            "by_member": growth.by_member,
            "by_channel": growth.by_channel,
            "member_chart": _breakdown_chart(growth.by_member),
            "channel_chart": _breakdown_chart(growth.by_channel),
            "trend_chart": trend,
            "trend_days": TREND_DAYS,
        },
    )
