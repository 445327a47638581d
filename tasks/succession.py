"""Succession tasks on the bulk lane: request what is due, poll WeCom's results, read the unassigned list."""

from __future__ import annotations

from celery import Task, shared_task

from tasks.retry import retry_transient


@shared_task(bind=True, acks_late=True, queue="bulk")
@retry_transient
def run_handover(self: Task, handover_id: int) -> None:
    from scrm.succession.services import handover_run

    if handover_run(handover_id=handover_id):
        run_handover.apply_async(args=(handover_id,), queue="bulk")


@shared_task(bind=True, acks_late=True, queue="bulk")
@retry_transient
def poll_handover(self: Task, handover_id: int) -> None:
    from scrm.succession.services import handover_poll

    handover_poll(handover_id=handover_id)


@shared_task(bind=True, acks_late=True, queue="bulk")
@retry_transient
def refresh_unassigned(self: Task, corp_id: int) -> None:
    from scrm.succession.services import unassigned_refresh
    from scrm.tenancy.models import Corp

    corp = Corp.objects.filter(pk=corp_id).first()
    if corp is not None:
        unassigned_refresh(corp=corp)


@shared_task(acks_late=True, queue="bulk")
def tick() -> None:
    from scrm.succession.services import handovers_tick

    handovers_tick()
