"""Customer groups (客户群): list, get, join ways, group welcome, group transfers."""

from __future__ import annotations

import hashlib
from typing import Any

from ..errors import ERRMSG, ApiError
from ..models import GroupChat, GroupMember, JoinWay
from ..state import Corp
from . import Call, api, get_bool, get_dict, get_int, get_list, get_str, member_of, paged
from .contact_ways import check_quota, qr_url

OWNERS_WITHOUT_FILTER = 1000


def member_version(chat: GroupChat) -> str:
    return hashlib.md5(f"{chat.chat_id}:{chat.version}".encode(), usedforsecurity=False).hexdigest()


def chat_of(call: Call, chat_id: str) -> GroupChat:
    chat = call.corp.groups.get(chat_id)
    if chat is None or chat.dismissed:
        raise ApiError(40050, f"chat_id {chat_id}")
    return chat


def _visible_owners(call: Call) -> int:
    owners = call.corp.owner_groups
    vis = call.app.visible_userids
    return len(owners) if vis is None else sum(1 for o in owners if o in vis)


# Reference: Doc 92120 (获取客户群列表)
@api("externalcontact/groupchat/list", "POST")
def groupchat_list(call: Call) -> dict[str, Any]:
    body, corp = call.body, call.corp
    status = get_int(body, "status_filter", 0, 0, 3)
    limit = get_int(body, "limit", 0, 1, 1000)
    if limit == 0:
        raise ApiError(40058, "limit missing")
    owner_ids = get_list(get_dict(body, "owner_filter"), "userid_list", max_items=100)
    if not owner_ids and _visible_owners(call) > OWNERS_WITHOUT_FILTER:
        raise ApiError(81017)
    owners = set(owner_ids) if owner_ids else None
    vis = call.app.visible_userids
    groups = corp.groups

    def wanted(chat_id: str) -> bool:
        c = groups[chat_id]
        return (
            not c.dismissed
            and (status == 0 or c.status == status)
            and (owners is None or c.owner in owners)
            and (vis is None or c.owner in vis)
        )

    keys, nxt = paged(corp.group_order, get_str(body, "cursor"), limit, wanted)
    return {"group_chat_list": [{"chat_id": k, "status": groups[k].status} for k in keys], "next_cursor": nxt}


def group_json(corp: Corp, chat: GroupChat, need_name: bool) -> dict[str, Any]:
    members = []
    for gm in chat.members.values():
        item: dict[str, Any] = {
            "userid": gm.id,
            "type": gm.type,
            "join_time": gm.join_time,
            "join_scene": gm.join_scene,
            "group_nickname": gm.group_nickname,
        }
        if gm.invitor:
            item["invitor"] = {"userid": gm.invitor}
        if need_name:
            item["name"] = gm.name
        if gm.unionid:
            item["unionid"] = gm.unionid
        if gm.state:
            item["state"] = gm.state
        members.append(item)
    return {
        "chat_id": chat.chat_id,
        "name": chat.name,
        "owner": chat.owner,
        "create_time": chat.create_time,
        "notice": chat.notice,
        "member_list": members,
        "admin_list": [{"userid": u} for u in chat.admin_list],
        "member_version": member_version(chat),
    }


# Reference: Doc 92122 (获取客户群详情)
@api("externalcontact/groupchat/get", "POST")
def groupchat_get(call: Call) -> dict[str, Any]:
    chat = chat_of(call, get_str(call.body, "chat_id", required=True, code=40050))
    if not call.sb.visible(call.app, chat.owner):
        raise ApiError(60011, f"owner {chat.owner} is outside the app's visibility")
    need_name = get_int(call.body, "need_name", 0, 0, 1) == 1
    return {"group_chat": group_json(call.corp, chat, need_name)}


# --- join ways (Doc 92229) ------------------------------------------------------------------------
def _join_way_fields(call: Call, way: JoinWay) -> None:
    body = call.body
    scene = get_int(body, "scene", 0)
    if scene not in (1, 2):
        raise ApiError(40058, "scene must be 1 or 2")
    chats = get_list(body, "chat_id_list")
    if not chats or len(chats) > 5:
        raise ApiError(40058, "chat_id_list takes 1-5 chat ids")
    for c in chats:
        chat_of(call, c)
    way.scene = scene
    way.chat_id_list = list(chats)
    way.remark = get_str(body, "remark", max_chars=30)
    way.auto_create_room = get_int(body, "auto_create_room", 1, 0, 1)
    way.room_base_name = get_str(body, "room_base_name", max_chars=40)
    way.room_base_id = get_int(body, "room_base_id", 1, 0)
    way.state = get_str(body, "state", max_chars=30)
    way.mark_source = get_bool(body, "mark_source", False)


