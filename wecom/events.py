"""Typed, immutable WeCom callback events, parsed from the decrypted inner XML.

References: Doc 92130 (客户联系回调), Doc 90970 (通讯录回调), Doc 90238 (接收消息与事件).

``parse_event`` never loses data: every element lands in ``raw`` (nested elements as FrozenMap,
repeated ones as tuples), and anything we do not model becomes an ``UnknownEvent``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal, TypeAlias, cast
from xml.etree.ElementTree import Element

from wecom.crypto import XmlError
from wecom.xml import UnsafeXmlError, parse_untrusted

__all__ = [
    "CHAT_UPDATE_DETAILS",
    "AddExternalContact",
    "AddHalfExternalContact",
    "ChatCreate",
    "ChatDismiss",
    "ChatUpdate",
    "DelExternalContact",
    "DelFollowUser",
    "EditExternalContact",
    "Event",
    "EventParseError",
    "FrozenMap",
    "Lane",
    "RawValue",
    "TagCreate",
    "TagDelete",
    "TagShuffle",
    "TagUpdate",
    "TransferFail",
    "UnknownEvent",
    "UserCreate",
    "UserDelete",
    "UserUpdate",
    "event_lane",
    "parse_event",
]

# A leaf element is its text; an element with children (or attributes) is a FrozenMap of them;
# an element name that repeats maps to a tuple of its values, in document order.
RawValue: TypeAlias = "str | FrozenMap | tuple[RawValue, ...]"
Lane: TypeAlias = Literal["realtime", "events"]

# Reference: Doc 92130 — UpdateDetail values of change_external_chat/update. Others are kept as strings.
CHAT_UPDATE_DETAILS = frozenset({"add_member", "del_member", "change_owner", "change_name", "change_notice"})

# Real callbacks nest three levels at most (ExtAttr/Item/Text/Value); a bound keeps recursion safe.
_MAX_DEPTH = 16
_INT_RE = re.compile(r"\s*-?[0-9]{1,20}\s*")


class EventParseError(XmlError):
    """The event XML is unsafe or malformed, or a field the event type requires is missing or invalid."""


class FrozenMap(Mapping[str, "RawValue"]):
    """An immutable, hashable mapping of XML element names to their values."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, RawValue] | Iterable[tuple[str, RawValue]] = ()) -> None:
        self._data: dict[str, RawValue] = dict(data)

    def __getitem__(self, key: str) -> RawValue:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


_Conv = Literal["str", "opt_str", "int", "opt_int", "items"]


def _xml(tag: str, conv: _Conv) -> dict[str, tuple[str, _Conv]]:
    return {"xml": (tag, conv)}


@dataclass(frozen=True, slots=True, kw_only=True)
class _BaseEvent:
    # Reference: Doc 90238 — common fields of every callback. FromUserName is absent from some
    # (e.g. kf_msg_or_event), so it is optional; CreateTime is seconds since the epoch.
    kind: ClassVar[str] = "unknown"

    to_user_name: str = field(metadata=_xml("ToUserName", "str"))
    from_user_name: str | None = field(metadata=_xml("FromUserName", "opt_str"))
    create_time: int = field(metadata=_xml("CreateTime", "int"))
    msg_type: str = field(metadata=_xml("MsgType", "str"))
    event: str | None = field(metadata=_xml("Event", "opt_str"))
    change_type: str | None = field(metadata=_xml("ChangeType", "opt_str"))
    # Every field as received, so nothing is lost; left out of repr because it may hold personal data.
    raw: FrozenMap = field(repr=False)


# Reference: Doc 92130 — change_external_contact events.


