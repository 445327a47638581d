"""The access_token of one (corp, app), shared by every process through Redis (Doc 91039).

gettoken burns quota and returns the same token until it expires, so exactly one process fetches it:
whoever takes the Redis lock calls gettoken; the others wait on the cache for a bounded time. Inside
the last ``refresh_ahead`` seconds the token is still served while one process refreshes it.

The token never goes into a log line or an exception message.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable

from redis import Redis

from wecom.errors import TransientError, WeComError, error_for

logger = logging.getLogger("wecom.token")

# Returns {token | nil, pttl, lifetime_ms | nil, last_error | nil}.
_READ = """
local v = redis.call('HMGET', KEYS[1], 'token', 'lifetime_ms')
return {v[1], redis.call('PTTL', KEYS[1]), v[2], redis.call('GET', KEYS[2])}
"""

# ARGV: token, lifetime_ms.
_STORE = """
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'lifetime_ms', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
"""

# Drop the cached token only if it is the one WeCom rejected: when several processes see 40014 for
# the same stale token, the first invalidates and refreshes, the others find the new one.
_INVALIDATE = """
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

Fetch = Callable[[], tuple[str, int]]


class TokenCache:
    """Cached access_token for one (corp, app).

    ``fetch`` calls gettoken and returns ``(access_token, expires_in)``; it raises WeComError on
    failure. It is only ever called by the holder of the refresh lock.
    """

    def __init__(
        self,
        *,
        redis: Redis,
        corp_id: str,
        fetch: Fetch,
        app_key: str = "default",
        key_prefix: str = "wecom:",
        refresh_ahead: float = 300.0,
        lock_ttl: float = 15.0,
        wait_timeout: float = 15.0,
        poll_interval: float = 0.02,
        error_ttl: float = 5.0,
    ) -> None:
        self._fetch = fetch
        self._corp_id = corp_id
        self._app_key = app_key
        base = f"{key_prefix}token:{{{corp_id}:{app_key}}}"
        self._key = base
        self._lock_key = f"{base}:lock"
        self._error_key = f"{base}:error"
        self._refresh_ahead_ms = int(refresh_ahead * 1000)
        self._lock_ttl_ms = int(lock_ttl * 1000)
        self._wait_timeout = wait_timeout
        self._poll_interval = poll_interval
        self._error_ttl_ms = int(error_ttl * 1000)
        self._redis = redis
        self._read = redis.register_script(_READ)
        self._store = redis.register_script(_STORE)
        self._invalidate = redis.register_script(_INVALIDATE)
        self._unlock = redis.register_script(_UNLOCK)

    def get(self) -> str:
        """A valid token: from the cache, or fetched by exactly one process."""
        deadline = time.monotonic() + self._wait_timeout
        while True:
            token, fresh, error = self._state()
            if token is not None and fresh:
                return token
            if token is None and error is not None:
                # Another process just failed; don't hammer gettoken with, say, a wrong secret.
                raise error
            lock = self._try_lock()
            if lock is not None:
                try:
                    # Someone may have stored a token between our read and our lock.
                    token, fresh, _ = self._state()
                    if token is not None and fresh:
                        return token
                    try:
                        return self._refresh()
                    except WeComError:
                        if token is None:
                            raise
                        # The cached token is still valid: serve it; a later call refreshes.
                        logger.warning(
                            "wecom token refresh failed, serving the cached one corp=%s", self._corp_id
                        )
                        return token
                finally:
                    self._unlock(keys=[self._lock_key], args=[lock])
            if token is not None:
                # Still valid, only due for refresh, which another process is doing.
                return token
            if time.monotonic() >= deadline:
                raise TransientError(
                    None, "timed out waiting for another process to fetch the token", message_key="token_wait"
                )
            time.sleep(self._poll_interval)

    def invalidate(self, rejected: str) -> bool:
        """Forget ``rejected`` (WeCom answered 40014/42001 to it) unless it was already replaced."""
        return bool(self._invalidate(keys=[self._key], args=[rejected]))

    def _state(self) -> tuple[str | None, bool, WeComError | None]:
        token, pttl, lifetime_ms, error = self._read(keys=[self._key, self._error_key])
        if token is None:
            return None, False, _load_error(error) if error is not None else None
        # A token shorter-lived than twice the margin is refreshed in its second half instead.
        ahead = min(self._refresh_ahead_ms, int(lifetime_ms) // 2)
        return _text(token), int(pttl) > ahead, None

    def _try_lock(self) -> str | None:
        owner = uuid.uuid4().hex
        if self._redis.set(self._lock_key, owner, nx=True, px=self._lock_ttl_ms):
            return owner
        return None

    def _refresh(self) -> str:
        try:
            token, expires_in = self._fetch()
        except WeComError as exc:
            failure = {
                "errcode": exc.errcode,
                "errmsg": exc.errmsg,
                "hint": exc.hint,
                "api": exc.api,
                "message_key": exc.message_key,
            }
            self._redis.set(self._error_key, json.dumps(failure), px=self._error_ttl_ms)
            raise
        self._store(keys=[self._key, self._error_key], args=[token, int(expires_in) * 1000])
        logger.info(
            "wecom token refreshed corp=%s app=%s expires_in=%s",
            self._corp_id,
            self._app_key,
            expires_in,
            extra={"wecom_corp": self._corp_id, "wecom_app_key": self._app_key},
        )
        return token


def _load_error(raw: bytes | str) -> WeComError:
    data = json.loads(raw)
    if data.get("errcode") is None:
        return TransientError(
            None, data["errmsg"], hint=data["hint"], api=data["api"], message_key=data["message_key"]
        )
    return error_for(int(data["errcode"]), data["errmsg"], api=data["api"], hint=data["hint"])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