def _join_way(call: Call) -> JoinWay:
    config_id = get_str(call.body, "config_id", required=True)
    way = call.corp.join_ways.get(config_id)
    if way is None:
        raise ApiError(40058, f"config_id {config_id}")
    if way.creator != call.app.agent_id:
        # "An app manages only its own join ways"; errcode not documented: 60011, stricter.
        raise ApiError(60011, f"config_id {config_id} belongs to another app")
    return way


# Reference: Doc 92229 (配置客户群进群方式)
@api("externalcontact/groupchat/add_join_way", "POST")
def add_join_way(call: Call) -> dict[str, Any]:
    way = JoinWay(config_id=call.sb.ids.config_id(), scene=0, creator=call.app.agent_id, create_time=call.now)
    _join_way_fields(call, way)
    check_quota(call)
    way.qr_code = qr_url(call, way.config_id)
    call.corp.join_ways[way.config_id] = way
    call.sb.qr_index[way.config_id] = call.corp.corp_id
    return {"config_id": way.config_id}


# Reference: Doc 92229 (获取客户群进群方式配置)
@api("externalcontact/groupchat/get_join_way", "POST")
def get_join_way(call: Call) -> dict[str, Any]:
    way = _join_way(call)
    out: dict[str, Any] = {
        "config_id": way.config_id,
        "scene": way.scene,
        "remark": way.remark,
        "auto_create_room": way.auto_create_room,
        "room_base_name": way.room_base_name,
        "room_base_id": way.room_base_id,
        "chat_id_list": way.chat_id_list,
        "qr_code": way.qr_code,
        "state": way.state,
    }
    return {"join_way": out}


# Reference: Doc 92229 (更新客户群进群方式配置) — overwrites every field, as documented.
@api("externalcontact/groupchat/update_join_way", "POST")
def update_join_way(call: Call) -> dict[str, Any]:
    _join_way_fields(call, _join_way(call))
    return {}


# Reference: Doc 92229 (删除客户群进群方式配置)
@api("externalcontact/groupchat/del_join_way", "POST")
def del_join_way(call: Call) -> dict[str, Any]:
    way = _join_way(call)
    del call.corp.join_ways[way.config_id]
    call.sb.qr_index.pop(way.config_id, None)
    return {}


# --- group transfers (Doc 92127, 95703) -----------------------------------------------------------
def _transfer_groups(call: Call, *, resigned: bool) -> dict[str, Any]:
    body, corp, now = call.body, call.corp, call.now
    chat_ids = get_list(body, "chat_id_list", max_items=100)
    if not chat_ids:
        raise ApiError(40058, "chat_id_list takes 1-100 chat ids")
    new_owner = member_of(call, get_str(body, "new_owner"), contact=True).userid
    guard = corp.settings.transfer_guard_days * 86400
    failed = []
    for cid in chat_ids:
        chat = corp.groups.get(cid)
        code = 0
        if chat is None or chat.dismissed:
            code = 90501
        elif resigned and corp.active_member(chat.owner) is not None:
            code = 90500
        elif not resigned and corp.active_member(chat.owner) is None:
            code = 40003  # on-job transfer needs an active owner
        elif not resigned and len([t for t in chat.onjob_transfer_times if now - t < guard]) >= 2:
            code = 40128  # each group twice per 90 days; errcode not documented (stricter reading)
        if code:
            failed.append({"chat_id": cid, "errcode": code, "errmsg": ERRMSG.get(code, "failed")})
            continue
        assert chat is not None
        set_owner(corp, chat, new_owner)
        if resigned:
            chat.status = 3
        else:
            chat.onjob_transfer_times.append(now)
        chat.version += 1
    return {"failed_chat_list": failed}


def set_owner(corp: Corp, chat: GroupChat, owner: str) -> None:
    corp.count_owner(chat.owner, -1)
    corp.count_owner(owner, +1)
    chat.owner = owner
    if owner not in chat.members:
        member = corp.members[owner]
        chat.members[owner] = GroupMember(owner, 1, chat.create_time, 1, name=member.name)


# Reference: Doc 92127 (分配离职成员的客户群)
@api("externalcontact/groupchat/transfer", "POST")
def groupchat_transfer(call: Call) -> dict[str, Any]:
    return _transfer_groups(call, resigned=True)


# Reference: Doc 95703 (分配在职成员的客户群)
@api("externalcontact/groupchat/onjob_transfer", "POST")
def groupchat_onjob_transfer(call: Call) -> dict[str, Any]:
    return _transfer_groups(call, resigned=False)
