"""Contact ways (联系我 / channel codes)."""

from __future__ import annotations

from typing import Any

from ..errors import ApiError
from ..models import CONSOLE, ContactWay
from . import (
    Call,
    api,
    decode_cursor,
    encode_cursor,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_str,
    member_of,
)

TEMP_MAX = 14 * 86400


def qr_url(call: Call, config_id: str) -> str:
    return f"{call.sb.public_url}/sandbox/qr/{config_id}.png"


def check_quota(call: Call) -> None:
    corp = call.corp
    if len(corp.contact_ways) + len(corp.join_ways) >= corp.settings.contact_way_quota:
        # The errcode is not documented; 40058 is the stricter, generic reading.
        raise ApiError(40058, f"contact way quota {corp.settings.contact_way_quota} reached")


def _users(call: Call, way_type: int, users: list[str], parties: list[int]) -> None:
    if way_type == 1 and (len(users) != 1 or parties):
        raise ApiError(40058, "type 1 takes exactly one user and no party")
    if way_type == 2 and not users and not parties:
        raise ApiError(40058, "user or party required")
    for u in users:
        m = member_of(call, u, contact=True)
        if m.status != 1:
            raise ApiError(41054, f"userid {u}")
        if not m.verified:
            raise ApiError(40098, f"userid {u}")
    for p in parties:
        if p not in call.corp.departments:
            raise ApiError(60003, f"party {p}")


def _apply(call: Call, way: ContactWay, body: dict[str, Any]) -> None:
    way.style = get_int(body, "style", way.style, 1)
    way.remark = get_str(body, "remark", max_chars=30, default=way.remark)
    way.skip_verify = get_bool(body, "skip_verify", way.skip_verify)
    way.state = get_str(body, "state", max_chars=30, default=way.state)
    way.unionid = get_str(body, "unionid", default=way.unionid)
    if "conclusions" in body:
        way.conclusions = get_dict(body, "conclusions")
    if way.is_temp:
        way.expires_in = get_int(body, "expires_in", way.expires_in or 7 * 86400, 1, TEMP_MAX)
        way.chat_expires_in = get_int(body, "chat_expires_in", way.chat_expires_in or 86400, 1, TEMP_MAX)


# Reference: Doc 92572 (配置客户联系「联系我」方式)
@api("externalcontact/add_contact_way", "POST")
def add_contact_way(call: Call) -> dict[str, Any]:
    body = call.body
    way_type = get_int(body, "type", 0)
    scene = get_int(body, "scene", 0)
    if way_type not in (1, 2):
        raise ApiError(40058, "type must be 1 or 2")
    if scene not in (1, 2):
        raise ApiError(40058, "scene must be 1 or 2")
    users = get_list(body, "user", max_items=100)
    parties = get_list(body, "party", max_items=100, item=int)
    _users(call, way_type, users, parties)
    check_quota(call)
    way = ContactWay(
        config_id=call.sb.ids.config_id(),
        type=way_type,
        scene=scene,
        creator=call.app.agent_id,
        create_time=call.now,
        user=list(users),
        party=list(parties),
        is_temp=get_bool(body, "is_temp", False),
        is_exclusive=get_bool(body, "is_exclusive", False),
    )
    _apply(call, way, body)
    if scene == 2:
        way.qr_code = qr_url(call, way.config_id)
    call.corp.contact_ways[way.config_id] = way
    call.sb.qr_index[way.config_id] = call.corp.corp_id
    out: dict[str, Any] = {"config_id": way.config_id}
    if way.qr_code:
        out["qr_code"] = way.qr_code
    return out


def way_of(call: Call, *, writable: bool = False) -> ContactWay:
    config_id = get_str(call.body, "config_id", required=True)
    way = call.corp.contact_ways.get(config_id)
    if way is None:
        raise ApiError(40058, f"config_id {config_id}")
    if writable and way.creator == CONSOLE:
        # Ways made in the admin console are not the API's to change (stricter reading).
        raise ApiError(60011, f"config_id {config_id} was created in the admin console")
    return way


def way_json(way: ContactWay) -> dict[str, Any]:
    out: dict[str, Any] = {
        "config_id": way.config_id,
        "type": way.type,
        "scene": way.scene,
        "style": way.style,
        "remark": way.remark,
        "skip_verify": way.skip_verify,
        "state": way.state,
        "user": way.user,
        "party": way.party,
        "is_temp": way.is_temp,
        "is_exclusive": way.is_exclusive,
        "conclusions": way.conclusions,
    }
    if way.qr_code:
        out["qr_code"] = way.qr_code
    if way.is_temp:
        out.update(expires_in=way.expires_in, chat_expires_in=way.chat_expires_in)
    if way.unionid:
        out["unionid"] = way.unionid
    return out


# Reference: Doc 92572 (获取企业已配置的「联系我」方式)
@api("externalcontact/get_contact_way", "POST")
def get_contact_way(call: Call) -> dict[str, Any]:
    return {"contact_way": way_json(way_of(call))}


# Reference: Doc 92572 (获取企业已配置的「联系我」列表) — only ways created through the API.
@api("externalcontact/list_contact_way", "POST")
def list_contact_way(call: Call) -> dict[str, Any]:
    body = call.body
    end = get_int(body, "end_time", int(call.now), 0)
    start = get_int(body, "start_time", end - 90 * 86400, 0)
    if start > end:
        raise ApiError(40058, "start_time after end_time")
    limit = get_int(body, "limit", 100, 1, 1000)
    ways = [
        w.config_id
        for w in call.corp.contact_ways.values()
        if w.creator != CONSOLE and start <= int(w.create_time) <= end
    ]
    cursor = get_str(body, "cursor")
    pos = 0
    if cursor:
        p, last = decode_cursor(cursor, 2)
        pos = ways.index(last) + 1 if last in ways else int(p) if p.isdigit() else 0
    chunk = ways[pos : pos + limit]
    nxt = pos + len(chunk)
    return {
        "contact_way": [{"config_id": c} for c in chunk],
        "next_cursor": encode_cursor(nxt, chunk[-1]) if nxt < len(ways) and chunk else "",
    }


# Reference: Doc 92572 (更新企业已配置的「联系我」方式)
@api("externalcontact/update_contact_way", "POST")
def update_contact_way(call: Call) -> dict[str, Any]:
    way = way_of(call, writable=True)
    body = call.body
    users = get_list(body, "user", max_items=100) if "user" in body else way.user
    parties = get_list(body, "party", max_items=100, item=int) if "party" in body else way.party
    _users(call, way.type, users, parties)
    _apply(call, way, body)
    way.user, way.party = list(users), list(parties)
    return {}


# Reference: Doc 92572 (删除企业已配置的「联系我」方式)
@api("externalcontact/del_contact_way", "POST")
def del_contact_way(call: Call) -> dict[str, Any]:
    way = way_of(call, writable=True)
    del call.corp.contact_ways[way.config_id]
    call.sb.qr_index.pop(way.config_id, None)
    return {}
