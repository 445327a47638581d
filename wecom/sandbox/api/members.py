"""Members (通讯录) read APIs the product uses, and the list of members with customer-contact permission."""

from __future__ import annotations

from typing import Any

from ..errors import ApiError
from ..models import Department, Member
from . import Call, api, decode_cursor, encode_cursor, get_int, get_str


def _visible_members(call: Call) -> list[Member]:
    vis = call.app.visible_userids
    return [
        m for m in call.corp.members.values() if m.resigned_at is None and (vis is None or m.userid in vis)
    ]


# Reference: Doc 90196 (读取成员)
@api("user/get", "GET")
def user_get(call: Call) -> dict[str, Any]:
    userid = get_str(call.query, "userid", required=True, missing=41009)
    member = call.corp.members.get(userid)
    if member is None or member.resigned_at is not None:
        raise ApiError(60111, f"userid {userid}")
    if not call.sb.visible(call.app, userid):
        raise ApiError(60011, f"userid {userid}")
    # Apps created after 2022-06-20 no longer receive mobile, gender, email or avatar.
    return {
        "userid": member.userid,
        "name": member.name,
        "department": member.department,
        "order": [0] * len(member.department),
        "position": member.position,
        "status": member.status,
        "isleader": 0,
        "is_leader_in_dept": [0] * len(member.department),
        "direct_leader": [],
        "main_department": member.department[0] if member.department else 1,
        "alias": member.alias,
        "open_userid": f"wo{member.userid}",
    }


# Reference: Doc 96067 (获取成员ID列表)
@api("user/list_id", "POST")
def user_list_id(call: Call) -> dict[str, Any]:
    limit = get_int(call.body, "limit", 10000, 1, 10000)
    cursor = get_str(call.body, "cursor")
    start = int(decode_cursor(cursor, 1)[0]) if cursor else 0
    members = _visible_members(call)
    chunk = members[start : start + limit]
    out = [{"userid": m.userid, "department": d} for m in chunk for d in m.department]
    nxt = start + len(chunk)
    return {"next_cursor": encode_cursor(nxt) if nxt < len(members) else "", "dept_user": out}


# Reference: Doc 90200 (获取部门成员)
@api("user/simplelist", "GET")
def user_simplelist(call: Call) -> dict[str, Any]:
    dept = get_int(call.query, "department_id", 0, 1)
    if dept == 0:
        raise ApiError(40058, "department_id missing")
    if dept not in call.corp.departments:
        raise ApiError(60003, f"department {dept}")
    members = [m for m in _visible_members(call) if dept in m.department]
    return {
        "userlist": [
            {"userid": m.userid, "name": m.name, "department": m.department, "open_userid": f"wo{m.userid}"}
            for m in members
        ]
    }


# Reference: Doc 95350 (获取子部门ID列表)
@api("department/simplelist", "GET")
def department_simplelist(call: Call) -> dict[str, Any]:
    root = get_int(call.query, "id", 0, 0)
    deps = call.corp.departments
    if root and root not in deps:
        raise ApiError(60003, f"department {root}")
    out = []
    for d in deps.values():
        node: Department | None = d
        inside = not root
        while not inside and node is not None:
            inside = node.id == root
            node = deps.get(node.parentid) if node.parentid else None
        if inside:
            out.append({"id": d.id, "parentid": d.parentid, "order": d.order})
    return {"department_id": out}


# Reference: Doc 92571 (获取配置了客户联系功能的成员列表)
@api("externalcontact/get_follow_user_list", "GET")
def get_follow_user_list(call: Call) -> dict[str, Any]:
    return {"follow_user": [m.userid for m in _visible_members(call) if m.contact_permission]}
