from __future__ import annotations

from celery import Task, shared_task

from tasks.retry import MAX_RETRIES, retry_transient
from wecom.errors import TransientError

# One run marks at most this many follows or runs this long, then the job queues its next run: it never
# outlives the broker's visibility timeout, and jobs of several corps take turns in the bulk lane.
SLICE_FOLLOWS = 2000
SLICE_SECONDS = 300.0


@shared_task(bind=True, acks_late=True, queue="bulk")
@retry_transient
def run_bulk_tag_job(self: Task, job_id: int) -> None:
    from scrm.customers.tag_services import tag_bulk_job_fail, tag_bulk_job_run

    try:
        more = tag_bulk_job_run(job_id=job_id, max_follows=SLICE_FOLLOWS, max_seconds=SLICE_SECONDS)
    except TransientError as exc:
        if self.request.retries >= MAX_RETRIES:  # retry_transient would give up: say so on the job
            tag_bulk_job_fail(job_id=job_id, reason=str(exc.message_key))
            return
        raise
    if more:
        run_bulk_tag_job.apply_async(args=(job_id,), queue="bulk")
