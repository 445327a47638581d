"""Mass messages (群发): templates that members confirm in the client, the receive quota, results.

Receive quota (Doc 92135), our reading:
- WeCom enforces the quota itself: when a member confirms, a customer (or group) that has already
  received its allowance for the period is skipped and reported with status 3 ("already received
  another mass message"). Delivered counts are per calendar period in Asia/Shanghai.
- The audit finding "over_quota" counts what the *product* did: each customer (or group) included in a
  template created while the templates already including it in the same period (not cancelled) reach
  the allowance. A compliant product keeps that at 0 by counting before it calls WeCom."""

from __future__ import annotations

from typing import Any

from ..errors import ApiError
from ..ids import EXTERNAL_USERID_RE
from ..models import Follow, MsgTask, MsgTemplate, Recipient
from ..quota import period
from ..state import Corp, Sandbox, task
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
from .media import check_attachments
from .welcome import _text

MAX_SINGLE = 10_000
MAX_GROUPS = 2_000
MONTH = 31 * 86400  # "start and end at most one month apart": a calendar month can have 31 days


def _tag_groups(call: Call) -> list[set[str]]:
    groups = get_list(get_dict(call.body, "tag_filter"), "group_list", item=dict)
    out = []
    for g in groups:
        tags = get_list(g, "tag_list")
        for t in tags:
            if t not in call.corp.tags:
                raise ApiError(40068, t)
        if tags:
            out.append(set(tags))
    return out


def _matches(follow: Follow, tag_groups: list[set[str]]) -> bool:
    # Within a group any tag matches; every group must match.
    return all(any(t in g for t in follow.tags) for g in tag_groups)


def _single_recipients(call: Call, sender: str) -> tuple[dict[str, list[str]], list[str]]:
    corp, body = call.corp, call.body
    ext_ids = get_list(body, "external_userid", max_items=MAX_SINGLE)
    tag_groups = _tag_groups(call)
    fail: list[str] = []
    by_member: dict[str, list[str]] = {}
    if not ext_ids:
        ext_ids = list(corp.members[sender].follows) if sender else list(corp.customers)
    seen: set[str] = set()
    for ext in ext_ids:
        if ext in seen:
            continue
        seen.add(ext)
        customer = corp.customers.get(ext) if EXTERNAL_USERID_RE.match(ext) else None
        if customer is None:
            fail.append(ext)
            continue
        if sender:
            follow = customer.follows.get(sender)
        else:
            # Without sender WeCom picks the member who last chatted with the customer; the sandbox has no
            # chat history, so it takes the most recent live relationship.
            live = [
                f
                for u, f in customer.follows.items()
                if corp.active_member(u) is not None and call.sb.visible(call.app, u)
            ]
            follow = max(live, key=lambda f: f.createtime) if live else None
        if follow is None:
            fail.append(ext)
            continue
        if tag_groups and not _matches(follow, tag_groups):
            continue
        by_member.setdefault(follow.userid, []).append(ext)
    return by_member, fail


def _group_recipients(call: Call, sender: str) -> tuple[dict[str, list[str]], list[str]]:
    corp = call.corp
    chat_ids = get_list(call.body, "chat_id_list", max_items=MAX_GROUPS)
    if not chat_ids:
        chat_ids = [c.chat_id for c in corp.groups.values() if c.owner == sender and not c.dismissed]
    fail: list[str] = []
    ok: list[str] = []
    for cid in dict.fromkeys(chat_ids):
        chat = corp.groups.get(cid)
        (ok if chat is not None and not chat.dismissed and chat.owner == sender else fail).append(cid)
    return ({sender: ok} if ok else {}), fail


