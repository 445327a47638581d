"""Welcome messages for new customers (20 s, single use) and group welcome templates."""

from __future__ import annotations

from typing import Any

from ..errors import ApiError
from ..models import GroupWelcomeTemplate
from . import Call, api, get_dict, get_int, get_str
from .media import check_attachment, check_attachments

TEXT_MAX_BYTES = 4000


def _text(body: dict[str, Any]) -> str:
    text = get_dict(body, "text")
    content = text.get("content", "")
    if not isinstance(content, str):
        raise ApiError(40058, "text.content must be a string")
    if len(content.encode()) > TEXT_MAX_BYTES:
        raise ApiError(45002, f"text.content exceeds {TEXT_MAX_BYTES} bytes")
    return content


# Reference: Doc 92137 (发送新客户欢迎语)
@api("externalcontact/send_welcome_msg", "POST")
def send_welcome_msg(call: Call) -> dict[str, Any]:
    body, corp, now = call.body, call.corp, call.now
    content = _text(body)
    attachments = check_attachments(call, body.get("attachments"))
    if not content and not attachments:
        raise ApiError(40058, "text and attachments are both empty")
    code_value = get_str(body, "welcome_code", required=True, code=41050)
    code = corp.welcome_codes.get(code_value)
    if code is None:
        raise ApiError(41050, "unknown welcome_code")
    if code.used_at is not None or code.chatted:
        raise ApiError(41051)
    delay = now - code.created_at
    if delay > corp.settings.welcome_window:
        call.sb.audit.welcome_event(corp.corp_id, "late")
        call.sb.audit.finding(
            now,
            corp.corp_id,
            "late_welcome",
            {
                "welcome_code": code_value,
                "userid": code.userid,
                "external_userid": code.external_userid,
                "delay": round(delay, 3),
            },
        )
        raise ApiError(41050, f"welcome_code expired {delay:.1f}s after the event")
    if code.busy_until > now:
        raise ApiError(41096)
    code.used_at = now
    follow = (
        corp.members[code.userid].follows.get(code.external_userid) if code.userid in corp.members else None
    )
    if follow is not None:
        follow.chatted = True
    call.sb.audit.welcome_event(corp.corp_id, "sent", delay)
    call.sb.audit.world(
        now,
        corp.corp_id,
        "welcome_sent",
        {
            "welcome_code": code_value,
            "userid": code.userid,
            "external_userid": code.external_userid,
            "delay": round(delay, 3),
            "text": content[:200],
            "attachments": len(attachments),
        },
    )
    return {}


_GROUP_WELCOME_KINDS = ("image", "link", "miniprogram", "file", "video")


def _group_welcome_body(call: Call) -> dict[str, Any]:
    body = call.body
    content = _text(body)
    out: dict[str, Any] = {"text": {"content": content}}
    present = [k for k in _GROUP_WELCOME_KINDS if body.get(k)]
    if len(present) > 1:
        raise ApiError(40058, "only one of image/link/miniprogram/file/video")
    for k in present:
        check_attachment(call, k, body[k])
        out[k] = body[k]
    if not content and not present:
        raise ApiError(40058, "text and attachment are both empty")
    return out


def _template(call: Call) -> GroupWelcomeTemplate:
    tid = get_str(call.body, "template_id", required=True)
    tpl = call.corp.group_welcome_templates.get(tid)
    if tpl is None:
        raise ApiError(40058, f"template_id {tid}")
    return tpl


def _own(call: Call, tpl: GroupWelcomeTemplate) -> None:
    # An app edits only its own templates (Doc 92366); the errcode is not documented: 60011, stricter.
    if tpl.creator != call.app.agent_id:
        raise ApiError(60011, f"template {tpl.template_id} belongs to another app")


# Reference: Doc 92366 (添加入群欢迎语素材)
@api("externalcontact/group_welcome_template/add", "POST")
def group_welcome_add(call: Call) -> dict[str, Any]:
    corp = call.corp
    body = _group_welcome_body(call)
    if len(corp.group_welcome_templates) >= corp.settings.group_welcome_cap:
        raise ApiError(41055, f"cap {corp.settings.group_welcome_cap}")
    tpl = GroupWelcomeTemplate(
        call.sb.ids.template_id(), call.app.agent_id, body, get_int(call.body, "notify", 1, 0, 1)
    )
    corp.group_welcome_templates[tpl.template_id] = tpl
    return {"template_id": tpl.template_id}


# Reference: Doc 92366 (编辑入群欢迎语素材)
@api("externalcontact/group_welcome_template/edit", "POST")
def group_welcome_edit(call: Call) -> dict[str, Any]:
    tpl = _template(call)
    _own(call, tpl)
    tpl.body = _group_welcome_body(call)
    return {}


# Reference: Doc 92366 (获取入群欢迎语素材)
@api("externalcontact/group_welcome_template/get", "POST")
def group_welcome_get(call: Call) -> dict[str, Any]:
    return dict(_template(call).body)


# Reference: Doc 92366 (删除入群欢迎语素材)
@api("externalcontact/group_welcome_template/del", "POST")
def group_welcome_del(call: Call) -> dict[str, Any]:
    tpl = _template(call)
    _own(call, tpl)
    del call.corp.group_welcome_templates[tpl.template_id]
    return {}
