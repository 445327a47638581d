from __future__ import annotations

import time

from scrm.core.redis import get_redis

HEARTBEAT_KEY = "scrm:lane-heartbeat:{lane}"


def lane_heartbeat_record(*, lane: str) -> None:
    get_redis().set(HEARTBEAT_KEY.format(lane=lane), str(time.time()), ex=600)