# Reference: Doc 92135 (创建企业群发)
@api("externalcontact/add_msg_template", "POST")
def add_msg_template(call: Call) -> dict[str, Any]:
    sb, corp, body, now = call.sb, call.corp, call.body, call.now
    chat_type = get_str(body, "chat_type", default="single")
    if chat_type not in ("single", "group"):
        raise ApiError(40058, "chat_type must be single or group")
    sender = get_str(body, "sender")
    if sender:
        member_of(call, sender, contact=True)
    elif chat_type == "group":
        raise ApiError(40058, "sender is required for chat_type group")
    content = _text(body)
    attachments = check_attachments(call, body.get("attachments"))
    if not content and not attachments:
        raise ApiError(40058, "text and attachments are both empty")
    if chat_type == "single":
        by_member, fail = _single_recipients(call, sender)
    else:
        by_member, fail = _group_recipients(call, sender)
    if not by_member:
        raise ApiError(41048)
    s = corp.settings
    tpl = MsgTemplate(
        msgid=sb.ids.msgid(),
        chat_type=chat_type,
        creator_agent=call.app.agent_id,
        create_time=now,
        sender=sender,
        text={"content": content} if content else {},
        attachments=attachments,
        allow_select=get_bool(body, "allow_select", False),
    )
    key, allowance = period(s.quota_rule, now)
    for userid, targets in by_member.items():
        will = sb.rng.random() < s.confirm_probability
        t = MsgTask(userid, will, now + s.confirm_delay if will else None)
        t.recipients = [Recipient(x, userid) for x in targets]
        tpl.tasks[userid] = t
        if will:
            sb.at(now + s.confirm_delay, "msg_confirm", corp.corp_id, tpl.msgid, userid)
        for x in targets:
            pk = (x, key)
            planned = corp.planned.get(pk, 0)
            if planned >= allowance:
                sb.audit.finding(
                    now,
                    corp.corp_id,
                    "over_quota",
                    {
                        "msgid": tpl.msgid,
                        "target": x,
                        "period": key,
                        "already": planned,
                        "allowance": allowance,
                    },
                )
            corp.planned[pk] = planned + 1
    corp.templates[tpl.msgid] = tpl
    sb.audit.world(
        now,
        corp.corp_id,
        "msg_template_created",
        {
            "msgid": tpl.msgid,
            "chat_type": chat_type,
            "senders": len(by_member),
            "targets": sum(len(v) for v in by_member.values()),
            "fail": len(fail),
            # Who sends to whom, so a checker can find one chunk sent as two templates.
            "sender": sender,
            "recipients": {u: sorted(v) for u, v in by_member.items()},
        },
    )
    return {"fail_list": fail, "msgid": tpl.msgid}


@task("msg_confirm")
def _confirm_task(sb: Sandbox, args: tuple[Any, ...]) -> None:
    corp_id, msgid, userid = args
    corp = sb.corps.get(corp_id)
    if corp is not None:
        confirm(sb, corp, msgid, userid)


def confirm(sb: Sandbox, corp: Corp, msgid: str, userid: str) -> bool:
    """The member taps "send" in the client: deliver to each recipient, within the receive quota."""
    tpl = corp.templates.get(msgid)
    if tpl is None or tpl.cancelled:
        return False
    t = tpl.tasks.get(userid)
    if t is None or t.status == 2:
        return False
    now = sb.clock.now()
    key, allowance = period(corp.settings.quota_rule, now)
    member = corp.active_member(userid)
    for r in t.recipients:
        if tpl.chat_type == "single":
            f = member.follows.get(r.target) if member is not None else None
            reachable = f is not None and not f.deleted_by_customer
        else:
            chat = corp.groups.get(r.target)
            reachable = chat is not None and not chat.dismissed and chat.owner == userid
        if not reachable:
            r.status = 2
            continue
        pk = (r.target, key)
        got = corp.received.get(pk, 0)
        if got >= allowance:
            r.status = 3
            continue
        corp.received[pk] = got + 1
        r.status, r.send_time = 1, int(now)
    t.status, t.send_time = 2, int(now)
    sb.audit.world(now, corp.corp_id, "msg_confirmed", {"msgid": msgid, "userid": userid})
    return True


def _template(call: Call, *, distributed: bool = False) -> MsgTemplate:
    msgid = get_str(call.body, "msgid", required=True)
    tpl = call.corp.templates.get(msgid)
    if tpl is None:
        raise ApiError(40058, f"msgid {msgid}")
    if distributed and call.now - tpl.create_time < call.corp.settings.distribute_seconds:
        raise ApiError(41063)
    return tpl


def _slice(call: Call, items: list[Any], default: int, hi: int) -> tuple[list[Any], str]:
    limit = get_int(call.body, "limit", default, 1, hi)
    cursor = get_str(call.body, "cursor")
    start = int(decode_cursor(cursor, 1)[0]) if cursor else 0
    chunk = items[start : start + limit]
    nxt = start + len(chunk)
    return chunk, encode_cursor(nxt) if nxt < len(items) else ""


