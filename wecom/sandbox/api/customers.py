"""Customers (客户管理): list, get, batch get by member, remark."""

from __future__ import annotations

import itertools
from typing import Any

from ..errors import ApiError
from ..ids import EXTERNAL_USERID_RE
from ..models import Customer, Follow, Member
from ..state import Corp
from . import (
    Call,
    api,
    decode_cursor,
    encode_cursor,
    get_int,
    get_list,
    get_str,
    member_of,
    page,
    paged,
    resume,
)


def customer_of(call: Call, external_userid: str) -> Customer:
    if not external_userid or not EXTERNAL_USERID_RE.match(external_userid):
        raise ApiError(40096, f"external_userid {external_userid}")
    customer = call.corp.customers.get(external_userid)
    if customer is None:
        raise ApiError(40096, f"external_userid {external_userid}")
    return customer


def follow_of(call: Call, userid: str, external_userid: str) -> Follow:
    member = member_of(call, userid)
    customer_of(call, external_userid)
    follow = member.follows.get(external_userid)
    if follow is None:
        raise ApiError(84061, f"{userid} / {external_userid}")
    return follow


def contact_json(c: Customer) -> dict[str, Any]:
    out: dict[str, Any] = {
        "external_userid": c.external_userid,
        "name": c.name,
        "type": c.type,
        "avatar": c.avatar,
        "gender": c.gender,
    }
    if c.unionid:
        out["unionid"] = c.unionid
    if c.type == 2:
        out.update(position=c.position, corp_name=c.corp_name, corp_full_name=c.corp_full_name)
    return out


def _follow_common(f: Follow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "userid": f.userid,
        "remark": f.remark,
        "description": f.description,
        "createtime": f.createtime,
        "remark_corp_name": f.remark_corp_name,
        "remark_mobiles": f.remark_mobiles,
        "oper_userid": f.oper_userid or f.userid,
        "add_way": f.add_way,
    }
    if f.state:
        out["state"] = f.state
    return out


def follow_user_json(corp: Corp, f: Follow) -> dict[str, Any]:
    out = _follow_common(f)
    tags = []
    for tid in f.tags:
        tag = corp.tags.get(tid)
        if tag is not None:
            group = corp.tag_groups[tag.group_id]
            tags.append({"group_name": group.name, "tag_name": tag.name, "tag_id": tid, "type": 1})
    out["tags"] = tags
    return out


def follow_info_json(corp: Corp, f: Follow) -> dict[str, Any]:
    out = _follow_common(f)
    tags = corp.tags
    out["tag_id"] = [t for t in f.tags if t in tags]
    return out


# Reference: Doc 92113 (获取客户列表)
@api("externalcontact/list", "GET")
def list_customers(call: Call) -> dict[str, Any]:
    member = member_of(call, get_str(call.query, "userid"))
    if not member.follows:
        raise ApiError(84061, f"{member.userid} has no customers")
    return {"external_userid": list(member.follows)}


def _live_follow(call: Call, customer: Customer, userid: str) -> Follow | None:
    m = call.corp.members.get(userid)
    if m is None or m.resigned_at is not None or not call.sb.visible(call.app, userid):
        return None
    return customer.follows.get(userid)


# Reference: Doc 92114 (获取客户详情); follow_user is paged by 500 with cursor.
@api("externalcontact/get", "GET")
def get_customer(call: Call) -> dict[str, Any]:
    customer = customer_of(call, get_str(call.query, "external_userid"))
    keys, nxt = paged(customer.follow_order, get_str(call.query, "cursor"), 500)
    follows = [f for f in (_live_follow(call, customer, u) for u in keys) if f is not None]
    if not follows and not any(_live_follow(call, customer, u) for u in customer.follows):
        raise ApiError(84061, f"no member in range follows {customer.external_userid}")
    corp = call.corp
    return {
        "external_contact": contact_json(customer),
        "follow_user": [follow_user_json(corp, f) for f in follows],
        "next_cursor": nxt,
    }


# Reference: Doc 92994 (批量获取客户详情)
@api("externalcontact/batch/get_by_user", "POST")
def batch_get_by_user(call: Call) -> dict[str, Any]:
    userids = get_list(call.body, "userid_list", max_items=100)
    if not userids:
        raise ApiError(40058, "userid_list missing")
    limit = get_int(call.body, "limit", 50, 1, 100)
    members = [member_of(call, u) for u in userids]
    cursor = get_str(call.body, "cursor")
    ui, pos = 0, 0
    if cursor:
        a, b, last = decode_cursor(cursor, 3)
        if not (a.isdigit() and b.isdigit()) or int(a) >= len(members):
            raise ApiError(40058, "invalid cursor")
        ui = int(a)
        pos = resume(members[ui].follow_order, int(b), last)
    corp = call.corp
    out: list[dict[str, Any]] = []
    last_key = ""
    while ui < len(members) and len(out) < limit:
        m = members[ui]
        keys, pos = page(m.follow_order, pos, limit - len(out))
        for ext in keys:
            out.append(
                {
                    "external_contact": contact_json(corp.customers[ext]),
                    "follow_info": follow_info_json(corp, m.follows[ext]),
                }
            )
        if keys:
            last_key = keys[-1]
        if pos >= len(m.follow_order.keys):
            ui, pos, last_key = ui + 1, 0, ""
    more = _has_more(members, ui, pos)
    return {"external_contact_list": out, "next_cursor": encode_cursor(ui, pos, last_key) if more else ""}


def _has_more(members: list[Member], ui: int, pos: int) -> bool:
    if ui >= len(members):
        return False
    order = members[ui].follow_order
    if any(order.live(k) for k in itertools.islice(order.keys, pos, None)):
        return True
    return any(m.follows for m in members[ui + 1 :])


# Reference: Doc 92115 (修改客户备注信息)
@api("externalcontact/remark", "POST")
def remark(call: Call) -> dict[str, Any]:
    body = call.body
    follow = follow_of(call, get_str(body, "userid"), get_str(body, "external_userid"))
    new_remark = get_str(body, "remark", max_chars=20, default=follow.remark)
    description = get_str(body, "description", max_chars=150, default=follow.description)
    company = get_str(body, "remark_company", max_chars=20, default=follow.remark_corp_name)
    mobiles = (
        get_list(body, "remark_mobiles", max_items=5) if "remark_mobiles" in body else follow.remark_mobiles
    )
    if any(len(x) > 32 for x in mobiles):
        raise ApiError(40058, "remark_mobiles item exceeds 32 chars")
    pic = get_str(body, "remark_pic_mediaid")
    if pic:
        media = call.corp.media.get(pic)
        if media is None or call.now - media.created_at > call.corp.settings.media_ttl:
            raise ApiError(40007, f"media_id {pic}")
    follow.remark, follow.description, follow.remark_corp_name = new_remark, description, company
    follow.remark_mobiles = tuple(mobiles)
    return {}
