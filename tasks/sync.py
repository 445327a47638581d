from __future__ import annotations

from celery import Task, shared_task

from tasks.retry import retry_transient


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
