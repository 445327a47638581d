"""The world driver: simulated people doing what makes WeCom send callbacks.

Each action changes the sandbox's state the way WeCom would and emits the event WeCom sends for it
(encrypted and delivered by the Outbox). Actions take a JSON-like dict of optional parameters and
pick sensible random ones for whatever is left out, so the same functions serve the control API,
scenario traffic and tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .api.groups import member_version
from .api.mass import confirm
from .api.tags import delete_tags
from .api.transfers import refuse
from .events import change_contact, change_external_chat, change_external_contact, change_external_tag
from .ids import secret_token
from .models import (
    CONSOLE,
    ContactWay,
    Customer,
    Follow,
    GroupChat,
    GroupMember,
    JoinWay,
    Member,
    Tag,
    TagGroup,
    WelcomeCode,
)
from .names import COMPANIES, customer_name, member_name, unique_userid
from .state import Corp, Sandbox

Action = Callable[[Sandbox, Corp, dict[str, Any]], dict[str, Any]]
ACTIONS: dict[str, Action] = {}
WELCOME_CODE_KEEP = 3600.0  # codes older than this are forgotten (they expired after 20 s anyway)


class WorldError(Exception):
    """The simulated people cannot do that (unknown ids, full groups…). status is an HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def action(name: str) -> Callable[[Action], Action]:
    def deco(fn: Action) -> Action:
        ACTIONS[name] = fn
        return fn

    return deco


def run(sb: Sandbox, corp: Corp, name: str, params: dict[str, Any]) -> dict[str, Any]:
    fn = ACTIONS.get(name)
    if fn is None:
        raise WorldError(f"unknown world action {name!r}; known: {sorted(ACTIONS)}", 404)
    count = int(params.get("count", 1) or 1)
    if count == 1:
        return fn(sb, corp, params)
    results, errors = [], 0
    for _ in range(count):
        try:
            results.append(fn(sb, corp, dict(params)))
        except WorldError:
            errors += 1
    return {
        "count": len(results),
        "errors": errors,
        "results": results if params.get("results", True) else [],
    }


# --- picking people -------------------------------------------------------------------------------
def _member(corp: Corp, userid: str) -> Member:
    m = corp.active_member(userid)
    if m is None:
        raise WorldError(f"no active member {userid!r}", 404)
    return m


def _active_members(corp: Corp) -> list[Member]:
    return [
        m for m in corp.members.values() if m.resigned_at is None and m.contact_permission and m.status == 1
    ]


