"""The callback path's lean publish writes exactly the message Celery itself would write."""

from __future__ import annotations

import base64
import json
from typing import Any

from django.conf import settings

from scrm.core.redis import get_redis
from tasks.publish import publish_fast
from tests.brokers import broker_at

VOLATILE_HEADERS = ("id", "root_id", "origin")
VOLATILE_PROPERTIES = ("correlation_id", "delivery_tag", "reply_to")


def _normal(raw: bytes) -> dict[str, Any]:
    message = json.loads(raw)
    for key in VOLATILE_HEADERS:
        message["headers"].pop(key)
    for key in VOLATILE_PROPERTIES:
        message["properties"].pop(key)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


def test_publish_fast_matches_celery_message() -> None:
    from tasks.inbox import process_inbox_event

    r = get_redis()
    queue = "publish-check"
    r.delete(queue)
    with broker_at(settings.REDIS_URL):
        process_inbox_event.apply_async(args=(42,), queue=queue, retry=False)
        publish_fast("tasks.inbox.process_inbox_event", (42,), queue=queue)
    ours, celerys = r.lpop(queue), r.lpop(queue)  # LPUSH: the newest first
    assert isinstance(ours, bytes) and isinstance(celerys, bytes)
    assert _normal(ours) == _normal(celerys)
    theirs = json.loads(celerys)
    mine = json.loads(ours)
    assert mine["headers"]["id"] == mine["headers"]["root_id"] == mine["properties"]["correlation_id"]
    assert theirs["properties"]["delivery_mode"] == mine["properties"]["delivery_mode"] == 2
    r.delete(queue, f"_kombu.binding.{queue}")


def test_publish_fast_raises_when_the_broker_is_down() -> None:
    import pytest
    import redis

    with broker_at("redis://127.0.0.1:1/0"), pytest.raises(redis.ConnectionError):
        publish_fast("tasks.inbox.process_inbox_event", (1,), queue="events")
