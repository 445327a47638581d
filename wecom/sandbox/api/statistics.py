"""Group statistics by owner and by day, computed from the simulated groups.

The sandbox simulates joins, leaves and new groups but not chat messages, so the message counters
(chat_has_msg, member_has_msg, msg_total) are 0: that is the true state of the simulated world."""

from __future__ import annotations

from typing import Any

from ..clock import SHANGHAI_OFFSET
from ..errors import ApiError
from ..models import GroupChat
from . import Call, api, get_dict, get_int, get_list
from .groups import OWNERS_WITHOUT_FILTER

DAY = 86400
MAX_SPAN_DAYS = 30  # a query spans at most 30 days


def _days(call: Call) -> list[int]:
    begin = get_int(call.body, "day_begin_time", 0, 0)
    if not begin:
        raise ApiError(40058, "day_begin_time missing")
    end = get_int(call.body, "day_end_time", begin, 0)
    first = (begin + SHANGHAI_OFFSET) // DAY * DAY - SHANGHAI_OFFSET  # midnight, Asia/Shanghai
    if end < begin or end - first >= MAX_SPAN_DAYS * DAY:
        raise ApiError(40058, f"day_end_time must be within {MAX_SPAN_DAYS} days of day_begin_time")
    return list(range(first, end + 1, DAY))


def _owners(call: Call, *, required: bool) -> set[str] | None:
    owners = get_list(get_dict(call.body, "owner_filter"), "userid_list", max_items=100)
    if owners:
        return set(owners)
    if required:
        raise ApiError(40058, "owner_filter.userid_list required")
    vis = call.app.visible_userids
    n = len(call.corp.owner_groups) if vis is None else sum(1 for o in call.corp.owner_groups if o in vis)
    if n > OWNERS_WITHOUT_FILTER:
        raise ApiError(81017)
    return None


def _day_data(chats: list[GroupChat], day: int) -> dict[str, int]:
    end = day + DAY
    data = dict.fromkeys(
        (
            "new_chat_cnt",
            "chat_total",
            "chat_has_msg",
            "new_member_cnt",
            "member_total",
            "member_has_msg",
            "msg_total",
            "migrate_trainee_chat_cnt",
        ),
        0,
    )
    for c in chats:
        if c.create_time >= end:
            continue
        data["chat_total"] += 1
        if c.create_time >= day:
            data["new_chat_cnt"] += 1
        for m in c.members.values():
            if m.join_time < end:
                data["member_total"] += 1
                if m.join_time >= day:
                    data["new_member_cnt"] += 1
    return data


def _chats(call: Call, owners: set[str] | None) -> list[GroupChat]:
    vis = call.app.visible_userids
    return [
        c
        for c in call.corp.groups.values()
        if not c.dismissed and (owners is None or c.owner in owners) and (vis is None or c.owner in vis)
    ]


# Reference: Doc 92133 (获取「群聊数据统计」数据, 按群主聚合)
@api("externalcontact/groupchat/statistic", "POST")
def statistic(call: Call) -> dict[str, Any]:
    days = _days(call)
    owners = _owners(call, required=False)
    order_by = get_int(call.body, "order_by", 1, 1, 4)
    asc = get_int(call.body, "order_asc", 0, 0, 1) == 1
    offset = get_int(call.body, "offset", 0, 0)
    limit = get_int(call.body, "limit", 500, 1, 1000)
    by_owner: dict[str, list[GroupChat]] = {}
    for c in _chats(call, owners):
        by_owner.setdefault(c.owner, []).append(c)
    items: list[dict[str, Any]] = []
    for owner, chats in by_owner.items():
        total: dict[str, int] = {}
        for d in days:
            for k, v in _day_data(chats, d).items():
                # Totals are as of the last day; "new" counts add up over the range.
                total[k] = v if k in ("chat_total", "member_total") else total.get(k, 0) + v
        items.append({"owner": owner, "data": total})
    key = ("new_chat_cnt", "chat_total", "chat_has_msg", "member_total")[order_by - 1]
    items.sort(key=lambda i: i["data"][key], reverse=not asc)
    page = items[offset : offset + limit]
    return {"total": len(items), "next_offset": offset + len(page), "items": page}


# Reference: Doc 92133 (获取「群聊数据统计」数据, 按自然日聚合)
@api("externalcontact/groupchat/statistic_group_by_day", "POST")
def statistic_group_by_day(call: Call) -> dict[str, Any]:
    days = _days(call)
    chats = _chats(call, _owners(call, required=True))
    return {"items": [{"stat_time": d, "data": _day_data(chats, d)} for d in days]}