@dataclass(frozen=True, slots=True, kw_only=True)
class _ExternalContactEvent(_BaseEvent):
    user_id: str = field(metadata=_xml("UserID", "str"))
    external_user_id: str = field(metadata=_xml("ExternalUserID", "str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class AddExternalContact(_ExternalContactEvent):
    kind: ClassVar[str] = "change_external_contact.add_external_contact"
    state: str | None = field(metadata=_xml("State", "opt_str"))
    welcome_code: str | None = field(metadata=_xml("WelcomeCode", "opt_str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class EditExternalContact(_ExternalContactEvent):
    kind: ClassVar[str] = "change_external_contact.edit_external_contact"


@dataclass(frozen=True, slots=True, kw_only=True)
class AddHalfExternalContact(_ExternalContactEvent):
    kind: ClassVar[str] = "change_external_contact.add_half_external_contact"
    state: str | None = field(metadata=_xml("State", "opt_str"))
    welcome_code: str | None = field(metadata=_xml("WelcomeCode", "opt_str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class DelExternalContact(_ExternalContactEvent):
    kind: ClassVar[str] = "change_external_contact.del_external_contact"
    # DELETE_BY_TRANSFER after an on-job transfer: the customer was not lost.
    source: str | None = field(metadata=_xml("Source", "opt_str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class DelFollowUser(_ExternalContactEvent):
    kind: ClassVar[str] = "change_external_contact.del_follow_user"


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferFail(_ExternalContactEvent):
    kind: ClassVar[str] = "change_external_contact.transfer_fail"
    fail_reason: str = field(metadata=_xml("FailReason", "str"))


# Reference: Doc 92130 — change_external_chat events.


@dataclass(frozen=True, slots=True, kw_only=True)
class _ChatEvent(_BaseEvent):
    chat_id: str = field(metadata=_xml("ChatId", "str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatCreate(_ChatEvent):
    kind: ClassVar[str] = "change_external_chat.create"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatUpdate(_ChatEvent):
    kind: ClassVar[str] = "change_external_chat.update"
    # One of CHAT_UPDATE_DETAILS, or a newer value kept as is.
    update_detail: str = field(metadata=_xml("UpdateDetail", "str"))
    join_scene: int | None = field(metadata=_xml("JoinScene", "opt_int"))
    quit_scene: int | None = field(metadata=_xml("QuitScene", "opt_int"))
    mem_change_cnt: int | None = field(metadata=_xml("MemChangeCnt", "opt_int"))
    # Newer field: absent from older callbacks, hence empty rather than None.
    mem_change_list: tuple[str, ...] = field(metadata=_xml("MemChangeList", "items"))
    last_mem_ver: str | None = field(metadata=_xml("LastMemVer", "opt_str"))
    cur_mem_ver: str | None = field(metadata=_xml("CurMemVer", "opt_str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatDismiss(_ChatEvent):
    kind: ClassVar[str] = "change_external_chat.dismiss"


# Reference: Doc 92130 — change_external_tag events.


@dataclass(frozen=True, slots=True, kw_only=True)
class _TagEvent(_BaseEvent):
    id: str = field(metadata=_xml("Id", "str"))
    # Rule-group (规则组) tags; newer field.
    strategy_id: str | None = field(metadata=_xml("StrategyId", "opt_str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class _TagChangeEvent(_TagEvent):
    # "tag" or "tag_group"
    tag_type: str = field(metadata=_xml("TagType", "str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class TagCreate(_TagChangeEvent):
    kind: ClassVar[str] = "change_external_tag.create"


@dataclass(frozen=True, slots=True, kw_only=True)
class TagUpdate(_TagChangeEvent):
    kind: ClassVar[str] = "change_external_tag.update"


@dataclass(frozen=True, slots=True, kw_only=True)
class TagDelete(_TagChangeEvent):
    kind: ClassVar[str] = "change_external_tag.delete"


@dataclass(frozen=True, slots=True, kw_only=True)
class TagShuffle(_TagEvent):
    # Reorder within a tag group: Id is the group, and there is no TagType.
    kind: ClassVar[str] = "change_external_tag.shuffle"


# Reference: Doc 90970 — change_contact events.
# Callbacks configured after 2022-08-15 carry only UserID and Department; the rest stays in raw.


@dataclass(frozen=True, slots=True, kw_only=True)
class _ContactEvent(_BaseEvent):
    user_id: str = field(metadata=_xml("UserID", "str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCreate(_ContactEvent):
    kind: ClassVar[str] = "change_contact.create_user"


@dataclass(frozen=True, slots=True, kw_only=True)
class UserUpdate(_ContactEvent):
    kind: ClassVar[str] = "change_contact.update_user"
    # Present only when the member's userid itself changed.
    new_user_id: str | None = field(metadata=_xml("NewUserID", "opt_str"))


@dataclass(frozen=True, slots=True, kw_only=True)
class UserDelete(_ContactEvent):
    kind: ClassVar[str] = "change_contact.delete_user"


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(_BaseEvent):
    """Plain messages and every event we do not model; ``raw`` holds all of it."""

    kind: ClassVar[str] = "unknown"


Event: TypeAlias = (
    AddExternalContact
    | EditExternalContact
    | AddHalfExternalContact
    | DelExternalContact
    | DelFollowUser
    | TransferFail
    | ChatCreate
    | ChatUpdate
    | ChatDismiss
    | TagCreate
    | TagUpdate
    | TagDelete
    | TagShuffle
    | UserCreate
    | UserUpdate
    | UserDelete
    | UnknownEvent
)

_TYPED: tuple[type[_BaseEvent], ...] = (
    AddExternalContact,
    EditExternalContact,
    AddHalfExternalContact,
    DelExternalContact,
    DelFollowUser,
    TransferFail,
    ChatCreate,
    ChatUpdate,
    ChatDismiss,
    TagCreate,
    TagUpdate,
    TagDelete,
    TagShuffle,
    UserCreate,
    UserUpdate,
    UserDelete,
)
_BY_KIND: dict[str, type[_BaseEvent]] = {cls.kind: cls for cls in _TYPED}
# (attribute, XML tag, conversion) per class, computed once from the field metadata.
_PLANS: dict[type[_BaseEvent], tuple[tuple[str, str, _Conv], ...]] = {
    cls: tuple((f.name, *f.metadata["xml"]) for f in fields(cls) if "xml" in f.metadata)
    for cls in (*_TYPED, UnknownEvent)
}


def parse_event(xml: str | bytes) -> Event:
    """Parse a decrypted callback into its typed event; raise EventParseError if it is unsafe or invalid."""
    try:
        root = parse_untrusted(xml)
    except UnsafeXmlError as exc:
        raise EventParseError(f"event XML refused: {exc}", reason=exc.reason) from exc
    raw = _value(root, depth=0)
    if not isinstance(raw, FrozenMap):
        raise EventParseError("event XML has no fields", reason="empty")
    cls: type[_BaseEvent] = UnknownEvent
    if raw.get("MsgType") == "event":
        cls = _BY_KIND.get(f"{raw.get('Event')}.{raw.get('ChangeType')}", UnknownEvent)
    values: dict[str, Any] = {attr: _convert(raw, tag, conv, cls) for attr, tag, conv in _PLANS[cls]}
    return cast(Event, cls(raw=raw, **values))


def event_lane(event: Event) -> Lane:
    """Which worker lane handles the event: "realtime" only for adds that can still be welcomed."""
    # Reference: Doc 92137 — a WelcomeCode is valid once, within 20 s of the event.
    if isinstance(event, AddExternalContact | AddHalfExternalContact) and event.welcome_code:
        return "realtime"
    return "events"


def _value(element: Element, *, depth: int) -> RawValue:
    children = list(element)
    if not children and not element.attrib:
        return element.text or ""
    if depth >= _MAX_DEPTH:
        raise EventParseError(f"event XML nests deeper than {_MAX_DEPTH} levels", reason="too_deep")
    grouped: dict[str, list[RawValue]] = {}
    # '@' and '#' cannot start an XML name, so these keys never collide with element names.
    for name, value in element.attrib.items():
        grouped["@" + name] = [value]
    text = "".join([element.text or "", *(child.tail or "" for child in children)])
    if text.strip() or (not children and text):
        grouped["#text"] = [text]
    for child in children:
        grouped.setdefault(child.tag, []).append(_value(child, depth=depth + 1))
    return FrozenMap((name, items[0] if len(items) == 1 else tuple(items)) for name, items in grouped.items())


def _convert(
    raw: FrozenMap, tag: str, conv: _Conv, cls: type[_BaseEvent]
) -> str | int | tuple[str, ...] | None:
    value = raw.get(tag)
    if conv == "items":
        return _items(value, tag, cls)
    if value is None or value == "":
        if conv in ("str", "int"):
            raise EventParseError(
                f"{cls.kind} event: required <{tag}> is missing or empty", reason="missing_field"
            )
        return None
    if not isinstance(value, str):
        raise EventParseError(f"{cls.kind} event: <{tag}> must be a single text value", reason="bad_field")
    if conv in ("int", "opt_int"):
        if not _INT_RE.fullmatch(value):
            raise EventParseError(f"{cls.kind} event: <{tag}> is not an integer", reason="bad_int")
        return int(value)
    return value


def _items(value: RawValue | None, tag: str, cls: type[_BaseEvent]) -> tuple[str, ...]:
    # <MemChangeList><Item>a</Item><Item>b</Item></MemChangeList>; absent or empty means no list.
    if value is None or value == "":
        return ()
    items = value.get("Item") if isinstance(value, FrozenMap) else None
    if isinstance(items, str):
        return (items,)
    if isinstance(items, tuple) and all(isinstance(item, str) for item in items):
        return cast(tuple[str, ...], items)
    raise EventParseError(f"{cls.kind} event: <{tag}> must be a list of <Item> values", reason="bad_field")
