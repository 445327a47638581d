from __future__ import annotations

import time
from dataclasses import dataclass

from redis.exceptions import RedisError

from scrm.core.redis import get_redis
from scrm.dashboard.services import HEARTBEAT_KEY
from tasks.celery import LANES

STALE_AFTER_S = 90


@dataclass(frozen=True)
class LaneStatus:
    lane: str
    age_s: float | None  # None: never seen

    @property
    def alive(self) -> bool:
        return self.age_s is not None and self.age_s <= STALE_AFTER_S


def lane_status_list() -> list[LaneStatus]:
    try:
        raw = get_redis().mget([HEARTBEAT_KEY.format(lane=lane) for lane in LANES])
    except RedisError:
        return [LaneStatus(lane=lane, age_s=None) for lane in LANES]
    now = time.time()
    return [
        LaneStatus(lane=lane, age_s=None if value is None else max(0.0, now - float(value)))
        for lane, value in zip(LANES, raw, strict=True)
    ]
