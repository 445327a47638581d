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

# After this many failed attempts an event is left failed for an admin to look at and replay.
MAX_ATTEMPTS = 5

# The claim: skips a row another worker holds, or one already applied. Applying an event never needs the
# corp's secrets, so only the corp's ids are read. The applied effects and the "done" mark commit
# together, so a commit lost in a database crash loses both and the sweeper applies the event again: no
# need to wait for the WAL flush (the callback endpoint's insert does wait: WeCom is told "received"
# only once it is durable). One round trip for both statements.
_CLAIM = """
SET LOCAL synchronous_commit TO OFF;
SELECT e.id, e.kind, e.payload, e.attempts, c.id, c.corp_id, c.agent_id
FROM callbacks_inboxevent e JOIN tenancy_corp c ON c.id = e.corp_id
WHERE e.id = %s AND e.status <> 'done'
FOR UPDATE OF e SKIP LOCKED
"""

_FAILED = """
UPDATE callbacks_inboxevent SET attempts = attempts + 1, last_error = %s,
    status = CASE WHEN attempts + 1 >= %s THEN 'failed' ELSE 'queued' END
WHERE id = %s AND status <> 'done'
RETURNING status
"""


def inbox_process(*, event_id: int) -> None:
    """Claims one inbox row (skipping it if another worker holds it), applies it and marks it done, in
    one transaction: a crash part-way leaves nothing half-applied and the row is redelivered.

    A failure rolls everything back, is recorded on the row in a transaction of its own and re-raised so
    the task retries, until MAX_ATTEMPTS leaves it failed for an admin."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_CLAIM, [event_id])
            claimed = cursor.fetchone()
            if claimed is None:
                return
            pk, kind, payload, attempts, corp_pk, corp_id, agent_id = claimed
            # Instances as the ORM loads them, the fields not read deferred (loaded if a hook needs them).
            corp = Corp.from_db(None, ["id", "corp_id", "agent_id"], [corp_pk, corp_id, agent_id])
            row = InboxEvent.from_db(
                None, ["id", "corp_id", "kind", "payload", "attempts"], [pk, corp_pk, kind, payload, attempts]
            )
            row.corp = corp
            event_apply(corp=corp, event=ev.parse_event(payload), inbox_event=row)
            InboxEvent.objects.filter(pk=pk).update(
                status=InboxStatus.DONE, attempts=attempts + 1, processed_at=timezone.now(), last_error=""
            )
    except Exception as exc:
        logger.exception("inbox event %s failed", event_id)
        with connection.cursor() as cursor:
            cursor.execute(_FAILED, [f"{type(exc).__name__}: {exc}"[:2000], MAX_ATTEMPTS, event_id])
            recorded = cursor.fetchone()
        if recorded is not None and recorded[0] == InboxStatus.FAILED:
            return  # left for an admin: retrying won't help
        raise


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
        from tasks.publish import publish_fast

        try:
            publish_fast(task_name, args, queue="events")
        except Exception as exc:  # the nightly sync heals what a lost follow-up would have fetched
            logger.warning("follow-up %s not enqueued: %s", task_name, type(exc).__name__)

    transaction.on_commit(send)


# A busy group's joins, applied by several workers, arrive with member versions out of step, and each
# mismatch asks for a re-fetch of the whole group. One groupchat/get shortly after the burst answers them
# all: the first mismatch schedules it, the others within the window find it scheduled.
GROUP_REFETCH_DELAY_S = 2


def _refresh_group_soon(corp_pk: int, chat_id: str) -> None:
    def send() -> None:
        from scrm.core.redis import get_redis
        from tasks.celery import app

        try:
            key = f"refetch:group:{corp_pk}:{chat_id}"
            if get_redis().set(key, "1", nx=True, ex=GROUP_REFETCH_DELAY_S):
                app.send_task(
                    "tasks.sync.refresh_group",
                    args=(corp_pk, chat_id),
                    queue="events",
                    countdown=GROUP_REFETCH_DELAY_S,
                )
        except Exception as exc:  # the nightly sync heals what a lost follow-up would have fetched
            logger.warning("group re-fetch not enqueued: %s", type(exc).__name__)

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
                # Ends the relation for good (only a new add restores it): it wins a same-second tie with
                # the customer's one-way deletion, whichever of the two arrives first.
                rank=customers.RANK_DELETE + 1,
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
            # The churn guard: a deletion within 72 h of a broadcast counts against it.
            from scrm.campaigns.services import churn_record_deletion

            churn_record_deletion(
                corp=corp, userid=event.user_id, external_userid=event.external_user_id, at=at
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
            from scrm.succession.services import transfer_fail_apply

            transfer_fail_apply(
                corp=corp,
                userid=event.user_id,
                external_userid=event.external_user_id,
                reason=event.fail_reason,
                at=at,
            )
        case ev.ChatCreate():
            groups.group_get_or_create(corp=corp, chat_id=event.chat_id)
            _after_commit("tasks.sync.refresh_group", corp.pk, event.chat_id)
            from scrm.groupcodes.services import code_on_chat_create

            code_on_chat_create(corp=corp, chat_id=event.chat_id)  # a room WeCom auto-created for a code?
        case ev.ChatUpdate():
            if event.update_detail in ("add_member", "del_member"):
                change = groups.group_apply_member_change(
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
                refetch = change.refetch
                from scrm.groupcodes.services import code_on_member_change

                # Group codes: count the join / leave; rotate right after commit if a group is near full.
                code_on_member_change(corp=corp, change=change, event_time=t, inbox_event=inbox_event)
            else:
                refetch = True  # name, notice or owner changed: the event doesn't say to what
            if refetch:
                _refresh_group_soon(corp.pk, event.chat_id)
        case ev.ChatDismiss():
            groups.group_mark_dismissed(corp=corp, chat_id=event.chat_id, event_time=t)
            from scrm.groupcodes.services import code_on_chat_dismiss

            code_on_chat_dismiss(corp=corp, chat_id=event.chat_id)
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
            member = customers.member_mark_left(corp=corp, userid=event.user_id, at=at)
            from scrm.succession.services import leaver_noted

            leaver_noted(corp=corp, member=member)
        case ev.UnknownEvent():
            logger.info("event kept, nothing to apply: %s", event.raw.get("Event") or event.msg_type)
