"""Writes for customer groups and their members, from callbacks and from groupchat/get."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from scrm.customers.models import Member
from scrm.groups.models import CorpGroupDayStat, CustomerGroup, GroupDailyStat, GroupMember
from scrm.tenancy.models import Corp

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _ts(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds else None


def group_get_or_create(*, corp: Corp, chat_id: str) -> CustomerGroup:
    group, _ = CustomerGroup.objects.get_or_create(corp=corp, chat_id=chat_id)
    return group


@dataclass(frozen=True)
class MemberChange:
    """What applying add_member / del_member did: `applied` is False for a replay (nothing counted)."""

    refetch: bool
    applied: bool
    group: CustomerGroup
    joins: int = 0
    leaves: int = 0


def _count_day(*, group: CustomerGroup, at: datetime, joins: int = 0, leaves: int = 0) -> None:
    day = at.astimezone(SHANGHAI).date()
    stat, _ = GroupDailyStat.objects.get_or_create(corp=group.corp, group=group, day=day)
    GroupDailyStat.objects.filter(pk=stat.pk).update(
        joins=F("joins") + joins, leaves=F("leaves") + leaves, size_at_end=group.member_count
    )


@transaction.atomic
def group_apply_member_change(
    *,
    corp: Corp,
    chat_id: str,
    event_time: int,
    detail: str,
    changed: Sequence[str] = (),
    change_count: int | None = None,
    join_scene: int | None = None,
    quit_scene: int | None = None,
    last_mem_ver: str | None = None,
    cur_mem_ver: str | None = None,
) -> MemberChange:
    """Applies add_member / del_member; `refetch`: the group must be re-fetched from WeCom.

    MemChangeList is a newer field and may be absent; then only the count moves and a re-fetch fills in who.
    """
    group = CustomerGroup.objects.select_for_update().get_or_create(corp=corp, chat_id=chat_id)[0]
    if cur_mem_ver and cur_mem_ver == group.member_version:
        return MemberChange(refetch=False, applied=False, group=group)  # a replay, or a re-fetch came first
    # A version other than the one we hold means we missed a change (or never fetched the group).
    needs_fetch = not group.member_version or (
        last_mem_ver is not None and last_mem_ver != group.member_version
    )
    at = _ts(event_time) or timezone.now()
    count = len(changed) or (change_count or 0)
    if detail == "add_member":
        members = set(
            Member.objects.filter(corp=corp, userid__in=list(changed)).values_list("userid", flat=True)
        )
        for userid in changed:
            GroupMember.objects.update_or_create(
                group=group,
                userid=userid,
                defaults={
                    "corp": corp,
                    "type": GroupMember.Type.MEMBER if userid in members else GroupMember.Type.CUSTOMER,
                    "join_time": at,
                    "join_scene": join_scene,
                    "is_active": True,
                    "left_at": None,
                },
            )
        group.member_count += count
        joins, leaves = count, 0
    else:
        GroupMember.objects.filter(group=group, userid__in=list(changed)).update(
            is_active=False, left_at=at, quit_scene=quit_scene
        )
        group.member_count = max(0, group.member_count - count)
        joins, leaves = 0, count
    if cur_mem_ver:
        group.member_version = cur_mem_ver
    group.last_event_time = max(group.last_event_time, event_time)
    group.save(update_fields=["member_count", "member_version", "last_event_time", "updated_at"])
    _count_day(group=group, at=at, joins=joins, leaves=leaves)
    return MemberChange(
        refetch=needs_fetch or not changed, applied=True, group=group, joins=joins, leaves=leaves
    )


@transaction.atomic
def group_apply_details(*, corp: Corp, chat: Mapping[str, Any], sync_run: int | None = None) -> CustomerGroup:
    """Stores groupchat/get's answer: the group and exactly its current members."""
    # Reference: Doc 92122 (group_chat: chat_id, name, owner, create_time, notice, member_list[],
    # admin_list[],
    # member_version)
    group = CustomerGroup.objects.select_for_update().get_or_create(corp=corp, chat_id=chat["chat_id"])[0]
    members = chat.get("member_list") or []
    group.name = (chat.get("name") or "")[:100]
    group.owner_userid = chat.get("owner") or ""
    group.notice = chat.get("notice") or ""
    group.admin_userids = [a.get("userid") for a in chat.get("admin_list") or [] if a.get("userid")]
    group.created_at_wecom = _ts(int(chat.get("create_time") or 0))
    group.member_version = chat.get("member_version") or group.member_version
    group.member_count = len(members)
    group.status = CustomerGroup.Status.ACTIVE
    group.fetched_at = timezone.now()
    if sync_run is not None:
        group.last_seen_sync = sync_run
    group.save()
    present: list[str] = []
    existing = {m.userid: m for m in GroupMember.objects.filter(group=group)}
    create: list[GroupMember] = []
    for m in members:
        userid = m["userid"]
        present.append(userid)
        values = {
            "type": int(m.get("type") or 2),
            "join_time": _ts(int(m.get("join_time") or 0)),
            "join_scene": m.get("join_scene"),
            "invitor_userid": (m.get("invitor") or {}).get("userid", ""),
            "state": (m.get("state") or "")[:64],
            "group_nickname": (m.get("group_nickname") or "")[:100],
            "name": (m.get("name") or "")[:100],
            "unionid": (m.get("unionid") or "")[:64],
            "is_active": True,
            "left_at": None,
        }
        row = existing.get(userid)
        if row is None:
            create.append(GroupMember(corp=corp, group=group, userid=userid, **values))
        else:
            for k, v in values.items():
                setattr(row, k, v)
            row.save()
    GroupMember.objects.bulk_create(create, ignore_conflicts=True)
    GroupMember.objects.filter(group=group, is_active=True).exclude(userid__in=present).update(
        is_active=False, left_at=timezone.now()
    )
    return group


