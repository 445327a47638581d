"""Per-member routing caps of a channel code: Redis counters, and which members WeCom may route to now.

Why a margin. WeCom picks the member of a multi-member way itself and tells us only afterwards (the add
callback). Between the add that uses up a member's room and WeCom seeing the update_contact_way that takes
them off the code, more scans can reach that member: callback delivery, our queue and the update call all
take time ("reaction time", R). So a member stays on a code only while their remaining room exceeds what
can arrive in R at the rate they are being added right now:

    eligible  ⇔  used + margin < cap,   margin = max(1, ⌈rate × R⌉)

`rate` is the whole *code's* adds per second lately (the busiest of the last two seconds, or the last
five on average), not the member's own: WeCom may route every scan in flight to the same member — a
backup that just took over gets them all at once. R is the configured reaction budget, or twice the
slowest recent removal we measured, whichever is larger. At a trickle the margin is one add (one scan in
flight); in a rush it grows, so a member is taken off early rather than late. The same rule decides when
a member comes back: never with less room than the margin.
The counters use the add's own CreateTime, so "per minute" and "per day" are the windows WeCom's clock
(and an audit of it) would see; days are Beijing calendar days.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from zoneinfo import ZoneInfo

from django.conf import settings

from scrm.acquisition.content import in_slot
from scrm.core.redis import get_redis

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY_OFFSET = 8 * 3600  # Beijing calendar days on epoch seconds
RATE_SECONDS = 5  # per-second buckets of a code's adds kept for the rate
DEFAULT_REACTION_SECONDS = 2.0

# KEYS: dedupe, minute, day, then the code's per-second buckets, newest first (the first one is this
# add's second). ARGV: dedupe ttl, minute ttl, day ttl, second ttl. One add is counted once, however many
# workers see it. Returns {minute, day, new, bucket counts...}.
_COUNT = """
local new = 0
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then
  new = 1
  if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2])) end
  if redis.call('INCR', KEYS[3]) == 1 then redis.call('EXPIRE', KEYS[3], tonumber(ARGV[3])) end
  if redis.call('INCR', KEYS[4]) == 1 then redis.call('EXPIRE', KEYS[4], tonumber(ARGV[4])) end
end
local out = {tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(redis.call('GET', KEYS[3]) or '0'), new}
for i = 4, #KEYS do out[#out + 1] = tonumber(redis.call('GET', KEYS[i]) or '0') end
return out
"""


def minute_of(t: float) -> int:
    return int(t // 60)


def day_of(t: float) -> int:
    return int((t + DAY_OFFSET) // 86400)


def _base(code_id: int, userid: str) -> str:
    return f"acq:cap:{code_id}:{userid}"


def _seconds(code_id: int, t: float) -> list[str]:
    return [f"acq:cap:{code_id}:s:{int(t) - i}" for i in range(RATE_SECONDS)]


def _rate(buckets: Sequence[int]) -> float:
    """Adds per second: the busier of the last two seconds, or the average over the last five."""
    return float(max(buckets[0], buckets[1], sum(buckets) / len(buckets)))


@dataclass(frozen=True)
class Usage:
    minute: int = 0
    day: int = 0
    rate: float = 0.0  # the code's adds per second, recent

    def margin(self, reaction_s: float) -> int:
        return max(1, math.ceil(self.rate * reaction_s))

    def room(self, *, per_minute: int, per_day: int, reaction_s: float) -> bool:
        m = self.margin(reaction_s)
        return self.minute + m < per_minute and self.day + m < per_day

    def over(self, *, per_minute: int, per_day: int) -> bool:
        return self.minute > per_minute or self.day > per_day


def caps_count_add(*, code_id: int, userid: str, external_userid: str, event_time: int) -> tuple[Usage, bool]:
    """Counts one add (once per event) and returns the member's usage after it, and whether it was new."""
    base = _base(code_id, userid)
    keys = [
        f"acq:counted:{code_id}:{userid}:{external_userid}:{event_time}",
        f"{base}:m:{minute_of(event_time)}",
        f"{base}:d:{day_of(event_time)}",
        *_seconds(code_id, event_time),
    ]
    minute, day, new, *buckets = get_redis().eval(_COUNT, len(keys), *keys, 3 * 86400, 180, 3 * 86400, 30)
    return Usage(int(minute), int(day), _rate([int(b) for b in buckets])), bool(new)