# Reference: Doc 93338 (获取群发记录列表)
@api("externalcontact/get_groupmsg_list_v2", "POST")
def get_groupmsg_list_v2(call: Call) -> dict[str, Any]:
    body = call.body
    chat_type = get_str(body, "chat_type", required=True)
    if chat_type not in ("single", "group"):
        raise ApiError(40058, "chat_type must be single or group")
    start = get_int(body, "start_time", 0, 0)
    end = get_int(body, "end_time", 0, 0)
    if not start or not end or end < start or end - start > MONTH:
        raise ApiError(40058, "start_time/end_time required, at most one month apart")
    filter_type = get_int(body, "filter_type", 2, 0, 2)
    creator = get_str(body, "creator")
    found = [
        t
        for t in call.corp.templates.values()
        if t.chat_type == chat_type
        and start <= t.create_time <= end
        and filter_type in (0, 2)  # every API template is "created by the corp" (create_type 0)
        and not creator  # API-created templates have no creator, so a creator filter excludes them
    ]
    chunk, nxt = _slice(call, found, 50, 100)
    items = []
    for t in chunk:
        item: dict[str, Any] = {"msgid": t.msgid, "create_time": str(int(t.create_time)), "create_type": 0}
        if t.text:
            item["text"] = t.text
        item["attachments"] = t.attachments
        items.append(item)
    return {"next_cursor": nxt, "group_msg_list": items}


# Reference: Doc 93338 (获取群发成员发送任务列表)
@api("externalcontact/get_groupmsg_task", "POST")
def get_groupmsg_task(call: Call) -> dict[str, Any]:
    tpl = _template(call, distributed=True)
    chunk, nxt = _slice(call, list(tpl.tasks.values()), 500, 1000)
    tasks = [
        {"userid": t.userid, "status": t.status, **({"send_time": t.send_time} if t.status == 2 else {})}
        for t in chunk
    ]
    return {"next_cursor": nxt, "task_list": tasks}


# Reference: Doc 93338 (获取企业群发成员执行结果)
@api("externalcontact/get_groupmsg_send_result", "POST")
def get_groupmsg_send_result(call: Call) -> dict[str, Any]:
    tpl = _template(call, distributed=True)
    userid = get_str(call.body, "userid", required=True, missing=41009)
    t = tpl.tasks.get(userid)
    recipients = t.recipients if t is not None else []
    chunk, nxt = _slice(call, recipients, 500, 1000)
    id_key = "external_userid" if tpl.chat_type == "single" else "chat_id"
    out = []
    for r in chunk:
        item: dict[str, Any] = {id_key: r.target, "userid": r.userid, "status": r.status}
        if r.status == 1:
            item["send_time"] = r.send_time
        out.append(item)
    return {"next_cursor": nxt, "send_list": out}


# Reference: Doc 93338 (提醒成员群发) — at most 3 times per message per 24 hours.
@api("externalcontact/remind_groupmsg_send", "POST")
def remind_groupmsg_send(call: Call) -> dict[str, Any]:
    sb, corp, now = call.sb, call.corp, call.now
    tpl = _template(call)
    if tpl.cancelled:
        raise ApiError(40058, "msg cancelled")
    recent = [r for r in tpl.reminds if now - r < 86400]
    if len(recent) >= corp.settings.remind_limit:
        # The errcode is not documented; 40058 is the stricter, generic reading.
        raise ApiError(40058, f"at most {corp.settings.remind_limit} reminders per 24 h")
    tpl.reminds = [*recent, now]
    s = corp.settings
    for t in tpl.tasks.values():
        # A reminded member who had not meant to send gets another chance at the same probability.
        if t.status == 0 and not t.will_confirm and sb.rng.random() < s.confirm_probability:
            t.will_confirm, t.confirm_at = True, now + s.confirm_delay
            sb.at(t.confirm_at, "msg_confirm", corp.corp_id, tpl.msgid, t.userid)
    return {}


# Reference: Doc 93338 (停止企业群发)
@api("externalcontact/cancel_groupmsg_send", "POST")
def cancel_groupmsg_send(call: Call) -> dict[str, Any]:
    corp = call.corp
    tpl = _template(call)
    if not tpl.cancelled:
        tpl.cancelled = True
        key, _ = period(corp.settings.quota_rule, tpl.create_time)
        for t in tpl.tasks.values():
            if t.status == 0:
                for r in t.recipients:
                    pk = (r.target, key)
                    corp.planned[pk] = max(0, corp.planned.get(pk, 0) - 1)
    return {}
