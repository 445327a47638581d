"""Welcome fast lane and channel-code upkeep: thin tasks, ids in, one service each."""

from __future__ import annotations

from celery import Task, shared_task

from tasks.retry import retry_transient


# The realtime lane: nothing else runs there. No Celery retries — the service retries inside the
# 20-second window itself, and a redelivery after a lost worker is recognised by the claimed attempt.
@shared_task(acks_late=True, queue="realtime", ignore_result=True)
def send_welcome(event_id: int) -> None:
    from scrm.acquisition.services import welcome_send

    welcome_send(event_id=event_id)


@shared_task(bind=True, acks_late=True, queue="events")
@retry_transient
def after_add(
    self: Task, corp_pk: int, external_userid: str, userid: str, state: str | None, event_time: int
) -> None:
    from scrm.acquisition.services import channel_add_followup
    from scrm.tenancy.models import Corp

    channel_add_followup(
        corp=Corp.objects.get(pk=corp_pk),
        external_userid=external_userid,
        userid=userid,
        state=state,
        event_time=event_time,
    )


@shared_task(bind=True, acks_late=True, queue="events")
@retry_transient
def rebalance_code(self: Task, corp_pk: int, code_id: int, triggered_at: float | None = None) -> None:
    from scrm.acquisition.services import code_rebalance
    from scrm.tenancy.models import Corp

    code_rebalance(corp=Corp.objects.get(pk=corp_pk), code_id=code_id, triggered_at=triggered_at)


@shared_task(acks_late=True, queue="events")
def rebalance_all() -> int:
    from scrm.acquisition.services import codes_rebalance_all

    return codes_rebalance_all()


@shared_task(acks_late=True, queue="bulk")
def refresh_media() -> int:
    from scrm.acquisition.services import media_refresh_due

    return media_refresh_due()
