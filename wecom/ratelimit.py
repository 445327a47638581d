"""One rate limiter for every process and host, held in Redis (API.md §4, Doc 90312/90313).

Per (corp, API path) WeCom allows 10,000 calls a minute and 150,000 an hour. Each grant checks and
increments a fixed-window counter for the minute and for the hour in one Lua script, so no window ever
exceeds its budget, whatever the number of callers. Windows are aligned on Redis server time (TIME),
so hosts with drifting clocks still agree.

Lanes, highest priority first: ``realtime`` (welcome messages, 20-s deadline), ``events``, ``bulk``.
A lane may spend the budget minus the shares reserved for the lanes above it, so bulk work can never
eat what the welcome lane needs.

45009 opens a breaker for that (corp, API); 45033 halves an adaptive concurrency cap held as leases
that expire (a dead process can't leak them) and recovers one slot per interval.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from redis import Redis

from wecom.errors import ConcurrencyLimited, RateLimited, TransientError

LANES: tuple[str, ...] = ("realtime", "events", "bulk")

Reason = Literal["breaker", "budget", "concurrency"]

# Shared by the scripts: the adaptive concurrency cap, 0 meaning "no cap". It grows by one slot per
# recover_ms since the last cut and is dropped once it reaches the ceiling.
_LUA_PRELUDE = """
local base = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function conc_limit(recover_ms, ceiling)
  local h = redis.call('HMGET', base .. ':conc', 'limit', 'since')
  if not h[1] then return 0 end
  local limit = tonumber(h[1]) + math.floor((now - tonumber(h[2])) / recover_ms)
  if limit >= ceiling then
    redis.call('DEL', base .. ':conc')
    return 0
  end
  return limit
end
"""

# ARGV: lease_id, lane, lease_ms, usage_ttl_s, recover_ms, conc_ceiling, poll_ms,
#       minute_ms, minute_cap, hour_ms, hour_cap  (caps are the lane's ceilings)
# Returns {granted, wait_ms, reason, now_ms, minute_window, hour_window}.
_ACQUIRE = (
    _LUA_PRELUDE
    + """
local breaker = redis.call('PTTL', base .. ':breaker')
if breaker > 0 then return {0, breaker, 'breaker', now, 0, 0} end

local leases = base .. ':leases'
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
local limit = conc_limit(tonumber(ARGV[5]), tonumber(ARGV[6]))
if limit > 0 and redis.call('ZCARD', leases) >= limit then
  return {0, tonumber(ARGV[7]), 'concurrency', now, 0, 0}
end

local m_ms, m_cap = tonumber(ARGV[8]), tonumber(ARGV[9])
local h_ms, h_cap = tonumber(ARGV[10]), tonumber(ARGV[11])
local m_id, h_id = math.floor(now / m_ms), math.floor(now / h_ms)
local m_key, h_key = base .. ':m:' .. m_id, base .. ':h:' .. h_id
local wait = 0
if tonumber(redis.call('GET', m_key) or '0') >= m_cap then wait = (m_id + 1) * m_ms - now end
if tonumber(redis.call('GET', h_key) or '0') >= h_cap then
  wait = math.max(wait, (h_id + 1) * h_ms - now)
end
if wait > 0 then return {0, wait, 'budget', now, m_id, h_id} end

