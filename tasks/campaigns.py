from __future__ import annotations

from celery import Task, shared_task  # noqa: F401
