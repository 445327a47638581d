"""WeCom errcodes mapped to a small tree of exceptions (API.md §5, Doc 90313).

WeComError
├── TransientError            retry with backoff: -1, 41063, timeouts, network, 5xx
│   ├── RateLimited           45009 (or our own budget/breaker): retry after ``retry_after``
│   ├── ConcurrencyLimited    45033 (or our own concurrency cap)
│   ├── WelcomeBusy           41096: retry only inside the 20-s welcome window
│   └── TokenInvalid          40014/42001 still rejected after one refresh and one retry
└── PermanentError            don't retry; ``category`` says what to do instead
    ├── ConfigError           40001, 40013, 48002, 84074, 301002, 60020: stop, tell the admin
    ├── WelcomeCodeInvalid    41050
    └── WelcomeAlreadySent    41051
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from wecom.messages import message_for


class Category(StrEnum):
    """What the product should do about an error."""

    RETRY = "retry"  # transient: back off and retry
    CONFIG = "config"  # the corp's setup is wrong: stop this corp's calls, tell the admin
    ADMIN = "admin"  # this item can't be done until an admin acts: give up, tell the admin
    GIVE_UP = "give_up"  # this item can't be done: mark it failed
    RESYNC = "resync"  # our copy is stale (40068 tags): re-sync, then retry
    ADJUST = "adjust"  # the request must be reshaped (81017: page groupchat/list by owner)
    BUG = "bug"  # our request was malformed


TOKEN_ERRCODES = frozenset({40014, 42001})


class WeComError(Exception):
    """A failed WeCom call. ``errcode`` is None when WeCom never answered with one."""

    retryable = False
    default_category = Category.BUG

    def __init__(
        self,
        errcode: int | None,
        errmsg: str = "",
        *,
        hint: str | None = None,
        api: str | None = None,
        category: Category | None = None,
        retry_after: float | None = None,
        http_status: int | None = None,
        message_key: int | str | None = None,
    ) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.hint = hint
        self.api = api
        self.category = category or self.default_category
        # Seconds until a retry may succeed, when known (45009 breaker, our own budget).
        self.retry_after = retry_after
        self.http_status = http_status
        self.message_key: int | str | None = message_key if message_key is not None else errcode
        super().__init__(errcode, errmsg)

    def __str__(self) -> str:
        parts = [f"errcode={self.errcode}"]
        if self.api:
            parts.append(f"api={self.api}")
        if self.http_status is not None:
            parts.append(f"http_status={self.http_status}")
        if self.hint:
            parts.append(f"hint={self.hint}")
        if self.retry_after is not None:
            parts.append(f"retry_after={self.retry_after:.3f}s")
        return f"{self.errmsg or type(self).__name__} ({', '.join(parts)})"

    def message(self, lang: str = "zh-hans") -> str:
        """Plain-language explanation for the dashboard."""
        return message_for(self.message_key, lang)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep every attribute across pickling (Celery result backends, multiprocessing).
        return (_restore, (type(self), dict(self.__dict__)))


def _restore(cls: type[WeComError], state: dict[str, Any]) -> WeComError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    error.args = (state.get("errcode"), state.get("errmsg", ""))
    return error


class TransientError(WeComError):
    retryable = True
    default_category = Category.RETRY


class RateLimited(TransientError):
    """45009, or our limiter refusing a call; ``retry_after`` says when to try again."""


class ConcurrencyLimited(TransientError):
    """45033, or our adaptive concurrency cap refusing a call."""


class WelcomeBusy(TransientError):
    """41096: another app is sending the welcome message; retry only while the 20 s last."""


class TokenInvalid(TransientError):
    """A freshly fetched access_token was rejected too (40014/42001 after one refresh and retry)."""


class PermanentError(WeComError):
    default_category = Category.GIVE_UP


class ConfigError(PermanentError):
    default_category = Category.CONFIG


class WelcomeCodeInvalid(PermanentError):
    """41050: the welcome code expired (20 s) or is invalid."""


class WelcomeAlreadySent(PermanentError):
    """41051: a welcome message was already delivered, or they already chatted."""


# Every code of API.md §5; unknown codes become PermanentError(GIVE_UP) so nothing retries forever.
ERRCODES: dict[int, tuple[type[WeComError], Category]] = {
    -1: (TransientError, Category.RETRY),
    41063: (TransientError, Category.RETRY),
    45009: (RateLimited, Category.RETRY),
    45033: (ConcurrencyLimited, Category.RETRY),
    41096: (WelcomeBusy, Category.RETRY),
    40014: (TokenInvalid, Category.RETRY),
    42001: (TokenInvalid, Category.RETRY),
    40001: (ConfigError, Category.CONFIG),
    40013: (ConfigError, Category.CONFIG),
    48002: (ConfigError, Category.CONFIG),
    84074: (ConfigError, Category.CONFIG),
    301002: (ConfigError, Category.CONFIG),
    60020: (ConfigError, Category.CONFIG),
    41001: (PermanentError, Category.BUG),
    40003: (PermanentError, Category.ADMIN),
    60011: (PermanentError, Category.ADMIN),
    81013: (PermanentError, Category.ADMIN),
    40098: (PermanentError, Category.ADMIN),
    40099: (PermanentError, Category.ADMIN),
    40068: (PermanentError, Category.RESYNC),
    40096: (PermanentError, Category.GIVE_UP),
    41048: (PermanentError, Category.GIVE_UP),
    84061: (PermanentError, Category.GIVE_UP),
    90500: (PermanentError, Category.GIVE_UP),
    90501: (PermanentError, Category.GIVE_UP),
    41050: (WelcomeCodeInvalid, Category.GIVE_UP),
    41051: (WelcomeAlreadySent, Category.GIVE_UP),
    81017: (PermanentError, Category.ADJUST),
}

_HINT = re.compile(r"hint:\s*\[([^\]]*)\]")


def hint_of(payload: Mapping[str, Any]) -> str | None:
    """WeCom's request id: the ``hint`` field, or the ``hint: [...]`` part of errmsg."""
    hint = payload.get("hint")
    if isinstance(hint, str) and hint:
        return hint
    match = _HINT.search(str(payload.get("errmsg", "")))
    return match.group(1) if match else None


def error_for(
    errcode: int,
    errmsg: str = "",
    *,
    api: str | None = None,
    hint: str | None = None,
    retry_after: float | None = None,
) -> WeComError:
    """The exception for a non-zero errcode."""
    cls, category = ERRCODES.get(errcode, (PermanentError, Category.GIVE_UP))
    return cls(errcode, errmsg, hint=hint, api=api, category=category, retry_after=retry_after)


def error_from_response(payload: Mapping[str, Any], *, api: str | None = None) -> WeComError:
    """The exception for a WeCom JSON answer whose errcode is not 0."""
    return error_for(
        int(payload.get("errcode", 0)),
        str(payload.get("errmsg", "")),
        api=api,
        hint=hint_of(payload),
    )