def caps_usage(*, code_id: int, userids: Sequence[str], now: float | None = None) -> dict[str, Usage]:
    """Every member's usage in the current windows (one round trip)."""
    now = _time.time() if now is None else now
    keys = _seconds(code_id, now)
    for u in userids:
        base = _base(code_id, u)
        keys += [f"{base}:m:{minute_of(now)}", f"{base}:d:{day_of(now)}"]
    values = [int(v or 0) for v in get_redis().mget(keys)]
    rate = _rate(values[:RATE_SECONDS])
    pairs = values[RATE_SECONDS:]
    return {u: Usage(pairs[2 * i], pairs[2 * i + 1], rate) for i, u in enumerate(userids)}


def reaction_seconds(*, corp_pk: int) -> float:
    """The reaction budget R: the setting, or twice the slowest removal measured lately."""
    configured = float(getattr(settings, "ACQUISITION_CAP_REACTION_SECONDS", DEFAULT_REACTION_SECONDS))
    observed = get_redis().get(f"acq:reaction:{corp_pk}")
    return max(configured, 2 * float(observed)) if observed else configured


def reaction_record(*, corp_pk: int, seconds: float) -> None:
    """Remembers a removal's reaction time for 10 minutes (the largest one seen in that time)."""
    redis = get_redis()
    key = f"acq:reaction:{corp_pk}"
    current = redis.get(key)
    if current is None or seconds > float(current):
        redis.set(key, f"{seconds:.3f}", ex=600)


@dataclass(frozen=True)
class Seat:
    """A member on a code, as the routing rule sees it."""

    userid: str
    backup: bool = False
    weekdays: tuple[int, ...] = ()
    start: time | None = None
    end: time | None = None
    available: bool = True  # active in WeCom, with the customer-contact permission

    def on_duty(self, now_local: datetime) -> bool:
        return self.available and in_slot(
            now=now_local, weekdays=self.weekdays, start=self.start, end=self.end
        )


@dataclass(frozen=True)
class Plan:
    routing: str  # "primary" | "backup" | "paused"
    users: tuple[str, ...]
    capped: tuple[str, ...] = ()
    off_duty: tuple[str, ...] = ()
    usage: Mapping[str, Usage] = field(default_factory=dict)


def routing_plan(
    *,
    seats: Sequence[Seat],
    usage: Mapping[str, Usage],
    per_minute: int,
    per_day: int,
    reaction_s: float,
    now_local: datetime,
) -> Plan:
    """Members on duty with room under both caps; backups only when no member is left; else paused."""
    on_duty = [s for s in seats if s.on_duty(now_local)]
    off_duty = tuple(s.userid for s in seats if not s.on_duty(now_local))
    with_room = [
        s
        for s in on_duty
        if usage.get(s.userid, Usage()).room(per_minute=per_minute, per_day=per_day, reaction_s=reaction_s)
    ]
    capped = tuple(s.userid for s in on_duty if s not in with_room)
    primary = tuple(s.userid for s in with_room if not s.backup)
    if primary:
        return Plan("primary", primary, capped, off_duty, usage)
    backups = tuple(s.userid for s in with_room if s.backup)
    if backups:
        return Plan("backup", backups, capped, off_duty, usage)
    return Plan("paused", (), capped, off_duty, usage)


def next_window_end(*, now: float, minute: bool) -> float:
    """Seconds until the current minute (or Beijing day) ends."""
    if minute:
        return (minute_of(now) + 1) * 60 - now
    return (day_of(now) + 1) * 86400 - DAY_OFFSET - now
