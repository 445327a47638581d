"""The inner XML of the events WeCom sends (Doc 92130, 92277, 90970), built as WeCom formats them."""

from __future__ import annotations


def cdata(value: str) -> str:
    # "]]>" cannot appear inside CDATA: split it across two sections.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _head(corp_id: str, ts: float, event: str) -> str:
    return (
        f"<xml><ToUserName>{cdata(corp_id)}</ToUserName><FromUserName>{cdata('sys')}</FromUserName>"
        f"<CreateTime>{int(ts)}</CreateTime><MsgType>{cdata('event')}</MsgType><Event>{cdata(event)}</Event>"
    )


def change_external_contact(
    corp_id: str, ts: float, change_type: str, userid: str, external_userid: str, **extra: str
) -> str:
    """add_external_contact / add_half_external_contact (State, WelcomeCode), edit_external_contact,
    del_external_contact (Source), del_follow_user, transfer_fail (FailReason)."""
    parts = [
        _head(corp_id, ts, "change_external_contact"),
        f"<ChangeType>{cdata(change_type)}</ChangeType><UserID>{cdata(userid)}</UserID>",
        f"<ExternalUserID>{cdata(external_userid)}</ExternalUserID>",
    ]
    for key in ("State", "WelcomeCode", "Source", "FailReason"):
        value = extra.get(key)
        if value:
            parts.append(f"<{key}>{cdata(value)}</{key}>")
    parts.append("</xml>")
    return "".join(parts)


def change_external_chat(
    corp_id: str,
    ts: float,
    chat_id: str,
    change_type: str,
    *,
    update_detail: str = "",
    join_scene: int | None = None,
    quit_scene: int | None = None,
    members: list[str] | None = None,
    last_mem_ver: str = "",
    cur_mem_ver: str = "",
) -> str:
    parts = [
        _head(corp_id, ts, "change_external_chat"),
        f"<ChatId>{cdata(chat_id)}</ChatId><ChangeType>{cdata(change_type)}</ChangeType>",
    ]
    if change_type == "update":
        parts.append(f"<UpdateDetail>{cdata(update_detail)}</UpdateDetail>")
        if join_scene is not None:
            parts.append(f"<JoinScene>{join_scene}</JoinScene>")
        if quit_scene is not None:
            parts.append(f"<QuitScene>{quit_scene}</QuitScene>")
        if members is not None:
            items = "".join(f"<Item>{cdata(m)}</Item>" for m in members)
            parts.append(f"<MemChangeCnt>{len(members)}</MemChangeCnt><MemChangeList>{items}</MemChangeList>")
        parts.append(
            f"<LastMemVer>{cdata(last_mem_ver)}</LastMemVer><CurMemVer>{cdata(cur_mem_ver)}</CurMemVer>"
        )
    parts.append("</xml>")
    return "".join(parts)


def change_external_tag(
    corp_id: str,
    ts: float,
    change_type: str,
    ident: str,
    tag_type: str | None,
    strategy_id: int | None = None,
) -> str:
    parts = [_head(corp_id, ts, "change_external_tag"), f"<Id>{cdata(ident)}</Id>"]
    if tag_type is not None:  # shuffle carries the group id and no TagType
        parts.append(f"<TagType>{cdata(tag_type)}</TagType>")
    parts.append(f"<ChangeType>{cdata(change_type)}</ChangeType>")
    if strategy_id is not None:
        parts.append(f"<StrategyId>{strategy_id}</StrategyId>")
    parts.append("</xml>")
    return "".join(parts)


def change_contact(corp_id: str, ts: float, change_type: str, userid: str, **extra: str) -> str:
    """Members (Doc 90970). Callbacks configured after 2022-08-15 carry only UserID and Department."""
    parts = [
        _head(corp_id, ts, "change_contact"),
        f"<ChangeType>{cdata(change_type)}</ChangeType><UserID>{cdata(userid)}</UserID>",
    ]
    for key in ("NewUserID", "Department"):
        value = extra.get(key)
        if value:
            parts.append(f"<{key}>{cdata(value)}</{key}>")
    parts.append("</xml>")
    return "".join(parts)
