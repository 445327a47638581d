"""What a welcome says: variables, time slots, attachments. Pure functions over plain data, so the hot
path renders from cached dicts and the preview renders exactly the same way."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

# Reference: Doc 92137 — text.content ≤ 4000 bytes, attachments ≤ 9.
TEXT_MAX_BYTES = 4000
MAX_ATTACHMENTS = 9
# A media_id this close to its expiry is not used: WeCom could see it expired by the time it arrives.
MEDIA_SAFETY_SECONDS = 120

VARIABLES: dict[str, str | Promise] = {
    "customer_nickname": _("Customer nickname"),
    "member_name": _("Member name"),
    "channel_name": _("Channel name"),
}
# The longest a variable may expand to, for the byte-length check on save.
VARIABLE_MAX_CHARS = {"customer_nickname": 64, "member_name": 64, "channel_name": 30}
_VAR = re.compile(r"\{([A-Za-z_]+)\}")
WEEKDAYS: tuple[tuple[int, str | Promise], ...] = (
    (0, _("Mon")),
    (1, _("Tue")),
    (2, _("Wed")),
    (3, _("Thu")),
    (4, _("Fri")),
    (5, _("Sat")),
    (6, _("Sun")),
)


def unknown_variables(text: str) -> list[str]:
    return sorted({name for name in _VAR.findall(text) if name not in VARIABLES})


def worst_case_bytes(text: str) -> int:
    """Bytes of `text` once every variable is replaced by the longest value it may take (3 bytes/char)."""
    expanded = _VAR.sub(lambda m: "字" * VARIABLE_MAX_CHARS.get(m.group(1), len(m.group(0))), text)
    return len(expanded.encode("utf-8"))


def uses_nickname(text: str) -> bool:
    return "{customer_nickname}" in text


def render_text(text: str, values: Mapping[str, str]) -> str:
    return _VAR.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def in_slot(*, now: datetime, weekdays: Sequence[int], start: time | None, end: time | None) -> bool:
    """`now` (local time) falls on one of `weekdays` (empty: any day) between start and end (none: all
    day). An end before the start spans midnight."""
    if weekdays and now.weekday() not in weekdays:
        return False
    if start is None or end is None or start == end:
        return True
    t = now.time()
    if start < end:
        return start <= t < end
    return t >= start or t < end


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class Attachment:
    """One attachment as cached: the WeCom payload, minus the media_id resolved at send time."""

    kind: str
    body: dict[str, Any]
    media_id: str = ""
    media_expires: float = 0.0  # epoch seconds
    media_name: str = ""

    def payload(self, *, now: float) -> dict[str, Any] | None:
        """The attachments[] item for send_welcome_msg, or None when its media is not usable now."""
        body = dict(self.body)
        if self.kind in ("image", "video", "file", "miniprogram"):
            if not self.media_id or self.media_expires < now + MEDIA_SAFETY_SECONDS:
                return None
            body["pic_media_id" if self.kind == "miniprogram" else "media_id"] = self.media_id
        # Reference: Doc 92137 — {"msgtype": kind, kind: {...}}
        return {"msgtype": self.kind, self.kind: body}


@dataclass(frozen=True)
class Variant:
    weekdays: tuple[int, ...]
    start: time
    end: time
    text: str
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class ScriptContent:
    script_id: int
    text: str
    nickname_fallback: str = ""
    attachments: tuple[Attachment, ...] = ()
    variants: tuple[Variant, ...] = field(default_factory=tuple)

    def pick(self, *, now_local: datetime) -> tuple[str, tuple[Attachment, ...]]:
        """The text and attachments for this moment: the first matching variant, else the script's."""
        for v in self.variants:
            if in_slot(now=now_local, weekdays=v.weekdays, start=v.start, end=v.end):
                return v.text, v.attachments or self.attachments
        return self.text, self.attachments


@dataclass(frozen=True)
class Rendered:
    text: str
    attachments: list[dict[str, Any]]
    skipped_media: int

    @property
    def empty(self) -> bool:
        return not self.text.strip() and not self.attachments


def render(
    content: ScriptContent, *, now_local: datetime, now_epoch: float, values: Mapping[str, str]
) -> Rendered:
    text, attachments = content.pick(now_local=now_local)
    filled = dict(values)
    if not filled.get("customer_nickname"):
        filled["customer_nickname"] = content.nickname_fallback
    payloads: list[dict[str, Any]] = []
    skipped = 0
    for a in attachments[:MAX_ATTACHMENTS]:
        item = a.payload(now=now_epoch)
        if item is None:
            skipped += 1
        else:
            payloads.append(item)
    rendered = render_text(text, filled)
    # Never over WeCom's limit, whatever a variable expanded to.
    encoded = rendered.encode("utf-8")
    if len(encoded) > TEXT_MAX_BYTES:
        rendered = encoded[:TEXT_MAX_BYTES].decode("utf-8", "ignore")
    return Rendered(text=rendered, attachments=payloads, skipped_media=skipped)


# -- (de)serialisation for the caches --------------------------------------------------------------


def attachment_to_json(a: Attachment) -> dict[str, Any]:
    return {"k": a.kind, "b": a.body, "m": a.media_id, "e": a.media_expires, "n": a.media_name}


def attachment_from_json(d: Mapping[str, Any]) -> Attachment:
    return Attachment(
        kind=d["k"],
        body=dict(d["b"]),
        media_id=d.get("m", ""),
        media_expires=d.get("e", 0.0),
        media_name=d.get("n", ""),
    )


def content_to_json(c: ScriptContent) -> dict[str, Any]:
    return {
        "id": c.script_id,
        "t": c.text,
        "f": c.nickname_fallback,
        "a": [attachment_to_json(a) for a in c.attachments],
        "v": [
            {
                "w": list(v.weekdays),
                "s": v.start.strftime("%H:%M"),
                "e": v.end.strftime("%H:%M"),
                "t": v.text,
                "a": [attachment_to_json(a) for a in v.attachments],
            }
            for v in c.variants
        ],
    }


def content_from_json(d: Mapping[str, Any]) -> ScriptContent:
    return ScriptContent(
        script_id=int(d["id"]),
        text=d["t"],
        nickname_fallback=d.get("f", ""),
        attachments=tuple(attachment_from_json(a) for a in d.get("a", [])),
        variants=tuple(
            Variant(
                weekdays=tuple(v["w"]),
                start=parse_hhmm(v["s"]),
                end=parse_hhmm(v["e"]),
                text=v["t"],
                attachments=tuple(attachment_from_json(a) for a in v.get("a", [])),
            )
            for v in d.get("v", [])
        ),
    )