def group_mark_dismissed(*, corp: Corp, chat_id: str, event_time: int) -> None:
    group = group_get_or_create(corp=corp, chat_id=chat_id)
    group.status = CustomerGroup.Status.DISMISSED
    group.dismissed_at = _ts(event_time) or timezone.now()
    group.last_event_time = max(group.last_event_time, event_time)
    group.save(update_fields=["status", "dismissed_at", "last_event_time", "updated_at"])


STAT_FIELDS = (
    "chat_total",
    "new_chat_cnt",
    "chat_has_msg",
    "member_total",
    "new_member_cnt",
    "member_has_msg",
    "msg_total",
)
OWNERS_PER_CALL = 100  # owner_filter.userid_list ≤100 (Doc 92133)


def group_statistics_pull(*, corp: Corp, days: int = 7) -> int:
    """WeCom's daily figures for the corp's groups over the last `days` closed days (≤30 per call), summed
    over owners 100 at a time. Returns the days stored."""
    from scrm.core.wecom import wecom_client

    today = timezone.now().astimezone(SHANGHAI).date()
    first = today - timedelta(days=max(1, min(days, 30)))
    begin = int(datetime.combine(first, datetime.min.time(), tzinfo=SHANGHAI).timestamp())
    end = int(datetime.combine(today - timedelta(days=1), datetime.min.time(), tzinfo=SHANGHAI).timestamp())
    owners = sorted(
        set(
            CustomerGroup.objects.filter(corp=corp, status=CustomerGroup.Status.ACTIVE)
            .exclude(owner_userid="")
            .values_list("owner_userid", flat=True)
        )
    )
    totals: dict[int, dict[str, int]] = {}
    client = wecom_client(corp=corp, lane="bulk")
    for i in range(0, len(owners), OWNERS_PER_CALL):
        # Reference: Doc 92133 — by natural day for the given owners
        answer = client.groupchat_statistic_by_day(
            day_begin_time=begin, day_end_time=end, owner_userids=owners[i : i + OWNERS_PER_CALL]
        )
        for item in answer.get("items") or []:
            day_total = totals.setdefault(int(item["stat_time"]), dict.fromkeys(STAT_FIELDS, 0))
            for k in STAT_FIELDS:
                day_total[k] += int((item.get("data") or {}).get(k) or 0)
    for stat_time, values in totals.items():
        day = datetime.fromtimestamp(stat_time, tz=SHANGHAI).date()
        CorpGroupDayStat.objects.update_or_create(corp=corp, day=day, defaults=values)
    return len(totals)


def group_statistics_pull_all() -> int:
    """Beat: asks the bulk lane to pull every corp's group figures."""
    from scrm.tenancy.models import Corp as CorpModel
    from tasks.celery import app

    count = 0
    for corp_pk in (
        CorpModel.objects.filter(customer_groups__isnull=False).distinct().values_list("pk", flat=True)
    ):
        app.send_task("tasks.groupcodes.pull_group_statistics", args=(corp_pk,), queue="bulk")
        count += 1
    return count
