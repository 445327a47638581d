"""Broadcasts on the bulk lane: thin tasks, ids in, one service each."""

from __future__ import annotations

from celery import Task, shared_task

from tasks.retry import MAX_RETRIES, retry_transient

# One run creates templates for at most this long, then queues its next run (never near the broker's
# visibility timeout; other corps' bulk work takes turns).
SLICE_SECONDS = 300.0
RECHECK_SECONDS = 2.0


@shared_task(acks_late=True, queue="bulk")
def dispatch_due() -> int:
    from scrm.campaigns.services import broadcasts_dispatch, media_refresh_scheduled

    media_refresh_scheduled()
    return broadcasts_dispatch()


@shared_task(bind=True, acks_late=True, queue="bulk")
@retry_transient
def send_broadcast(self: Task, broadcast_id: int) -> None:
    from scrm.campaigns.services import broadcast_send

    if broadcast_send(broadcast_id=broadcast_id, max_seconds=SLICE_SECONDS):
        # The time slice is used up, or a chunk is held by another worker until its lease lapses.
        send_broadcast.apply_async(args=(broadcast_id,), queue="bulk", countdown=RECHECK_SECONDS)


@shared_task(acks_late=True, queue="bulk")
def poll_due() -> int:
    from scrm.campaigns.services import broadcasts_poll_due

    return broadcasts_poll_due()


@shared_task(bind=True, acks_late=True, queue="bulk", max_retries=MAX_RETRIES)
@retry_transient
def poll_broadcast(self: Task, broadcast_id: int) -> None:
    from scrm.campaigns.services import broadcast_poll

    broadcast_poll(broadcast_id=broadcast_id)
