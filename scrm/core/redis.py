from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def _client(url: str) -> redis.Redis:
    # Short timeouts: a dead Redis must fail fast (health checks, callbacks) instead of hanging a request.
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1, health_check_interval=30)


def get_redis() -> redis.Redis:
    return _client(settings.REDIS_URL)
