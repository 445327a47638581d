"""Reads for customer groups: the list, one group with its members, and its joins / leaves per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from scrm.customers.models import Customer, Member
from scrm.groups.models import CorpGroupDayStat, CustomerGroup, GroupDailyStat, GroupMember
from scrm.tenancy.models import Corp

SHANGHAI = ZoneInfo("Asia/Shanghai")
STATUSES = {"all", *CustomerGroup.Status.values}


def group_list(*, corp: Corp, status: str = "all", q: str = "") -> QuerySet[CustomerGroup]:
    qs = CustomerGroup.objects.filter(corp=corp)
    if status in CustomerGroup.Status.values:
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(chat_id=q) | Q(owner_userid=q))
    return qs.order_by("-member_count", "-pk")


def member_names(*, corp: Corp, userids: set[str]) -> dict[str, str]:
    """userid → display name for the members among `userids` (owners, invitors)."""
    if not userids:
        return {}
    return {
        userid: name or userid
        for userid, name in Member.objects.filter(corp=corp, userid__in=userids).values_list("userid", "name")
    }


def group_get(*, corp: Corp, pk: int) -> CustomerGroup:
    """The corp's group `pk`; raises CustomerGroup.DoesNotExist for another corp's (shown as 404)."""
    return CustomerGroup.objects.get(corp=corp, pk=pk)


@dataclass(frozen=True)
class GroupMemberRow:
    membership: GroupMember
    customer: Customer | None  # our customer record, for a customer we know
    invitor: str


def group_members(*, corp: Corp, group: CustomerGroup) -> list[GroupMemberRow]:
    """Who is in the group (then who left), with links to the customers we know."""
    rows = list(GroupMember.objects.filter(corp=corp, group=group).order_by("-is_active", "-join_time", "pk"))
    external = [r.userid for r in rows if r.type == GroupMember.Type.CUSTOMER]
    customers = {
        c.external_userid: c for c in Customer.objects.filter(corp=corp, external_userid__in=external)
    }
    names = member_names(corp=corp, userids={r.invitor_userid for r in rows if r.invitor_userid})
    return [
        GroupMemberRow(
            membership=r,
            customer=customers.get(r.userid),
            invitor=names.get(r.invitor_userid, r.invitor_userid),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class DayStat:
    day: date
    joins: int
    leaves: int
    size_at_end: int | None  # None: no change that day, the size carried over


def group_daily_stats(*, corp: Corp, group: CustomerGroup, days: int = 30) -> list[DayStat]:
    """The last `days` days (Asia/Shanghai), oldest first, with zeros for days without a change."""
    today = timezone.now().astimezone(SHANGHAI).date()
    start = today - timedelta(days=days - 1)
    stats = {
        s.day: s
        for s in GroupDailyStat.objects.filter(corp=corp, group=group, day__gte=start, day__lte=today)
    }
    out: list[DayStat] = []
    for i in range(days):
        day = start + timedelta(days=i)
        s = stats.get(day)
        out.append(
            DayStat(day=day, joins=s.joins, leaves=s.leaves, size_at_end=s.size_at_end)
            if s
            else DayStat(day=day, joins=0, leaves=0, size_at_end=None)
        )
    return out


def groups_of_customer(*, corp: Corp, customer: Customer) -> QuerySet[GroupMember]:
    """The customer's group memberships (current and past), newest first."""
    return (
        GroupMember.objects.filter(corp=corp, userid=customer.external_userid, type=GroupMember.Type.CUSTOMER)
        .select_related("group")
        .order_by("-is_active", "-join_time", "pk")
    )


@dataclass(frozen=True)
class CorpDay:
    day: date
    joins: int  # from change_external_chat events we applied
    leaves: int
    active_groups: int  # groups with a join or leave that day (events)
    wecom: CorpGroupDayStat | None  # WeCom's own figures (groupchat/statistic_group_by_day), if pulled


def corp_group_stats(*, corp: Corp, days: int = 30) -> list[CorpDay]:
    """The corp's groups per day (Asia/Shanghai), oldest first: joins, leaves and groups with changes from
    the events, next to WeCom's daily totals (members, groups, groups with messages)."""
    today = timezone.now().astimezone(SHANGHAI).date()
    start = today - timedelta(days=days - 1)
    events = {
        r["day"]: r
        for r in GroupDailyStat.objects.filter(corp=corp, day__gte=start)
        .values("day")
        .annotate(j=Sum("joins"), lv=Sum("leaves"), g=Count("group_id", distinct=True))
    }
    wecom = {s.day: s for s in CorpGroupDayStat.objects.filter(corp=corp, day__gte=start)}
    out = []
    for i in range(days):
        day = start + timedelta(days=i)
        e = events.get(day)
        out.append(
            CorpDay(
                day=day,
                joins=int(e["j"]) if e else 0,
                leaves=int(e["lv"]) if e else 0,
                active_groups=int(e["g"]) if e else 0,
                wecom=wecom.get(day),
            )
        )
    return out
