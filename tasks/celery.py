"""The Celery app: three lanes, at-least-once delivery, and the beat schedule in code."""

from __future__ import annotations

import os

from celery import Celery, Task
from celery.schedules import crontab
from celery.signals import task_postrun, task_prerun
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scrm.settings")

app = Celery("scrm")
app.config_from_object("django.conf:settings", namespace="CELERY")

# Lanes. realtime: welcome messages inside WeCom's 20-second window, nothing else.
# events: applying callbacks, enrichment. bulk: syncs, broadcasts, reports.
LANES = ("realtime", "events", "bulk")

app.conf.update(
    task_queues=[Queue(name) for name in LANES],
    task_default_queue="events",
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    # At-least-once: a task is acknowledged after it ran, and redelivered if its worker dies.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    # An unacknowledged task comes back after this long (Redis broker); longer than any task may run.
    broker_transport_options={"visibility_timeout": 3600, "queue_order_strategy": "priority"},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    timezone="Asia/Shanghai",
    enable_utc=True,
    beat_schedule={
        # Callbacks stored while Redis was down, or queued and lost with a Redis restart.
        "sweep-inbox": {"task": "tasks.inbox.sweep_inbox", "schedule": 30.0, "options": {"queue": "events"}},
        # Nightly full sync of every corp (03:00 Asia/Shanghai): heals whatever callbacks missed.
        "full-sync-nightly": {
            "task": "tasks.sync.full_sync_nightly",
            "schedule": crontab(hour=3, minute=0),
            "options": {"queue": "bulk"},
        },
        # Channel codes: schedules start and end, cap windows pass (WeCom is called only on a change).
        "rebalance-codes": {
            "task": "tasks.welcome.rebalance_all",
            "schedule": 60.0,
            "options": {"queue": "events", "expires": 60},
        },
        # Welcome media are temporary (3 days): re-upload a day ahead, never in the 20-s path.
        "refresh-media": {
            "task": "tasks.welcome.refresh_media",
            "schedule": 1800.0,
            "options": {"queue": "bulk"},
        },
        # Broadcasts: start the due ones (and stalled sends), then poll WeCom's results.
        "broadcasts-dispatch": {
            "task": "tasks.campaigns.dispatch_due",
            "schedule": 30.0,
            "options": {"queue": "bulk", "expires": 30},
        },
        "broadcasts-poll": {
            "task": "tasks.campaigns.poll_due",
            "schedule": 60.0,
            "options": {"queue": "bulk", "expires": 60},
        },
        # Succession: request what is due (groups spread over days), poll transfer results.
        "succession-tick": {
            "task": "tasks.succession.tick",
            "schedule": 60.0,
            "options": {"queue": "bulk", "expires": 60},
        },
        # Group codes: re-plan every code (a lost rotation heals; WeCom is called only on a change).
        "group-codes-check": {
            "task": "tasks.groupcodes.check_all",
            "schedule": 120.0,
            "options": {"queue": "events", "expires": 120},
        },
        # Landing pages: warn a day before an uploaded group QR image expires, move off expired ones.
        "group-codes-expiry": {
            "task": "tasks.groupcodes.expiry_check",
            "schedule": 1800.0,
            "options": {"queue": "events", "expires": 1800},
        },
        # WeCom's daily group figures (groupchat/statistic_group_by_day), after the day has closed.
        "group-statistics": {
            "task": "tasks.groupcodes.pull_group_statistics_all",
            "schedule": crontab(hour=4, minute=30),
            "options": {"queue": "bulk"},
        },
        # Each lane proves it is alive; the dashboard shows a lane whose heartbeat is stale.
        **{
            f"heartbeat-{lane}": {
                "task": "tasks.maintenance.heartbeat",
                "schedule": 30.0,
                "args": (lane,),
                "options": {"queue": lane, "expires": 60},
            }
            for lane in LANES
        },
    },
)

# Database connections: Celery's Django fixup closes them after every task unless told to reuse them,
# and a new Postgres connection per event costs more than applying the event. Reuse them, and let
# Django drop the broken or expired ones (CONN_MAX_AGE, CONN_HEALTH_CHECKS) around each task instead.
app.conf.CELERY_DB_REUSE_MAX = 1_000_000


@task_prerun.connect
@task_postrun.connect
def _close_unusable_db_connections(task: Task | None = None, **kwargs: object) -> None:
    # A task run in-process (eagerly) shares its caller's connection and transaction: leave it alone.
    if task is None or getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


app.conf.task_routes = {"tasks.sync.*": {"queue": "events"}, "tasks.inbox.*": {"queue": "events"}}
# The task modules, imported by the worker at start.
app.conf.imports = (
    "tasks.maintenance",
    "tasks.inbox",
    "tasks.sync",
    "tasks.tags",
    "tasks.welcome",
    "tasks.campaigns",
    "tasks.groupcodes",
    "tasks.succession",
)
