"""Pointing this process's Celery app at another broker for the length of a test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """Publishes go to `url` inside the block (a port nothing listens on makes the broker unreachable)."""
    from tasks.celery import app

    conf: Any = app.conf
    reset = app._after_fork  # type: ignore[attr-defined]  # forgets the cached connection pools
    previous = conf.broker_url
    conf.broker_url = url
    reset()
    try:
        yield
    finally:
        conf.broker_url = previous
        reset()
