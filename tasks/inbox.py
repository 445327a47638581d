from __future__ import annotations

from celery import Task, shared_task

from tasks.retry import backoff


@shared_task(bind=True, acks_late=True, max_retries=5)
def process_inbox_event(self: Task, event_id: int) -> None:
    from scrm.callbacks.apply import inbox_process

    try:
        inbox_process(event_id=event_id)
    except Exception as exc:
        # inbox_process already recorded the error on the row; try again later.
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc


@shared_task(acks_late=True)
def sweep_inbox() -> int:
    from scrm.callbacks.services import inbox_sweep

    return inbox_sweep()
