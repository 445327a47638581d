"""Dashboard pages for customer groups: the list, and one group with its members and joins / leaves."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from scrm.groups import selectors
from scrm.groups.models import CustomerGroup
from scrm.tenancy.permissions import corp_view

PAGE_SIZE = 25
CHART_DAYS = 30
_JOINS, _LEAVES = _("Joined"), _("Left")
_MEMBERS, _CHANGED, _WITH_MSG = (
    _("Members (WeCom)"),
    _("Groups with joins or leaves"),
    _("Groups with messages"),
)


@require_safe
@corp_view()
def group_list(request: HttpRequest) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    status = request.GET.get("status", "all")
    if status not in selectors.STATUSES:
        status = "all"
    q = request.GET.get("q", "").strip()[:100]
    groups = selectors.group_list(corp=corp, status=status, q=q)
    paginator: Paginator[CustomerGroup] = Paginator(groups, PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    owners = selectors.member_names(corp=corp, userids={g.owner_userid for g in page.object_list})
    return render(
        request,
        "groups/list.html",
        {
            "page": page,
            "rows": [(g, owners.get(g.owner_userid, g.owner_userid)) for g in page.object_list],
            "status": status,
            "q": q,
            "statuses": CustomerGroup.Status.choices,
        },
    )


@require_safe
@corp_view()
def group_detail(request: HttpRequest, group_pk: int) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    try:
        group = selectors.group_get(corp=corp, pk=group_pk)
    except CustomerGroup.DoesNotExist as exc:
        raise Http404 from exc
    stats = selectors.group_daily_stats(corp=corp, group=group, days=CHART_DAYS)
    owner = selectors.member_names(corp=corp, userids={group.owner_userid}).get(group.owner_userid, "")
    from scrm.groupcodes.selectors import owner_notices

    chart = {
        "labels": [s.day.strftime("%m-%d") for s in stats],
        "series": [
            {"label": str(_JOINS), "data": [s.joins for s in stats], "color": "#1f7a4d"},
            {"label": str(_LEAVES), "data": [-s.leaves for s in stats], "color": "#c0362c"},
        ],
    }
    return render(
        request,
        "groups/detail.html",
        {
            "group": group,
            "owner": owner or group.owner_userid,
            "members": selectors.group_members(corp=corp, group=group),
            "stats": [s for s in reversed(stats) if s.joins or s.leaves],
            "chart": chart,
            "chart_days": CHART_DAYS,
            "joins_total": sum(s.joins for s in stats),
            "leaves_total": sum(s.leaves for s in stats),
            "owner_notices": owner_notices(corp=corp, owner_userid=group.owner_userid, limit=5)
            if group.owner_userid
            else [],
        },
    )


@require_safe
@corp_view()
def group_stats(request: HttpRequest) -> HttpResponse:
    """Members over time, joins and leaves, active groups: from events and WeCom's daily figures."""
    corp = request.corp  # type: ignore[attr-defined]
    days = selectors.corp_group_stats(corp=corp, days=CHART_DAYS)
    labels = [d.day.strftime("%m-%d") for d in days]
    charts = {
        "members": {
            "labels": labels,
            "series": [
                {
                    "label": str(_MEMBERS),
                    "data": [d.wecom.member_total if d.wecom else None for d in days],
                    "color": "#2563eb",
                }
            ],
        },
        "flow": {
            "labels": labels,
            "series": [
                {"label": str(_JOINS), "data": [d.joins for d in days], "color": "#1f7a4d"},
                {"label": str(_LEAVES), "data": [-d.leaves for d in days], "color": "#c0362c"},
            ],
        },
        "active": {
            "labels": labels,
            "series": [
                {"label": str(_CHANGED), "data": [d.active_groups for d in days], "color": "#7c3aed"},
                {
                    "label": str(_WITH_MSG),
                    "data": [d.wecom.chat_has_msg if d.wecom else None for d in days],
                    "color": "#f59e0b",
                },
            ],
        },
    }
    return render(
        request,
        "groups/stats.html",
        {
            "days": [d for d in reversed(days) if d.joins or d.leaves or d.wecom],
            "charts": charts,
            "chart_days": CHART_DAYS,
            "groups_active": CustomerGroup.objects.filter(
                corp=corp, status=CustomerGroup.Status.ACTIVE
            ).count(),
        },
    )
