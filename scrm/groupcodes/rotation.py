"""When a group code's groups change: the join-rate margin and the plan of which groups serve the code.

Why a margin. WeCom fills the way's groups itself and tells us only afterwards (change_external_chat).
Between the join that brings a group near its QR capacity and WeCom seeing the update_join_way that takes
it off the code, more people can scan: callback delivery, our queue and the update call all take time
("reaction time", R). So a group stays on the code only while its room exceeds what can arrive in R at
the rate the code is being joined right now — the same rule as the channel-code caps
(scrm/acquisition/caps.py):

    on the code  ⇔  members + margin < capacity,   margin = min(max(1, ⌈rate × R⌉), capacity / 4)

`rate` is the code's joins per second by the events' CreateTime (the busier of the last two seconds, or
the last five on average); R is the configured budget or twice the slowest rotation measured lately.
The way holds up to five groups (Doc 92229), so a late rotation spills into the next group rather than
past a full one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings

from scrm.core.redis import get_redis

RATE_SECONDS = 5
DEFAULT_REACTION_SECONDS = 2.0


def _buckets(code_id: int, t: int) -> list[str]:
    return [f"gc:rate:{code_id}:{t - i}" for i in range(RATE_SECONDS)]


def _rate(buckets: Sequence[int]) -> float:
    return float(max(buckets[0], buckets[1], sum(buckets) / len(buckets)))


def rate_count(*, code_id: int, event_time: int, joins: int) -> float:
    """Counts `joins` in the second of the event and returns the code's join rate (per second) after it."""
    keys = _buckets(code_id, event_time)
    pipe = get_redis().pipeline()
    pipe.incrby(keys[0], joins)
    pipe.expire(keys[0], 30)
    pipe.mget(keys)
    values = pipe.execute()[-1]
    return _rate([int(v or 0) for v in values])


def rate_now(*, code_id: int, now: int) -> float:
    """The code's join rate around `now`, counting the current and the previous second as the newest."""
    values = get_redis().mget(_buckets(code_id, now))
    return _rate([int(v or 0) for v in values])


# A lagging events lane must not feed back into ever larger margins (which take half-empty groups off the
# code and use the pool up): the reaction budget and the margin have ceilings. Past the margin, joins
# spill over to the other groups on the code (up to five), which is the protection that remains.
MAX_REACTION_SECONDS = 5.0
MAX_MARGIN_SHARE = 4  # a group leaves the code with at most a quarter of its places still free


def reaction_seconds(*, corp_pk: int) -> float:
    configured = float(getattr(settings, "GROUPCODE_REACTION_SECONDS", DEFAULT_REACTION_SECONDS))
    observed = get_redis().get(f"gc:reaction:{corp_pk}")
    wanted = max(configured, 2 * float(observed)) if observed else configured
    return min(wanted, max(configured, MAX_REACTION_SECONDS))


def reaction_record(*, corp_pk: int, seconds: float) -> None:
    """Remembers a rotation's reaction time for 10 minutes (the largest one seen in that time)."""
    redis = get_redis()
    key = f"gc:reaction:{corp_pk}"
    current = redis.get(key)
    if current is None or seconds > float(current):
        redis.set(key, f"{seconds:.3f}", ex=600)


def margin_of(*, rate: float, reaction_s: float, capacity: int | None = None) -> int:
    margin = max(1, math.ceil(rate * reaction_s))
    return margin if capacity is None else min(margin, max(1, capacity // MAX_MARGIN_SHARE))


@dataclass(frozen=True)
class Slot:
    """A pool group as the plan sees it."""

    entry_id: int
    chat_id: str
    members: int
    full: bool = False  # already taken off for good
    live: bool = True  # the group exists (not dismissed)
    usable: bool = True  # landing mode: the uploaded QR image has not expired


@dataclass(frozen=True)
class WayPlan:
    chat_ids: tuple[str, ...]  # the groups on the code, in pool order
    serving: tuple[int, ...]  # their pool entries
    newly_full: tuple[int, ...]  # entries to take off for good (near capacity, or dismissed)
    exhausted: bool  # nothing in reserve behind the groups on the code


def plan_way(
    *, slots: Sequence[Slot], capacity: int, margin: int, width: int, applied: Sequence[str] = ()
) -> WayPlan:
    """The first `width` open groups in pool order. A group near capacity (members + margin ≥ capacity)
    or dismissed is taken off for good. With none open, what WeCom holds stays (WeCom's own auto-create
    takes over from there); `applied` gives that."""
    open_slots: list[Slot] = []
    newly_full: list[int] = []
    for s in slots:
        if s.full:
            continue
        if not s.live or s.members + margin >= capacity:
            newly_full.append(s.entry_id)
        elif s.usable:
            open_slots.append(s)
    take = open_slots[:width]
    chat_ids = tuple(s.chat_id for s in take)
    serving = tuple(s.entry_id for s in take)
    if not take and applied:
        live = {s.chat_id: s for s in slots if s.live}
        keep = [c for c in applied if c in live][-width:]
        chat_ids, serving = tuple(keep), tuple(live[c].entry_id for c in keep)
    return WayPlan(chat_ids, serving, tuple(newly_full), exhausted=len(open_slots) <= width)