def _random_follow(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> Follow:
    userid, ext = params.get("userid"), params.get("external_userid")
    if userid and ext:
        f = _member(corp, userid).follows.get(ext)
        if f is None:
            raise WorldError(f"{userid} does not follow {ext}", 404)
        return f
    if ext:
        c = corp.customers.get(ext)
        if c is None or not c.follows:
            raise WorldError(f"customer {ext!r} has no member", 404)
        return sb.rng.choice(list(c.follows.values()))
    members = [_member(corp, userid)] if userid else [m for m in _active_members(corp) if m.follows]
    for _ in range(8):
        if not members:
            break
        m = sb.rng.choice(members)
        keys = m.follow_order.keys
        if keys:
            key = sb.rng.choice(keys)
            if key in m.follows:
                return m.follows[key]
    raise WorldError("no customer relationship to act on", 409)


def new_customer(sb: Sandbox, corp: Corp, name: str | None = None, *, now: float | None = None) -> Customer:
    rng = sb.rng
    ext = sb.ids.external_userid()
    c = Customer(
        external_userid=ext,
        name=name or customer_name(rng),
        type=1 if rng.random() < 0.9 else 2,
        gender=rng.choice((0, 1, 2)),
        avatar=f"http://wx.qlogo.cn/mmhead/{ext[2:18]}/0",
        created_at=sb.clock.now() if now is None else now,
    )
    if c.type == 2:
        c.corp_name = rng.choice(COMPANIES)
        c.corp_full_name = c.corp_name + "有限公司"
        c.position = rng.choice(("经理", "采购", "总监", "工程师"))
    corp.customers[ext] = c
    return c


def _customer(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> Customer:
    ext = params.get("external_userid")
    if ext:
        c = corp.customers.get(ext)
        if c is None:
            raise WorldError(f"unknown customer {ext!r}", 404)
        return c
    return new_customer(sb, corp, params.get("name"))


def _emit(sb: Sandbox, corp: Corp, params: dict[str, Any], xml: str, event: str) -> int:
    return sb.emit(corp, xml, event) if params.get("deliver", True) else 0


# --- customers ------------------------------------------------------------------------------------
def _pick_user(sb: Sandbox, corp: Corp, way: ContactWay) -> Member:
    cap = corp.settings.member_customer_cap
    ids = list(way.user)
    if way.party:
        parties = set(way.party)
        ids += [
            m.userid
            for m in corp.members.values()
            if parties.intersection(m.department) and m.userid not in ids
        ]
    candidates = [
        m
        for u in ids
        if (m := corp.active_member(u)) is not None and m.contact_permission and len(m.follows) < cap
    ]
    if not candidates:
        raise WorldError(f"contact way {way.config_id} has no member who can take a customer", 409)
    # With several users WeCom picks who receives the customer; round robin here.
    way.next_pick = (way.next_pick + 1) % len(candidates)
    return candidates[way.next_pick]


def _find_way(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> ContactWay | None:
    config_id, state = params.get("config_id"), params.get("state")
    if config_id:
        way = corp.contact_ways.get(config_id)
        if way is None:
            raise WorldError(f"unknown contact way {config_id!r}", 404)
        return way
    ways = list(corp.contact_ways.values())
    if state is not None:
        matching = [w for w in ways if w.state == state]
        if not matching:
            raise WorldError(f"no contact way with state {state!r}", 404)
        return sb.rng.choice(matching)
    return sb.rng.choice(ways) if ways else None


def add_customer(
    sb: Sandbox,
    corp: Corp,
    member: Member,
    customer: Customer,
    params: dict[str, Any],
    *,
    state: str,
    add_way: int,
    change: str,
) -> dict[str, Any]:
    now = sb.clock.now()
    s = corp.settings
    existing = member.follows.get(customer.external_userid)
    if existing is not None and not existing.deleted_by_customer:
        raise WorldError(f"{member.userid} already follows {customer.external_userid}", 409)
    if existing is not None:  # the customer had deleted the member and adds them back
        existing.deleted_by_customer, existing.state, existing.add_way = False, state, add_way
    else:
        follow = Follow(
            userid=member.userid,
            external_userid=customer.external_userid,
            createtime=int(now),
            add_way=add_way,
            state=state,
            oper_userid=customer.external_userid,
        )
        sb.link(corp, member, customer, follow)
    code = ""
    if params.get("welcome", True) and sb.rng.random() >= s.no_welcome_code_rate:
        code = _issue_code(sb, corp, member.userid, customer.external_userid, now)
    xml = change_external_contact(
        corp.corp_id, now, change, member.userid, customer.external_userid, State=state, WelcomeCode=code
    )
    delivered = _emit(sb, corp, params, xml, f"change_external_contact:{change}")
    detail = {
        "userid": member.userid,
        "external_userid": customer.external_userid,
        "state": state,
        "welcome_code": code,
        "event_time": now,
        "deliveries": delivered,
    }
    sb.audit.world(now, corp.corp_id, change, detail)
    return detail


def _issue_code(sb: Sandbox, corp: Corp, userid: str, external_userid: str, now: float) -> str:
    """A fresh WelcomeCode (valid 20 s, single use); now and then another app is sending (41096)."""
    wc = WelcomeCode(secret_token(24), userid, external_userid, now)
    if sb.rng.random() < corp.settings.welcome_busy_rate:
        wc.busy_until = now + sb.rng.uniform(1.0, 3.0)
    corp.welcome_codes[wc.code] = wc
    sb.audit.welcome_event(corp.corp_id, "issued")
    if len(corp.welcome_codes) % 4096 == 0:  # forget codes long expired, to bound memory
        for k in [k for k, c in corp.welcome_codes.items() if now - c.created_at > WELCOME_CODE_KEEP]:
            del corp.welcome_codes[k]
    return wc.code


@action("scan")
def scan(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """A customer scans a contact way's QR code (or a join way's: then they join a group)."""
    config_id = params.get("config_id")
    if config_id and config_id in corp.join_ways:
        return join_group(sb, corp, params)
    half = bool(params.get("half"))
    change = "add_half_external_contact" if half else "add_external_contact"
    way = _find_way(sb, corp, params)
    if way is None:
        # No contact way at all: the customer found a member by phone number (add_way 2), no State.
        members = [m for m in _active_members(corp) if len(m.follows) < corp.settings.member_customer_cap]
        if not members:
            raise WorldError("the corp has no member who can take a customer", 409)
        member = _member(corp, params["userid"]) if params.get("userid") else sb.rng.choice(members)
        return add_customer(
            sb, corp, member, _customer(sb, corp, params), params, state="", add_way=2, change=change
        )
    if way.is_temp and sb.clock.now() > way.create_time + way.expires_in:
        raise WorldError(f"temporary contact way {way.config_id} has expired", 410)
    member = _member(corp, params["userid"]) if params.get("userid") else _pick_user(sb, corp, way)
    result = add_customer(
        sb, corp, member, _customer(sb, corp, params), params, state=way.state, add_way=1, change=change
    )
    result["config_id"] = way.config_id
    return result


@action("add_half")
def add_half(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """A customer adds a member through a no-verification way before the member confirms."""
    return scan(sb, corp, {**params, "half": True})


@action("confirm_half")
def confirm_half(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """The member confirms a customer who came through add_half: add_external_contact follows, with a
    WelcomeCode only if the add_half code was not used to send the welcome already (Doc 92130)."""
    f = _random_follow(sb, corp, params)
    now = sb.clock.now()
    codes = [
        c
        for c in corp.welcome_codes.values()
        if c.userid == f.userid and c.external_userid == f.external_userid
    ]
    code = (
        ""
        if any(c.used_at is not None for c in codes)
        else _issue_code(sb, corp, f.userid, f.external_userid, now)
    )
    xml = change_external_contact(
        corp.corp_id,
        now,
        "add_external_contact",
        f.userid,
        f.external_userid,
        State=f.state,
        WelcomeCode=code,
    )
    n = _emit(sb, corp, params, xml, "change_external_contact:add_external_contact")
    detail = {"userid": f.userid, "external_userid": f.external_userid, "welcome_code": code, "deliveries": n}
    sb.audit.world(now, corp.corp_id, "confirm_half", detail)
    return detail


@action("del_follow_user")
def del_follow_user(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """The customer deletes the member. The member still lists the customer, but sends fail."""
    f = _random_follow(sb, corp, params)
    now = sb.clock.now()
    f.deleted_by_customer = True
    xml = change_external_contact(corp.corp_id, now, "del_follow_user", f.userid, f.external_userid)
    n = _emit(sb, corp, params, xml, "change_external_contact:del_follow_user")
    detail = {"userid": f.userid, "external_userid": f.external_userid, "deliveries": n}
    sb.audit.world(now, corp.corp_id, "del_follow_user", detail)
    return detail


@action("del_external_contact")
def del_external_contact(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """The member deletes the customer in the client."""
    f = _random_follow(sb, corp, params)
    now = sb.clock.now()
    sb.unlink(corp, f.userid, f.external_userid)
    xml = change_external_contact(corp.corp_id, now, "del_external_contact", f.userid, f.external_userid)
    n = _emit(sb, corp, params, xml, "change_external_contact:del_external_contact")
    detail = {"userid": f.userid, "external_userid": f.external_userid, "deliveries": n}
    sb.audit.world(now, corp.corp_id, "del_external_contact", detail)
    return detail


@action("edit_external_contact")
def edit_external_contact(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """The member edits the remark or corp tags of a customer in the client."""
    f = _random_follow(sb, corp, params)
    now = sb.clock.now()
    if "remark" in params:
        f.remark = str(params["remark"])[:20]
    if "description" in params:
        f.description = str(params["description"])[:150]
    add = [t for t in params.get("add_tag", []) if t in corp.tags]
    remove = set(params.get("remove_tag", []))
    if not ("remark" in params or "description" in params or add or remove) and corp.tags:
        add = [sb.rng.choice(list(corp.tags))]
    f.tags = tuple(t for t in dict.fromkeys([*f.tags, *add]) if t not in remove)
    xml = change_external_contact(corp.corp_id, now, "edit_external_contact", f.userid, f.external_userid)
    n = _emit(sb, corp, params, xml, "change_external_contact:edit_external_contact")
    detail = {"userid": f.userid, "external_userid": f.external_userid, "tags": list(f.tags), "deliveries": n}
    sb.audit.world(now, corp.corp_id, "edit_external_contact", detail)
    return detail


@action("chat")
def chat(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """Member and customer start chatting: a pending welcome code can no longer be used (41051)."""
    f = _random_follow(sb, corp, params)
    f.chatted = True
    hit = 0
    for wc in corp.welcome_codes.values():
        if wc.userid == f.userid and wc.external_userid == f.external_userid and wc.used_at is None:
            wc.chatted = True
            hit += 1
    detail = {"userid": f.userid, "external_userid": f.external_userid, "codes_invalidated": hit}
    sb.audit.world(sb.clock.now(), corp.corp_id, "chat", detail)
    return detail


# --- groups ---------------------------------------------------------------------------------------
def _chat(corp: Corp, chat_id: str) -> GroupChat:
    chat = corp.groups.get(chat_id)
    if chat is None or chat.dismissed:
        raise WorldError(f"unknown group {chat_id!r}", 404)
    return chat


def make_group(
    sb: Sandbox, corp: Corp, owner: Member, name: str, now: float, *, chat_id: str | None = None
) -> GroupChat:
    chat = GroupChat(chat_id=chat_id or sb.ids.chat_id(), name=name, owner=owner.userid, create_time=int(now))
    chat.members[owner.userid] = GroupMember(owner.userid, 1, int(now), 1, name=owner.name)
    corp.groups[chat.chat_id] = chat
    corp.group_order.add(chat.chat_id)
    corp.count_owner(owner.userid, +1)
    return chat


def _join(
    sb: Sandbox,
    corp: Corp,
    chat: GroupChat,
    customer: Customer,
    params: dict[str, Any],
    *,
    scene: int,
    invitor: str,
    state: str,
) -> dict[str, Any]:
    now = sb.clock.now()
    last = member_version(chat)
    chat.members[customer.external_userid] = GroupMember(
        customer.external_userid,
        2,
        int(now),
        scene,
        invitor=invitor,
        name=customer.name,
        unionid=customer.unionid,
        state=state,
    )
    chat.version += 1
    cur = member_version(chat)
    xml = change_external_chat(
        corp.corp_id,
        now,
        chat.chat_id,
        "update",
        update_detail="add_member",
        join_scene=scene,
        members=[customer.external_userid],
        last_mem_ver=last,
        cur_mem_ver=cur,
    )
    n = _emit(sb, corp, params, xml, "change_external_chat:update")
    detail = {
        "chat_id": chat.chat_id,
        "external_userid": customer.external_userid,
        "join_scene": scene,
        "state": state,
        "members": len(chat.members),
        "last_mem_ver": last,
        "cur_mem_ver": cur,
        "deliveries": n,
    }
    sb.audit.world(now, corp.corp_id, "join_group", detail)
    return detail


def _auto_room(sb: Sandbox, corp: Corp, way: JoinWay, params: dict[str, Any]) -> GroupChat:
    """auto_create_room: WeCom opens a new group named room_base_name + room_base_id when all are full.
    Our reading: the new group joins the way's list; at 5 chats the oldest full one makes room."""
    now = sb.clock.now()
    last = corp.groups[way.chat_id_list[-1]]
    owner = corp.active_member(last.owner) or _member(corp, last.owner)
    base = way.room_base_name or last.name
    chat = make_group(sb, corp, owner, f"{base}{way.room_base_id}", now)
    way.room_base_id += 1
    if len(way.chat_id_list) >= 5:
        way.chat_id_list.pop(0)
    way.chat_id_list.append(chat.chat_id)
    xml = change_external_chat(corp.corp_id, now, chat.chat_id, "create")
    _emit(sb, corp, params, xml, "change_external_chat:create")
    sb.audit.world(
        now, corp.corp_id, "auto_create_room", {"config_id": way.config_id, "chat_id": chat.chat_id}
    )
    return chat


@action("join_group")
def join_group(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """Someone joins a customer group: by a join way's QR code (config_id; JoinScene 3) or invited by a
    member (chat_id; JoinScene 1). QR joins stop at the QR capacity (200), groups at 500."""
    s = corp.settings
    config_id = params.get("config_id")
    if not config_id and not params.get("chat_id") and corp.join_ways:
        config_id = sb.rng.choice(list(corp.join_ways))
    if config_id:
        way = corp.join_ways.get(config_id)
        if way is None:
            raise WorldError(f"unknown join way {config_id!r}", 404)
        chats = [
            corp.groups[c] for c in way.chat_id_list if c in corp.groups and not corp.groups[c].dismissed
        ]
        room = next((c for c in chats if len(c.members) < min(s.qr_capacity, s.group_size_cap)), None)
        if room is None and way.auto_create_room and chats:
            room = _auto_room(sb, corp, way, params)
        if room is None:
            sb.audit.finding(
                sb.clock.now(),
                corp.corp_id,
                "capacity",
                {
                    "config_id": way.config_id,
                    "chat_ids": list(way.chat_id_list),
                    "reason": f"every group of the join way is at the QR capacity ({s.qr_capacity})",
                },
            )
            raise WorldError(f"every group of join way {way.config_id} is full", 409)
        result = _join(
            sb, corp, room, _customer(sb, corp, params), params, scene=3, invitor="", state=way.state
        )
        result["config_id"] = way.config_id
        return result
    if params.get("chat_id"):
        chat = _chat(corp, params["chat_id"])
    else:
        live = [c for c in corp.groups.values() if not c.dismissed]
        if not live:
            raise WorldError("the corp has no group", 409)
        chat = sb.rng.choice(live)
    if len(chat.members) >= s.group_size_cap:
        sb.audit.finding(
            sb.clock.now(),
            corp.corp_id,
            "capacity",
            {
                "chat_id": chat.chat_id,
                "reason": f"group is at its size cap ({s.group_size_cap})",
            },
        )
        raise WorldError(f"group {chat.chat_id} is full", 409)
    invitor = str(params.get("invitor") or chat.owner)
    return _join(sb, corp, chat, _customer(sb, corp, params), params, scene=1, invitor=invitor, state="")


@action("leave_group")
def leave_group(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """A customer leaves a group (QuitScene 0) or is removed by the owner (removed=true: QuitScene 1)."""
    if params.get("chat_id"):
        chat = _chat(corp, params["chat_id"])
    else:
        live = [c for c in corp.groups.values() if not c.dismissed and len(c.members) > 1]
        if not live:
            raise WorldError("no group with a customer in it", 409)
        chat = sb.rng.choice(live)
    who = params.get("external_userid") or params.get("userid")
    if not who:
        others = [k for k, m in chat.members.items() if k != chat.owner]
        if not others:
            raise WorldError(f"group {chat.chat_id} has nobody but its owner", 409)
        who = sb.rng.choice(others)
    if who == chat.owner or who not in chat.members:
        raise WorldError(f"{who!r} cannot leave group {chat.chat_id}", 409)
    now = sb.clock.now()
    last = member_version(chat)
    del chat.members[who]
    chat.version += 1
    cur = member_version(chat)
    quit_scene = 1 if params.get("removed") else 0
    xml = change_external_chat(
        corp.corp_id,
        now,
        chat.chat_id,
        "update",
        update_detail="del_member",
        quit_scene=quit_scene,
        members=[who],
        last_mem_ver=last,
        cur_mem_ver=cur,
    )
    n = _emit(sb, corp, params, xml, "change_external_chat:update")
    detail = {
        "chat_id": chat.chat_id,
        "id": who,
        "quit_scene": quit_scene,
        "last_mem_ver": last,
        "cur_mem_ver": cur,
        "deliveries": n,
    }
    sb.audit.world(now, corp.corp_id, "leave_group", detail)
    return detail


@action("create_group")
def create_group(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """A member creates a customer group in the client (change_external_chat create)."""
    members = _active_members(corp)
    if params.get("owner"):
        owner = _member(corp, params["owner"])
    elif members:
        owner = sb.rng.choice(members)
    else:
        raise WorldError("the corp has no active member", 409)
    now = sb.clock.now()
    chat = make_group(sb, corp, owner, str(params.get("name") or f"{owner.name}的客户群"), now)
    xml = change_external_chat(corp.corp_id, now, chat.chat_id, "create")
    n = _emit(sb, corp, params, xml, "change_external_chat:create")
    detail = {"chat_id": chat.chat_id, "owner": owner.userid, "name": chat.name, "deliveries": n}
    sb.audit.world(now, corp.corp_id, "create_group", detail)
    return detail


@action("dismiss_group")
def dismiss_group(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    chat = _chat(corp, str(params.get("chat_id", "")))
    now = sb.clock.now()
    chat.dismissed = True
    corp.group_order.remove(chat.chat_id)
    corp.count_owner(chat.owner, -1)
    xml = change_external_chat(corp.corp_id, now, chat.chat_id, "dismiss")
    n = _emit(sb, corp, params, xml, "change_external_chat:dismiss")
    detail = {"chat_id": chat.chat_id, "deliveries": n}
    sb.audit.world(now, corp.corp_id, "dismiss_group", detail)
    return detail


# --- members --------------------------------------------------------------------------------------
@action("add_member")
def add_member(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """The admin adds a member in the console (change_contact create_user)."""
    now = sb.clock.now()
    name, stem = member_name(sb.rng)
    userid = str(params.get("userid") or unique_userid(stem, corp.members))
    if userid in corp.members:
        raise WorldError(f"userid {userid!r} exists", 409)
    dept = [int(d) for d in params.get("department", [1])]
    corp.members[userid] = Member(
        userid=userid,
        name=str(params.get("name") or name),
        department=dept,
        created_at=now,
        position=str(params.get("position", "")),
        status=int(params.get("status", 1)),
        verified=bool(params.get("verified", True)),
        contact_permission=bool(params.get("contact_permission", True)),
    )
    xml = change_contact(corp.corp_id, now, "create_user", userid, Department=",".join(map(str, dept)))
    n = _emit(sb, corp, params, xml, "change_contact:create_user")
    detail = {"userid": userid, "name": corp.members[userid].name, "deliveries": n}
    sb.audit.world(now, corp.corp_id, "add_member", detail)
    return detail


@action("resign")
def resign(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """A member leaves the company (change_contact delete_user). Their customers await succession
    (get_unassigned_list) and their groups show status 1 (owner resigned)."""
    if params.get("userid"):
        member = _member(corp, params["userid"])
    else:
        members = _active_members(corp)
        if len(members) < 2:
            raise WorldError("no member can leave without emptying the corp", 409)
        member = sb.rng.choice(members)
    now = sb.clock.now()
    member.resigned_at = now
    for chat in corp.groups.values():
        if chat.owner == member.userid and not chat.dismissed:
            chat.status = 1
    xml = change_contact(corp.corp_id, now, "delete_user", member.userid)
    n = _emit(sb, corp, params, xml, "change_contact:delete_user")
    detail = {"userid": member.userid, "customers": len(member.follows), "deliveries": n}
    sb.audit.world(now, corp.corp_id, "resign", detail)
    return detail


# --- tags edited in the admin console -------------------------------------------------------------
@action("tag_edit")
def tag_edit(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """The admin edits corp tags in the console (change_external_tag). Console tags belong to no app,
    so apps cannot edit them through the API (81011)."""
    op = str(params.get("op") or sb.rng.choice(("create", "update")))
    now = sb.clock.now()
    events: list[tuple[str, str, str | None]] = []
    if op == "create":
        names = [str(n) for n in params.get("tags") or [f"标签{sb.rng.randint(100, 999)}"]]
        if corp.live_tags() + len(names) > corp.settings.tag_cap:
            raise WorldError(f"the corp is at its tag cap ({corp.settings.tag_cap})", 409)
        group = corp.tag_groups.get(str(params.get("group_id", "")))
        if group is None:
            gname = str(params.get("group_name") or f"分组{sb.rng.randint(100, 999)}")
            group = next((g for g in corp.tag_groups.values() if g.name == gname), None)
            if group is None:
                group = TagGroup(sb.ids.tag_id(), gname, 0, int(now), CONSOLE)
                corp.tag_groups[group.group_id] = group
                events.append(("create", group.group_id, "tag_group"))
        for tag_name in names:
            tag = Tag(sb.ids.tag_id(), tag_name, group.group_id, 0, int(now), CONSOLE)
            corp.tags[tag.id] = tag
            group.tag_ids.append(tag.id)
            events.append(("create", tag.id, "tag"))
    elif op == "update":
        ident = str(params.get("id") or (sb.rng.choice(list(corp.tags)) if corp.tags else ""))
        target: Tag | TagGroup | None = corp.tags.get(ident) or corp.tag_groups.get(ident)
        if target is None:
            raise WorldError(f"unknown tag or group {ident!r}", 404)
        target.name = str(params.get("name") or f"{target.name}′")[:30]
        if "order" in params:
            target.order = int(params["order"])
        events.append(("update", ident, "tag" if isinstance(target, Tag) else "tag_group"))
    elif op == "delete":
        ident = str(params.get("id", ""))
        if ident in corp.tags:
            group_id = corp.tags[ident].group_id
            emptied = delete_tags(corp, [ident], [])
            events.append(("delete", ident, "tag"))
            events.extend(("delete", g, "tag_group") for g in emptied if g == group_id)
        elif ident in corp.tag_groups:
            delete_tags(corp, [], [ident])
            events.append(("delete", ident, "tag_group"))
        else:
            raise WorldError(f"unknown tag or group {ident!r}", 404)
    elif op == "shuffle":
        gid = str(params.get("group_id") or (sb.rng.choice(list(corp.tag_groups)) if corp.tag_groups else ""))
        group = corp.tag_groups.get(gid)
        if group is None:
            raise WorldError(f"unknown tag group {gid!r}", 404)
        sb.rng.shuffle(group.tag_ids)
        for i, t in enumerate(reversed(group.tag_ids)):
            corp.tags[t].order = i
        events.append(("shuffle", gid, None))
    else:
        raise WorldError(f"op must be create, update, delete or shuffle, not {op!r}")
    n = 0
    for change, ident, tag_type in events:
        xml = change_external_tag(corp.corp_id, now, change, ident, tag_type)
        n += _emit(sb, corp, params, xml, f"change_external_tag:{change}")
    detail = {
        "op": op,
        "events": [{"change_type": c, "id": i, "tag_type": t} for c, i, t in events],
        "deliveries": n,
    }
    sb.audit.world(now, corp.corp_id, "tag_edit", detail)
    return detail


# --- mass messages and succession -----------------------------------------------------------------
@action("confirm_msg")
def confirm_msg(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """Members confirm a mass message now (instead of after the configured delay)."""
    msgid = str(params.get("msgid", ""))
    tpl = corp.templates.get(msgid)
    if tpl is None:
        raise WorldError(f"unknown msgid {msgid!r}", 404)
    users = [params["userid"]] if params.get("userid") else list(tpl.tasks)
    done = [u for u in users if confirm(sb, corp, msgid, u)]
    return {"msgid": msgid, "confirmed": done}


@action("refuse_transfer")
def refuse_transfer(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """The customer refuses a pending transfer (status 3, transfer_fail customer_refused)."""
    ext = str(params.get("external_userid", ""))
    if not refuse(sb, corp, ext):
        raise WorldError(f"no pending transfer for {ext!r}", 404)
    return {"external_userid": ext, "status": 3}
