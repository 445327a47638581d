"""Group codes: rotations that could not run inline, WeCom's auto-created rooms, periodic checks, group
statistics pulled from WeCom."""

from __future__ import annotations

from celery import Task, shared_task

from tasks.retry import retry_transient


def _corp(corp_pk: int):  # type: ignore[no-untyped-def]
    from scrm.tenancy.models import Corp

    return Corp.objects.get(pk=corp_pk)


@shared_task(acks_late=True, queue="events", ignore_result=True)
def rotate(corp_pk: int, code_id: int) -> None:
    from scrm.groupcodes.services import code_rotate

    code_rotate(corp=_corp(corp_pk), code_id=code_id)


@shared_task(bind=True, acks_late=True, queue="events", ignore_result=True)
@retry_transient
def sync_join_way(self: Task, corp_pk: int, code_id: int) -> None:
    from scrm.groupcodes.services import code_sync_join_way

    code_sync_join_way(corp=_corp(corp_pk), code_id=code_id)


@shared_task(acks_late=True, queue="events", ignore_result=True)
def check_all() -> int:
    from scrm.groupcodes.services import codes_check_all

    return codes_check_all()


@shared_task(acks_late=True, queue="events", ignore_result=True)
def expiry_check() -> int:
    from scrm.groupcodes.services import landing_expiry_check

    return landing_expiry_check()


@shared_task(acks_late=True, queue="bulk", ignore_result=True)
def pull_group_statistics_all() -> int:
    from scrm.groups.services import group_statistics_pull_all

    return group_statistics_pull_all()


@shared_task(bind=True, acks_late=True, queue="bulk", ignore_result=True)
@retry_transient
def pull_group_statistics(self: Task, corp_pk: int, days: int = 7) -> int:
    from scrm.groups.services import group_statistics_pull

    return group_statistics_pull(corp=_corp(corp_pk), days=days)
