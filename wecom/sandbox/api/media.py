"""Temporary media (valid 3 days) and the attachment checks every message API shares."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from typing import Any

from ..errors import ApiError
from ..ids import secret_token
from ..models import Media
from . import Call, api, get_str

# Doc 90253: type -> (max bytes, allowed extensions or None for any)
MEDIA_LIMITS: dict[str, tuple[int, tuple[str, ...] | None]] = {
    "image": (10 * 1024 * 1024, (".jpg", ".jpeg", ".png")),
    "voice": (2 * 1024 * 1024, (".amr",)),
    "video": (10 * 1024 * 1024, (".mp4",)),
    "file": (20 * 1024 * 1024, None),
}
MIN_BYTES = 5
ATTACHMENT_KINDS = ("image", "link", "miniprogram", "video", "file")


@dataclass(slots=True)
class RawResponse:
    """A non-JSON answer (media/get)."""

    body: bytes
    content_type: str
    headers: dict[str, str]


def media_of(call: Call, media_id: Any, *, kinds: tuple[str, ...] | None = None) -> Media:
    media = call.corp.media.get(media_id) if isinstance(media_id, str) else None
    if media is None or call.now - media.created_at > call.corp.settings.media_ttl:
        raise ApiError(40007, f"media_id {media_id}")
    if kinds is not None and media.type not in kinds:
        raise ApiError(40007, f"media_id {media_id} is a {media.type}, not {'/'.join(kinds)}")
    return media


def check_attachments(call: Call, attachments: Any, *, max_items: int = 9) -> list[dict[str, Any]]:
    if attachments is None:
        return []
    if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
        raise ApiError(40058, "attachments must be a list of objects")
    if len(attachments) > max_items:
        raise ApiError(40058, f"at most {max_items} attachments")
    for a in attachments:
        check_attachment(call, a.get("msgtype"), a.get(a.get("msgtype") or ""))
    return attachments


def check_attachment(call: Call, kind: Any, item: Any) -> None:
    if kind not in ATTACHMENT_KINDS:
        raise ApiError(40008, f"msgtype {kind}")
    if not isinstance(item, dict):
        raise ApiError(40058, f"{kind} body missing")
    if kind == "image":
        if item.get("media_id"):
            media_of(call, item["media_id"], kinds=("image",))
        elif not item.get("pic_url"):
            raise ApiError(40058, "image needs media_id or pic_url")
    elif kind == "link":
        get_str(item, "title", required=True, max_bytes=128)
        get_str(item, "url", required=True, max_bytes=2048)
        get_str(item, "desc", max_bytes=512)
    elif kind == "miniprogram":
        get_str(item, "title", required=True, max_bytes=64)
        get_str(item, "appid", required=True)
        get_str(item, "page", required=True)
        media_of(call, item.get("pic_media_id"), kinds=("image",))
    else:
        media_of(call, item.get("media_id"), kinds=(kind,))


# Reference: Doc 90253 (上传临时素材)
@api("media/upload", "POST", multipart=True)
def upload(call: Call) -> dict[str, Any]:
    kind = get_str(call.query, "type")
    if kind not in MEDIA_LIMITS:
        raise ApiError(40004, f"type {kind}")
    files = call.files or {}
    if "media" not in files:
        raise ApiError(44001, "multipart field 'media' missing")
    filename, data = files["media"]
    max_bytes, exts = MEDIA_LIMITS[kind]
    if exts is not None and not filename.lower().endswith(exts):
        raise ApiError(40005, f"{kind} must be one of {', '.join(exts)}")
    if not data:
        raise ApiError(44001)
    if len(data) < MIN_BYTES or len(data) > max_bytes:
        raise ApiError(40006, f"{kind} size must be {MIN_BYTES}..{max_bytes} bytes")
    media = Media(media_id=secret_token(32), type=kind, filename=filename, created_at=call.now, data=data)
    call.corp.media[media.media_id] = media
    _prune(call)
    return {"errmsg": "", "type": kind, "media_id": media.media_id, "created_at": str(int(call.now))}


def _prune(call: Call) -> None:
    # Expired media stays unusable either way; dropping it bounds memory on long runs.
    corp = call.corp
    if len(corp.media) % 256 == 0:
        ttl = corp.settings.media_ttl
        for mid in [m.media_id for m in corp.media.values() if call.now - m.created_at > ttl]:
            del corp.media[mid]


# Reference: Doc 90254 (获取临时素材)
@api("media/get", "GET")
def get(call: Call) -> Any:
    media = media_of(call, get_str(call.query, "media_id", required=True, code=40007))
    ctype = mimetypes.guess_type(media.filename)[0] or "application/octet-stream"
    return RawResponse(media.data, ctype, {"Content-Disposition": f'attachment; filename="{media.filename}"'})
