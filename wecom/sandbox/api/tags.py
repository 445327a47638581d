"""Corp customer tags (企业客户标签) and marking customers."""

from __future__ import annotations

from typing import Any

from ..errors import ApiError
from ..models import Tag, TagGroup
from ..state import Corp
from . import Call, api, get_int, get_list, get_str
from .customers import follow_of

TAG_NAME_MAX = 30  # [3rd-party]; WeCom answers 40072 for a bad tag name length


def group_json(corp: Corp, g: TagGroup, only: set[str] | None = None) -> dict[str, Any]:
    tags = [corp.tags[t] for t in g.tag_ids if t in corp.tags and (only is None or t in only)]
    return {
        "group_id": g.group_id,
        "group_name": g.name,
        "create_time": g.create_time,
        "order": g.order,
        "deleted": False,
        "tag": [
            {"id": t.id, "name": t.name, "create_time": t.create_time, "order": t.order, "deleted": False}
            for t in tags
        ],
    }


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > TAG_NAME_MAX:
        raise ApiError(40072, f"{what} must be 1-{TAG_NAME_MAX} chars")
    return value


def _owned(call: Call, creator: int, what: str) -> None:
    # "An app may edit/delete only tags it created" (Doc 92117); console tags belong to no app.
    if creator != call.app.agent_id:
        raise ApiError(81011, f"{what} was not created by agent {call.app.agent_id}")


# Reference: Doc 92117 (获取企业标签库)
@api("externalcontact/get_corp_tag_list", "POST")
def get_corp_tag_list(call: Call) -> dict[str, Any]:
    corp = call.corp
    tag_ids = get_list(call.body, "tag_id")
    group_ids = get_list(call.body, "group_id")
    if tag_ids:  # tag_id wins over group_id, as documented
        wanted = {t for t in tag_ids if t in corp.tags}
        gids = dict.fromkeys(corp.tags[t].group_id for t in tag_ids if t in corp.tags)
        return {"tag_group": [group_json(corp, corp.tag_groups[g], wanted) for g in gids]}
    groups = (
        [corp.tag_groups[g] for g in group_ids if g in corp.tag_groups]
        if group_ids
        else corp.tag_groups.values()
    )
    return {"tag_group": [group_json(corp, g) for g in groups]}


# Reference: Doc 92117 (添加企业客户标签)
@api("externalcontact/add_corp_tag", "POST")
def add_corp_tag(call: Call) -> dict[str, Any]:
    corp, body, now = call.corp, call.body, int(call.now)
    items = body.get("tag")
    if not isinstance(items, list) or not items or not all(isinstance(t, dict) for t in items):
        raise ApiError(40058, "tag must be a non-empty list of {name, order}")
    names = [_name(t.get("name"), "tag name") for t in items]
    if len(set(names)) != len(names):
        raise ApiError(40071, "duplicate tag names in request")
    group_id = get_str(body, "group_id")
    group: TagGroup | None
    if group_id:
        group = corp.tag_groups.get(group_id)
        if group is None:
            raise ApiError(40068, f"group_id {group_id}")
    else:
        gname = _name(body.get("group_name"), "group_name")
        group = next((g for g in corp.tag_groups.values() if g.name == gname), None)
    if group is not None:
        # Stricter reading: adding to a group is editing it, so only its creator app may do so.
        _owned(call, group.creator, f"tag group {group.group_id}")
        existing = {corp.tags[t].name for t in group.tag_ids if t in corp.tags}
        if existing.intersection(names):
            raise ApiError(40071, f"tag name exists: {sorted(existing.intersection(names))}")
    if corp.live_tags() + len(names) > corp.settings.tag_cap:
        raise ApiError(40126, f"cap {corp.settings.tag_cap}")
    if group is None:
        group = TagGroup(
            group_id=call.sb.ids.tag_id(),
            name=str(body["group_name"]),
            order=get_int(body, "order", 0, 0),
            create_time=now,
            creator=call.app.agent_id,
        )
        corp.tag_groups[group.group_id] = group
    new: set[str] = set()
    for item, name in zip(items, names, strict=True):
        tag = Tag(
            call.sb.ids.tag_id(), name, group.group_id, get_int(item, "order", 0, 0), now, call.app.agent_id
        )
        corp.tags[tag.id] = tag
        group.tag_ids.append(tag.id)
        new.add(tag.id)
    return {"tag_group": group_json(corp, group, new)}


