"""Applies a stored event to our state, idempotently, then schedules the WeCom reads it calls for."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone

from scrm.callbacks.models import InboxEvent, InboxStatus
from scrm.customers import services as customers
from scrm.customers.models import FollowStatus
from scrm.groups import services as groups
from scrm.tenancy.models import Corp
from wecom import events as ev

logger = logging.getLogger(__name__)

INBOX_FIELDS = ("id", "kind", "payload", "status", "attempts", "last_error", "processed_at", "corp")
# Applying an event never needs the corp's secrets: don't decrypt them for every event.
CORP_FIELDS = ("corp__id", "corp__corp_id", "corp__agent_id")

# After this many failed attempts an event is left failed for an admin to look at and replay.
MAX_ATTEMPTS = 5


def inbox_process(*, event_id: int) -> None:
    """Claims one inbox row (skipping it if another worker holds it), applies it and marks it done, in
    one transaction: a crash part-way leaves nothing half-applied and the row is redelivered.

    A failure is recorded on the row (the apply itself rolls back to a savepoint) and re-raised so the
    task retries, until MAX_ATTEMPTS leaves it failed for an admin."""
    error: Exception | None = None
    with transaction.atomic():
        # The applied effects and the "done" mark commit together, so a commit lost in a database crash
        # loses both and the sweeper applies the event again: no need to wait for the WAL flush here.
        # (The callback endpoint's insert does wait: WeCom is told "received" only once it is durable.)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        row = (
            InboxEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("corp")
            .only(*INBOX_FIELDS, *CORP_FIELDS)
            .filter(pk=event_id)
            .exclude(status=InboxStatus.DONE)
            .first()
        )
        if row is None:
            return
        row.attempts += 1
        try:
            with transaction.atomic():
                event_apply(corp=row.corp, event=ev.parse_event(row.payload), inbox_event=row)
        except Exception as exc:
            logger.exception("inbox event %s (%s) failed on attempt %s", row.pk, row.kind, row.attempts)
            row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            row.status = InboxStatus.FAILED if row.attempts >= MAX_ATTEMPTS else InboxStatus.QUEUED
            if row.status != InboxStatus.FAILED:
                error = exc
        else:
            row.status = InboxStatus.DONE
            row.processed_at = timezone.now()
            row.last_error = ""
        row.save(update_fields=["attempts", "status", "processed_at", "last_error"])
    if error is not None:
        raise error


def inbox_replay(*, corp: Corp, event_id: int) -> None:
    """An admin asks to apply an event again (after a fix, or to heal state). Applying is idempotent."""
    updated = InboxEvent.objects.filter(corp=corp, pk=event_id).update(
        status=InboxStatus.QUEUED, attempts=0, enqueued_at=timezone.now()
    )
    if not updated:
        raise InboxEvent.DoesNotExist
    from scrm.callbacks.services import inbox_enqueue

    lane = InboxEvent.objects.values_list("lane", flat=True).get(pk=event_id)
    transaction.on_commit(
        lambda: inbox_enqueue(event_id=event_id, lane="events" if lane == "realtime" else lane)
    )


def _after_commit(task_name: str, *args: object) -> None:
    def send() -> None:
        from tasks.celery import app

        try:
            app.send_task(task_name, args=args, queue="events")
        except Exception as exc:  # the nightly sync heals what a lost follow-up would have fetched
            logger.warning("follow-up %s not enqueued: %s", task_name, type(exc).__name__)

    transaction.on_commit(send)


def event_apply(*, corp: Corp, event: ev.Event, inbox_event: InboxEvent | None = None) -> None:
    t = event.create_time
    at = datetime.fromtimestamp(t, tz=UTC)
    match event:
        case ev.AddExternalContact() | ev.AddHalfExternalContact():
            customers.follow_apply_event(
                corp=corp,
                userid=event.user_id,
                external_userid=event.external_user_id,
                event_time=t,
                rank=customers.RANK_ADD,
                status=FollowStatus.ACTIVE,
                state=event.state,
                timeline_kind="added" if isinstance(event, ev.AddExternalContact) else "added_half",
                timeline_data={"state": event.state or ""},
                inbox_event=inbox_event,
            )
            # Channel-code follow-up (welcome on the timeline, caps, auto-tags, remark), then enrichment.
            args = (corp.pk, event.external_user_id, event.user_id, event.state, t)
            _after_commit("tasks.welcome.after_add", *args)
        case ev.EditExternalContact():
            customers.follow_apply_event(
                corp=corp,
                userid=event.user_id,
                external_userid=event.external_user_id,
                event_time=t,
                rank=customers.RANK_EDIT,
                status=FollowStatus.ACTIVE,
                timeline_kind="edited",
                inbox_event=inbox_event,
            )
            _after_commit("tasks.sync.refresh_customer", corp.pk, event.external_user_id)
        case ev.DelExternalContact():
            by_transfer = event.source == "DELETE_BY_TRANSFER"
            customers.follow_apply_event(
                corp=corp,
                userid=event.user_id,
                external_userid=event.external_user_id,
                event_time=t,
                rank=customers.RANK_DELETE,
                status=FollowStatus.TRANSFERRED if by_transfer else FollowStatus.DELETED_BY_MEMBER,
                timeline_kind="transferred_away" if by_transfer else "deleted_by_member",
                inbox_event=inbox_event,
            )
        case ev.DelFollowUser():
            customers.follow_apply_event(
                corp=corp,
                userid=event.user_id,
                external_userid=event.external_user_id,
                event_time=t,
                rank=customers.RANK_DELETE,
                status=FollowStatus.DELETED_BY_CUSTOMER,
                timeline_kind="deleted_by_customer",
                inbox_event=inbox_event,
            )
        case ev.TransferFail():
            customer = customers.customer_get_or_create(corp=corp, external_userid=event.external_user_id)
            customers.timeline_add(
                corp=corp,
                customer=customer,
                member=customers.member_get_or_create(corp=corp, userid=event.user_id),
                kind="transfer_failed",
                at=at,
                data={"reason": event.fail_reason},
                inbox_event=inbox_event,
            )
        case ev.ChatCreate():
            groups.group_get_or_create(corp=corp, chat_id=event.chat_id)
            _after_commit("tasks.sync.refresh_group", corp.pk, event.chat_id)
        case ev.ChatUpdate():
            if event.update_detail in ("add_member", "del_member"):
                refetch = groups.group_apply_member_change(
                    corp=corp,
                    chat_id=event.chat_id,
                    event_time=t,
                    detail=event.update_detail,
                    changed=event.mem_change_list,
                    change_count=event.mem_change_cnt,
                    join_scene=event.join_scene,
                    quit_scene=event.quit_scene,
                    last_mem_ver=event.last_mem_ver,
                    cur_mem_ver=event.cur_mem_ver,
                )
            else:
                refetch = True  # name, notice or owner changed: the event doesn't say to what
            if refetch:
                _after_commit("tasks.sync.refresh_group", corp.pk, event.chat_id)
        case ev.ChatDismiss():
            groups.group_mark_dismissed(corp=corp, chat_id=event.chat_id, event_time=t)
        case ev.TagDelete():
            if event.tag_type == "tag_group":
                customers.tags_mark_deleted(corp=corp, group_ids=[event.id])
            else:
                customers.tags_mark_deleted(corp=corp, tag_ids=[event.id])
        case ev.TagCreate() | ev.TagUpdate():
            kind = "group" if event.tag_type == "tag_group" else "tag"
            _after_commit("tasks.sync.refresh_tags", corp.pk, kind, event.id)
        case ev.TagShuffle():
            _after_commit("tasks.sync.refresh_tags", corp.pk, "group", event.id)
        case ev.UserCreate():
            customers.member_get_or_create(corp=corp, userid=event.user_id)
            _after_commit("tasks.sync.refresh_member", corp.pk, event.user_id)
        case ev.UserUpdate():
            userid = event.user_id
            if event.new_user_id:
                customers.member_rename(corp=corp, userid=userid, new_userid=event.new_user_id)
                userid = event.new_user_id
            _after_commit("tasks.sync.refresh_member", corp.pk, userid)
        case ev.UserDelete():
            customers.member_mark_left(corp=corp, userid=event.user_id, at=at)
        case ev.UnknownEvent():
            logger.info("event kept, nothing to apply: %s", event.raw.get("Event") or event.msg_type)