if redis.call('INCR', m_key) == 1 then redis.call('PEXPIRE', m_key, m_ms * 2) end
if redis.call('INCR', h_key) == 1 then redis.call('PEXPIRE', h_key, h_ms * 2) end
redis.call('ZADD', leases, now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', leases, tonumber(ARGV[3]))
local usage = base .. ':u:' .. m_id
redis.call('HINCRBY', usage, 'lane:' .. ARGV[2], 1)
redis.call('EXPIRE', usage, tonumber(ARGV[4]))
return {1, 0, 'ok', now, m_id, h_id}
"""
)

# ARGV: minute_ms, hour_ms. Returns how long the breaker stays open (ms).
# The first 45009 blocks a whole minute window from now (WeCom's windows need not be aligned with
# ours); another within the hour means the hourly budget was hit: block until our hour window ends.
# 45009s from calls already in flight when the breaker opened don't count as new strikes.
_OPEN_BREAKER = (
    _LUA_PRELUDE
    + """
local key = base .. ':breaker'
local open = redis.call('PTTL', key)
if open > 0 then return open end
local m_ms, h_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local strikes = redis.call('INCR', base .. ':strikes')
if strikes == 1 then redis.call('PEXPIRE', base .. ':strikes', h_ms) end
local block = m_ms
if strikes > 1 then block = math.max(m_ms, (math.floor(now / h_ms) + 1) * h_ms - now) end
redis.call('SET', key, strikes, 'PX', block)
return block
"""
)

# ARGV: recover_ms, ceiling, cooldown_ms. Returns the new cap.
# Calls in flight together all fail with 45033 together: one cut per cooldown, not one per call.
_LOWER_CONCURRENCY = (
    _LUA_PRELUDE
    + """
local leases = base .. ':leases'
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
local recover_ms, ceiling = tonumber(ARGV[1]), tonumber(ARGV[2])
local since = redis.call('HGET', base .. ':conc', 'since')
local current = conc_limit(recover_ms, ceiling)
if since and now - tonumber(since) < tonumber(ARGV[3]) and current > 0 then return current end
if current == 0 then current = redis.call('ZCARD', leases) end
local new = math.max(1, math.floor(current / 2))
redis.call('HSET', base .. ':conc', 'limit', new, 'since', now)
redis.call('PEXPIRE', base .. ':conc', ceiling * recover_ms)
return new
"""
)

# ARGV: minute_ms, hour_ms, recover_ms, ceiling.
# Returns {now, minute_used, hour_used, breaker_ms, conc_limit, inflight}.
_PEEK = (
    _LUA_PRELUDE
    + """
local m_ms, h_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local leases = base .. ':leases'
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
return {
  now,
  tonumber(redis.call('GET', base .. ':m:' .. math.floor(now / m_ms)) or '0'),
  tonumber(redis.call('GET', base .. ':h:' .. math.floor(now / h_ms)) or '0'),
  math.max(0, redis.call('PTTL', base .. ':breaker')),
  conc_limit(tonumber(ARGV[3]), tonumber(ARGV[4])),
  redis.call('ZCARD', leases),
}
"""
)


@dataclass(frozen=True)
class RateLimitConfig:
    """Budgets per (corp, API). Windows are configurable so tests can shorten them."""

    per_minute: int = 10_000
    per_hour: int = 150_000
    margin: float = 0.9
    minute_seconds: float = 60.0
    hour_seconds: float = 3600.0
    # Share of each budget only that lane (or a higher one) may spend.
    reserved: Mapping[str, float] = field(default_factory=lambda: {"realtime": 0.1, "events": 0.1})
    # A lease outlives any call (client timeouts are far shorter); it only matters if a process dies.
    lease_seconds: float = 60.0
    concurrency_recover_seconds: float = 10.0
    concurrency_ceiling: int = 64
    concurrency_cooldown_seconds: float = 1.0
    concurrency_poll_seconds: float = 0.025
    usage_ttl_seconds: int = 2 * 3600  # the dashboard charts the last hour; keep memory bounded

    def __post_init__(self) -> None:
        if not 0 < self.margin <= 1:
            raise ValueError("margin must be in (0, 1]")
        unknown = set(self.reserved) - set(LANES)
        if unknown:
            raise ValueError(f"unknown lanes in reserved: {sorted(unknown)}")
        if sum(self.reserved.values()) >= 1:
            raise ValueError("reserved shares must leave something for the bulk lane")

    @property
    def minute_budget(self) -> int:
        return int(self.per_minute * self.margin)

    @property
    def hour_budget(self) -> int:
        return int(self.per_hour * self.margin)

    def ceiling(self, lane: str, budget: int) -> int:
        """What ``lane`` may spend of ``budget``: the budget minus the higher lanes' reserves."""
        if lane not in LANES:
            raise ValueError(f"unknown lane {lane!r}; expected one of {LANES}")
        higher = LANES[: LANES.index(lane)]
        return budget - sum(int(budget * self.reserved.get(name, 0.0)) for name in higher)


@dataclass(frozen=True)
class Grant:
    """Permission for one call. ``at_ms`` is Redis server time; release it when the call is over."""

    corp: str
    api: str
    lane: str
    at_ms: int
    minute_window: int
    hour_window: int
    lease_id: str


@dataclass(frozen=True)
class Denied:
    """A refused ``try_acquire``: try again after ``retry_after`` seconds."""

    corp: str
    api: str
    lane: str
    reason: Reason
    retry_after: float

    def error(self) -> TransientError:
        if self.reason == "concurrency":
            return ConcurrencyLimited(
                None,
                "concurrency cap reached",
                api=self.api,
                retry_after=self.retry_after,
                message_key="concurrency_local",
            )
        if self.reason == "breaker":
            return RateLimited(
                None,
                "paused after 45009 until the window ends",
                api=self.api,
                retry_after=self.retry_after,
                message_key=45009,
            )
        return RateLimited(
            None,
            f"{self.lane} budget for this window is used up",
            api=self.api,
            retry_after=self.retry_after,
            message_key="rate_limited_local",
        )


@dataclass(frozen=True)
class Usage:
    """The current windows of one (corp, API), for the dashboard."""

    minute_used: int
    minute_budget: int
    hour_used: int
    hour_budget: int
    breaker_seconds: float  # 0 when closed
    concurrency_limit: int | None  # None: no cap
    in_flight: int


@dataclass(frozen=True)
class WindowUsage:
    """Counters of one minute window: grants per lane, outcomes per errcode, total latency."""

    start_ms: int
    counts: dict[str, int]


class RateLimiter:
    """The shared limiter. Safe to use from any number of threads, processes and hosts."""

    def __init__(
        self, redis: Redis, config: RateLimitConfig | None = None, *, key_prefix: str = "wecom:"
    ) -> None:
        self.redis = redis
        self.config = config or RateLimitConfig()
        self._prefix = key_prefix
        self._acquire = redis.register_script(_ACQUIRE)
        self._open_breaker = redis.register_script(_OPEN_BREAKER)
        self._lower_concurrency = redis.register_script(_LOWER_CONCURRENCY)
        self._peek = redis.register_script(_PEEK)
        cfg = self.config
        self._minute_ms = int(cfg.minute_seconds * 1000)
        self._hour_ms = int(cfg.hour_seconds * 1000)
        self._recover_ms = max(1, int(cfg.concurrency_recover_seconds * 1000))

    def _base(self, corp: str, api: str) -> str:
        # The braces are a Redis Cluster hash tag: every key of one (corp, API) lands in one slot.
        return f"{self._prefix}rl:{{{corp}:{api}}}"

    def try_acquire(self, corp: str, api: str, lane: str = "events") -> Grant | Denied:
        """Take one call's token without waiting."""
        cfg = self.config
        lease_id = uuid.uuid4().hex
        granted, wait_ms, reason, now, m_id, h_id = self._acquire(
            keys=[self._base(corp, api)],
            args=[
                lease_id,
                lane,
                int(cfg.lease_seconds * 1000),
                cfg.usage_ttl_seconds,
                self._recover_ms,
                cfg.concurrency_ceiling,
                int(cfg.concurrency_poll_seconds * 1000),
                self._minute_ms,
                cfg.ceiling(lane, cfg.minute_budget),
                self._hour_ms,
                cfg.ceiling(lane, cfg.hour_budget),
            ],
        )
        if granted:
            return Grant(corp, api, lane, int(now), int(m_id), int(h_id), lease_id)
        why = cast(Reason, _text(reason))
        return Denied(corp, api, lane, why, int(wait_ms) / 1000)

    def acquire(self, corp: str, api: str, lane: str = "events", *, timeout: float | None = 30.0) -> Grant:
        """Wait for a token. Raises RateLimited / ConcurrencyLimited (with ``retry_after``) at once
        when the wait would outlast ``timeout``, rather than sleeping in vain."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            result = self.try_acquire(corp, api, lane)
            if isinstance(result, Grant):
                return result
            if deadline is not None and result.retry_after > deadline - time.monotonic():
                raise result.error()
            # Waits are computed on Redis time; the extra millisecond covers rounding.
            time.sleep(result.retry_after + 0.001)

    def release(self, grant: Grant) -> None:
        """Give back the concurrency slot of a finished call (the budget token stays spent)."""
        self.redis.zrem(f"{self._base(grant.corp, grant.api)}:leases", grant.lease_id)

    def open_breaker(self, corp: str, api: str) -> float:
        """Record a 45009: block (corp, API) for every process. Returns seconds until it may retry."""
        block_ms = self._open_breaker(keys=[self._base(corp, api)], args=[self._minute_ms, self._hour_ms])
        return int(block_ms) / 1000

    def lower_concurrency(self, corp: str, api: str) -> int:
        """Record a 45033: halve the calls allowed in flight for (corp, API). Returns the new cap."""
        cfg = self.config
        new = self._lower_concurrency(
            keys=[self._base(corp, api)],
            args=[self._recover_ms, cfg.concurrency_ceiling, int(cfg.concurrency_cooldown_seconds * 1000)],
        )
        return int(new)

    def finish(self, grant: Grant, *, outcome: str, latency_ms: float) -> None:
        """Release the grant and count the call in its minute's usage hash: outcome (errcode or
        failure kind, e.g. "0", "45009", "timeout", "http_502") and latency."""
        base = self._base(grant.corp, grant.api)
        usage = f"{base}:u:{grant.minute_window}"
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(f"{base}:leases", grant.lease_id)
        pipe.hincrby(usage, "calls", 1)
        pipe.hincrby(usage, f"outcome:{outcome}", 1)
        pipe.hincrby(usage, "latency_ms", round(latency_ms))
        pipe.expire(usage, self.config.usage_ttl_seconds)
        pipe.execute()

    def usage(self, corp: str, api: str) -> Usage:
        """Spend of the current windows against the budgets."""
        cfg = self.config
        _, minute_used, hour_used, breaker_ms, limit, in_flight = self._peek(
            keys=[self._base(corp, api)],
            args=[self._minute_ms, self._hour_ms, self._recover_ms, cfg.concurrency_ceiling],
        )
        return Usage(
            minute_used=int(minute_used),
            minute_budget=cfg.minute_budget,
            hour_used=int(hour_used),
            hour_budget=cfg.hour_budget,
            breaker_seconds=int(breaker_ms) / 1000,
            concurrency_limit=int(limit) or None,
            in_flight=int(in_flight),
        )

    def usage_history(self, corp: str, api: str, *, windows: int = 60) -> list[WindowUsage]:
        """The last ``windows`` minute windows (oldest first), including the current one."""
        seconds, micros = self._redis_time()
        current = (seconds * 1000 + micros // 1000) // self._minute_ms
        ids = range(current - windows + 1, current + 1)
        pipe = self.redis.pipeline(transaction=False)
        for window in ids:
            pipe.hgetall(f"{self._base(corp, api)}:u:{window}")
        rows: list[dict[Any, Any]] = pipe.execute()
        return [
            WindowUsage(window * self._minute_ms, {_text(k): int(v) for k, v in row.items()})
            for window, row in zip(ids, rows, strict=True)
        ]

    def _redis_time(self) -> tuple[int, int]:
        seconds, micros = self.redis.time()
        return int(seconds), int(micros)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
