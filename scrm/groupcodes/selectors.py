"""Reads for group codes: lists, one code with its pool and statistics, duplicates, notices, templates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from scrm.customers.models import Customer
from scrm.groupcodes.models import CodeDayStat, GroupCode, GroupWelcomeTemplate, Notice, PoolGroup, Rotation
from scrm.groups.models import CustomerGroup, GroupMember
from scrm.tenancy.models import Corp

SHANGHAI = ZoneInfo("Asia/Shanghai")


def code_list(*, corp: Corp) -> QuerySet[GroupCode]:
    return (
        GroupCode.objects.filter(corp=corp, status=GroupCode.Status.ACTIVE)
        .defer("qr_png")
        .annotate(pool_size=Count("pool", distinct=True))
        .order_by("-pk")
    )


def code_get(*, corp: Corp, pk: int) -> GroupCode:
    """The corp's code `pk`; raises GroupCode.DoesNotExist for another corp's (shown as 404)."""
    return GroupCode.objects.defer("qr_png").get(corp=corp, pk=pk, status=GroupCode.Status.ACTIVE)


def landing_get(*, slug: str) -> GroupCode:
    return GroupCode.objects.select_related("corp").get(
        slug=slug, mode=GroupCode.Mode.LANDING, status=GroupCode.Status.ACTIVE
    )


def code_pool(*, corp: Corp, code: GroupCode) -> list[PoolGroup]:
    return list(
        PoolGroup.objects.filter(corp=corp, code=code)
        .exclude(status=PoolGroup.Status.REMOVED)
        .select_related("group")
        .defer("qr_image")
        .order_by("order", "pk")
    )


def pool_entry_get(*, corp: Corp, code: GroupCode, pk: int) -> PoolGroup:
    return PoolGroup.objects.select_related("group").get(corp=corp, code=code, pk=pk)


@dataclass(frozen=True)
class CodeDay:
    day: date
    joins: int
    leaves: int
    size: int | None  # members of the pool's groups at the end of the day; None: no change that day


@dataclass(frozen=True)
class GroupTotals:
    entry: PoolGroup
    joins: int
    leaves: int
    attributed: int  # members who joined by this code's join way (groupchat/get's `state`)


@dataclass(frozen=True)
class CodeStats:
    days: list[CodeDay]
    groups: list[GroupTotals]
    joins: int
    leaves: int
    members_now: int


def code_stats(*, corp: Corp, code: GroupCode, days: int = 30) -> CodeStats:
    """Joins and leaves per day (Asia/Shanghai) over the pool, oldest first, and per group."""
    today = timezone.now().astimezone(SHANGHAI).date()
    start = today - timedelta(days=days - 1)
    rows = CodeDayStat.objects.filter(corp=corp, code=code, day__gte=start)
    per_day = {
        r["day"]: r
        for r in rows.values("day").annotate(j=Sum("joins"), lv=Sum("leaves"), s=Sum("size_at_end"))
    }
    series = [
        CodeDay(
            day=d,
            joins=int(per_day[d]["j"]) if d in per_day else 0,
            leaves=int(per_day[d]["lv"]) if d in per_day else 0,
            size=int(per_day[d]["s"]) if d in per_day else None,
        )
        for d in (start + timedelta(days=i) for i in range(days))
    ]
    per_group: dict[int, tuple[int, int]] = {
        r["group_id"]: (int(r["j"] or 0), int(r["lv"] or 0))
        for r in rows.values("group_id").annotate(j=Sum("joins"), lv=Sum("leaves"))
    }
    pool = code_pool(corp=corp, code=code)
    attributed: dict[int, int] = {}
    if code.state:
        attributed = dict(
            GroupMember.objects.filter(corp=corp, state=code.state, group__in=[e.group for e in pool])
            .values("group_id")
            .annotate(n=Count("pk"))
            .values_list("group_id", "n")
        )
    groups = [
        GroupTotals(
            entry=e,
            joins=per_group.get(e.group_id, (0, 0))[0],
            leaves=per_group.get(e.group_id, (0, 0))[1],
            attributed=attributed.get(e.group_id, 0),
        )
        for e in pool
    ]
    return CodeStats(
        days=series,
        groups=groups,
        joins=sum(d.joins for d in series),
        leaves=sum(d.leaves for d in series),
        members_now=sum(e.group.member_count for e in pool if e.group.status == CustomerGroup.Status.ACTIVE),
    )


def code_rotations(*, corp: Corp, code: GroupCode, limit: int = 20) -> list[Rotation]:
    return list(Rotation.objects.filter(corp=corp, code=code).order_by("-at", "-pk")[:limit])


def notices(*, corp: Corp, code: GroupCode | None = None, limit: int = 20) -> list[Notice]:
    """Notices for admins (not those to group owners), newest first."""
    qs = Notice.objects.filter(corp=corp, owner_userid="")
    if code is not None:
        qs = qs.filter(code=code)
    return list(qs.select_related("code").order_by("-created_at", "-pk")[:limit])


def owner_notices(*, corp: Corp, owner_userid: str, limit: int = 20) -> list[Notice]:
    return list(
        Notice.objects.filter(corp=corp, owner_userid=owner_userid).order_by("-created_at", "-pk")[:limit]
    )


@dataclass(frozen=True)
class Duplicate:
    external_userid: str
    name: str
    customer: Customer | None
    groups: list[CustomerGroup]


def pool_duplicates(*, corp: Corp, code: GroupCode) -> list[Duplicate]:
    """Customers present in more than one group of the code's pool (any status but removed)."""
    group_ids = list(
        PoolGroup.objects.filter(corp=corp, code=code)
        .exclude(status=PoolGroup.Status.REMOVED)
        .values_list("group_id", flat=True)
    )
    members = GroupMember.objects.filter(
        corp=corp, group_id__in=group_ids, type=GroupMember.Type.CUSTOMER, is_active=True
    )
    dup_ids = list(
        members.values("userid")
        .annotate(n=Count("group_id", distinct=True))
        .filter(n__gt=1)
        .values_list("userid", flat=True)[:1000]
    )
    if not dup_ids:
        return []
    groups = {g.pk: g for g in CustomerGroup.objects.filter(corp=corp, pk__in=group_ids)}
    customers = {
        c.external_userid: c for c in Customer.objects.filter(corp=corp, external_userid__in=dup_ids)
    }
    found: dict[str, Duplicate] = {}
    for m in members.filter(userid__in=dup_ids).order_by("userid", "group_id"):
        dup = found.get(m.userid)
        if dup is None:
            customer = customers.get(m.userid)
            dup = found[m.userid] = Duplicate(
                m.userid, (customer.name if customer else "") or m.name or m.userid, customer, []
            )
        dup.groups.append(groups[m.group_id])
    return list(found.values())


def template_list(*, corp: Corp) -> QuerySet[GroupWelcomeTemplate]:
    return GroupWelcomeTemplate.objects.filter(corp=corp).order_by("-pk")


def template_get(*, corp: Corp, pk: int) -> GroupWelcomeTemplate:
    return GroupWelcomeTemplate.objects.get(corp=corp, pk=pk)


def groups_for_pool(*, corp: Corp) -> QuerySet[CustomerGroup]:
    """Active groups an admin may put behind a code, fullest last."""
    return CustomerGroup.objects.filter(corp=corp, status=CustomerGroup.Status.ACTIVE).order_by(
        "member_count", "name", "pk"
    )
