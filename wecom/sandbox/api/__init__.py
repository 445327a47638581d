"""Registry of simulated WeCom APIs plus the request-parameter checks they share.

Each handler is a plain synchronous function `(call) -> dict`; the dispatcher in `server.py` does
token checks, limits, faults, JSON and audit around it. Handlers raise `ApiError` for errcodes."""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ApiError
from ..models import App, KeyOrder, Member
from ..state import Corp, Sandbox


@dataclass(slots=True)
class Call:
    sb: Sandbox
    corp: Corp
    app: App
    query: Any  # multidict-like: .get(key)
    body: dict[str, Any]
    now: float
    path: str = ""
    files: dict[str, tuple[str, bytes]] | None = None


Handler = Callable[[Call], dict[str, Any]]


@dataclass(slots=True)
class ApiSpec:
    path: str
    method: str
    fn: Handler
    multipart: bool = False


REGISTRY: dict[str, ApiSpec] = {}


def api(path: str, method: str = "POST", *, multipart: bool = False) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        REGISTRY[path] = ApiSpec(path, method, fn, multipart)
        return fn

    return deco


# --- parameters -----------------------------------------------------------------------------------
_MISSING = object()


def get_str(
    src: Any,
    key: str,
    *,
    required: bool = False,
    max_chars: int | None = None,
    max_bytes: int | None = None,
    code: int = 40058,
    missing: int | None = None,
    default: str = "",
) -> str:
    value = src.get(key, _MISSING)
    if value is _MISSING or value is None or value == "":
        if required:
            raise ApiError(missing or code, f"{key} missing")
        return default
    if not isinstance(value, str):
        raise ApiError(code, f"{key} must be a string")
    if max_chars is not None and len(value) > max_chars:
        raise ApiError(code, f"{key} exceeds {max_chars} chars")
    if max_bytes is not None and len(value.encode()) > max_bytes:
        raise ApiError(code, f"{key} exceeds {max_bytes} bytes")
    return value


def get_int(
    src: Any, key: str, default: int, lo: int | None = None, hi: int | None = None, *, code: int = 40058
) -> int:
    value = src.get(key, _MISSING)
    if value is _MISSING or value is None or value == "":
        return default
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, str):
        # Query strings are strings; JSON bodies with "10" are accepted by WeCom as well.
        try:
            value = int(value)
        except ValueError:
            raise ApiError(code, f"{key} must be an integer") from None
    if not isinstance(value, int):
        raise ApiError(code, f"{key} must be an integer")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ApiError(code, f"{key} out of range [{lo}, {hi}]")
    return value


def get_bool(src: Any, key: str, default: bool) -> bool:
    value = src.get(key, _MISSING)
    if value is _MISSING or value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ApiError(40058, f"{key} must be a boolean")


def get_list(
    src: Any, key: str, *, max_items: int | None = None, code: int = 40058, item: type = str
) -> list[Any]:
    value = src.get(key, _MISSING)
    if value is _MISSING or value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, item) and not isinstance(v, bool) for v in value):
        raise ApiError(code, f"{key} must be a list of {item.__name__}")
    if max_items is not None and len(value) > max_items:
        raise ApiError(code, f"{key} exceeds {max_items} items")
    return value


def get_dict(src: Any, key: str) -> dict[str, Any]:
    value = src.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(40058, f"{key} must be an object")
    return value


# --- shared lookups -------------------------------------------------------------------------------
def member_of(call: Call, userid: str, *, contact: bool = False) -> Member:
    """A member visible to the calling app; 40003 if unknown or resigned, 60011 outside visibility."""
    if not userid:
        raise ApiError(41009)
    member = call.corp.members.get(userid)
    if member is None or member.resigned_at is not None:
        raise ApiError(40003, f"userid {userid}")
    if not call.sb.visible(call.app, userid):
        raise ApiError(60011, f"userid {userid}")
    if contact and not member.contact_permission:
        # Outside the admin's 客户联系 range. Not 84074, which is about the app; 60011 (no privilege)
        # is our reading.
        raise ApiError(60011, f"userid {userid} has no customer contact permission")
    return member


# --- cursors --------------------------------------------------------------------------------------
def encode_cursor(*parts: object) -> str:
    raw = "|".join(str(p) for p in parts).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(40058, "invalid cursor") from None
    parts = raw.split("|")
    if len(parts) != n:
        raise ApiError(40058, "invalid cursor")
    return parts


def resume(order: KeyOrder, pos: int, last: str) -> int:
    """Position after `last`, robust to the list having been compacted since the cursor was made."""
    keys = order.keys
    if 0 < pos <= len(keys) and keys[pos - 1] == last:
        return pos
    if last:
        try:
            return keys.index(last) + 1
        except ValueError:
            pass
    return min(max(pos, 0), len(keys))


def page(
    order: KeyOrder, start: int, limit: int, wanted: Callable[[str], bool] | None = None
) -> tuple[list[str], int]:
    """Up to `limit` live (and wanted) keys from position `start`; returns (keys, next position)."""
    keys, dead = order.keys, order.dead
    if not dead and wanted is None:
        out = keys[start : start + limit]
        return out, start + len(out)
    out = []
    i, n = start, len(keys)
    while i < n and len(out) < limit:
        key = keys[i]
        i += 1
        if (not dead or key not in dead) and (wanted is None or wanted(key)):
            out.append(key)
    return out, i


def paged(
    order: KeyOrder, cursor: str, limit: int, wanted: Callable[[str], bool] | None = None
) -> tuple[list[str], str]:
    """One page of keys and the next cursor ("" when this page is the last)."""
    start = 0
    if cursor:
        pos, last = decode_cursor(cursor, 2)
        start = resume(order, int(pos) if pos.isdigit() else 0, last)
    keys, nxt = page(order, start, limit, wanted)
    dead = order.dead
    rest = itertools.islice(order.keys, nxt, None)
    more = any((not dead or k not in dead) and (wanted is None or wanted(k)) for k in rest)
    return keys, encode_cursor(nxt, keys[-1]) if more and keys else ""
