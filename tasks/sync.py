from __future__ import annotations

from celery import Task, shared_task

from tasks.retry import backoff, retry_transient


def _corp(corp_pk: int):  # type: ignore[no-untyped-def]
    from scrm.tenancy.models import Corp

    return Corp.objects.get(pk=corp_pk)


@shared_task(bind=True, acks_late=True)
@retry_transient
def refresh_customer(self: Task, corp_pk: int, external_userid: str) -> None:
    from scrm.sync.services import customer_refresh

    customer_refresh(corp=_corp(corp_pk), external_userid=external_userid)


@shared_task(bind=True, acks_late=True)
@retry_transient
def refresh_group(self: Task, corp_pk: int, chat_id: str) -> None:
    from scrm.sync.services import group_refresh

    group_refresh(corp=_corp(corp_pk), chat_id=chat_id)


@shared_task(bind=True, acks_late=True)
@retry_transient
def refresh_tags(self: Task, corp_pk: int, kind: str, wecom_id: str) -> None:
    from scrm.sync.services import tags_refresh

    tags_refresh(corp=_corp(corp_pk), kind=kind, wecom_id=wecom_id)


@shared_task(bind=True, acks_late=True)
@retry_transient
def refresh_member(self: Task, corp_pk: int, userid: str) -> None:
    from scrm.sync.services import member_refresh

    member_refresh(corp=_corp(corp_pk), userid=userid)


# The full sync is bulk work: it runs on the bulk lane (tasks.sync.* is routed to events by default, so
# the queue is also given explicitly wherever it is enqueued).
@shared_task(bind=True, acks_late=True, queue="bulk", max_retries=None)
def full_sync(self: Task, run_id: int) -> None:
    from scrm.sync.services import SyncBusy, SyncInterrupted, full_sync_execute

    try:
        full_sync_execute(run_id=run_id)
    except SyncBusy as exc:
        # Another worker holds the run (a redelivery right after a crash, or a duplicate message): look
        # again when its lease would have lapsed; a run finished by then makes this a no-op.
        raise self.retry(countdown=exc.retry_after, max_retries=None, queue="bulk") from exc
    except SyncInterrupted as exc:
        # Rate limit, network or database trouble: continue from the checkpoint later. The service
        # counts the attempts and fails the run past its limit.
        countdown = exc.retry_after + 1.0 if exc.retry_after else backoff(exc.attempt - 1)
        raise self.retry(countdown=countdown, max_retries=None, queue="bulk") from exc


@shared_task(acks_late=True)
def full_sync_nightly() -> int:
    from scrm.sync.services import full_sync_start_nightly

    return full_sync_start_nightly()