# Reference: Doc 92117 (编辑企业客户标签)
@api("externalcontact/edit_corp_tag", "POST")
def edit_corp_tag(call: Call) -> dict[str, Any]:
    corp, body = call.corp, call.body
    ident = get_str(body, "id", required=True, code=40068)
    name = _name(body["name"], "name") if body.get("name") is not None else None
    order = get_int(body, "order", -1, 0)
    tag = corp.tags.get(ident)
    if tag is not None:
        _owned(call, tag.creator, f"tag {ident}")
        group = corp.tag_groups[tag.group_id]
        if name is not None and any(
            corp.tags[t].name == name for t in group.tag_ids if t in corp.tags and t != ident
        ):
            raise ApiError(40071, name)
        tag.name = name if name is not None else tag.name
        tag.order = order if order >= 0 else tag.order
        return {}
    found = corp.tag_groups.get(ident)
    if found is None:
        raise ApiError(40068, ident)
    group = found
    _owned(call, group.creator, f"tag group {ident}")
    if name is not None and any(g.name == name for g in corp.tag_groups.values() if g is not group):
        raise ApiError(40071, name)
    group.name = name if name is not None else group.name
    group.order = order if order >= 0 else group.order
    return {}


# Reference: Doc 92117 (删除企业客户标签)
@api("externalcontact/del_corp_tag", "POST")
def del_corp_tag(call: Call) -> dict[str, Any]:
    corp = call.corp
    tag_ids = get_list(call.body, "tag_id")
    group_ids = get_list(call.body, "group_id")
    if not tag_ids and not group_ids:
        raise ApiError(40058, "tag_id and group_id are both empty")
    for t in tag_ids:  # check everything first: the call fails or succeeds as a whole
        if t not in corp.tags:
            raise ApiError(40068, t)
        _owned(call, corp.tags[t].creator, f"tag {t}")
    for g in group_ids:
        if g not in corp.tag_groups:
            raise ApiError(40068, g)
        _owned(call, corp.tag_groups[g].creator, f"tag group {g}")
    delete_tags(corp, tag_ids, group_ids)
    return {}


def delete_tags(corp: Corp, tag_ids: list[str], group_ids: list[str]) -> list[str]:
    """Delete tags and groups; a group whose last tag goes is deleted too. Returns emptied groups.
    Follows keep dead tag ids; readers skip them, so deletion is O(tags), not O(follows)."""
    emptied: list[str] = []
    for g in group_ids:
        group = corp.tag_groups.pop(g, None)
        if group is not None:
            for t in group.tag_ids:
                corp.tags.pop(t, None)
    for t in tag_ids:
        tag = corp.tags.pop(t, None)
        if tag is None:
            continue
        group = corp.tag_groups.get(tag.group_id)
        if group is not None:
            group.tag_ids.remove(t)
            if not group.tag_ids:
                del corp.tag_groups[group.group_id]
                emptied.append(group.group_id)
    return emptied


# Reference: Doc 92118 (编辑客户企业标签)
@api("externalcontact/mark_tag", "POST")
def mark_tag(call: Call) -> dict[str, Any]:
    body = call.body
    add = get_list(body, "add_tag")
    remove = get_list(body, "remove_tag")
    if not add and not remove:
        raise ApiError(40058, "add_tag and remove_tag are both empty")
    follow = follow_of(call, get_str(body, "userid"), get_str(body, "external_userid"))
    tags = call.corp.tags
    for t in (*add, *remove):
        if t not in tags:
            raise ApiError(40068, t)
    current = [t for t in follow.tags if t in tags]
    for t in add:
        if t not in current:
            current.append(t)
    drop = set(remove)
    follow.tags = tuple(t for t in current if t not in drop)
    return {}
