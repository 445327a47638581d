"""How a task reacts to WeCom's answers: transient errors come back later, permanent ones stop."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from celery import Task
from django.db import InterfaceError, OperationalError

from wecom.errors import RateLimited, TransientError

F = TypeVar("F", bound=Callable[..., Any])

MAX_RETRIES = 8
BACKOFF_CAP_S = 300.0


def backoff(attempt: int) -> float:
    """Capped exponential backoff with full jitter: 2, 4, 8 … 300 s, randomised so retries don't stampede."""
    return random.uniform(1.0, min(BACKOFF_CAP_S, 2.0 ** (attempt + 1)))  # noqa: S311


def retry_transient(func: F) -> F:
    """For `bind=True` tasks: RateLimited waits out its window, other transient errors back off. So does a
    lost database connection (a Postgres restart): the follow-up would otherwise wait for the nightly sync."""

    @wraps(func)
    def wrapper(self: Task, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(self, *args, **kwargs)
        except RateLimited as exc:
            raise self.retry(
                exc=exc, countdown=(exc.retry_after or 60.0) + 1.0, max_retries=MAX_RETRIES
            ) from exc
        except (TransientError, OperationalError, InterfaceError) as exc:
            if isinstance(exc, (OperationalError, InterfaceError)):
                from django.db import close_old_connections

                close_old_connections()  # drop the broken connection; the retry opens a new one
            raise self.retry(
                exc=exc, countdown=backoff(self.request.retries), max_retries=MAX_RETRIES
            ) from exc

    return wrapper  # type: ignore[return-value]
