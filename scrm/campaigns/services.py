"""Writes for broadcasts: compose, gate and approval, sending in chunks under the receive quota, results,
cancel and remind, and the churn guard.

Sending (bulk lane): `broadcast_start` turns the audience into chunks (one sender, ≤10,000 customers or
≤2,000 groups each) with one INSERT … SELECT; `broadcast_send` works through them. Each chunk reserves
its recipients in the quota ledger and is marked `calling` in one transaction before add_msg_template;
a chunk found `calling` with its lease lapsed is looked up in WeCom (get_groupmsg_list_v2) before it is
ever called again, so a retried or redelivered task never creates a second template.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.models import User as DjangoUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.acquisition.cache import _attachment as attachment_shape
from scrm.acquisition.content import MAX_ATTACHMENTS, TEXT_MAX_BYTES
from scrm.acquisition.models import MediaAsset
from scrm.acquisition.services import (
    Upload,
    attachment_fields_check,
    attachment_media_create,
    media_upload,
)
from scrm.campaigns import selectors
from scrm.campaigns.models import (
    Broadcast,
    BroadcastAttachment,
    BroadcastDeletion,
    CampaignSettings,
    QuotaRule,
    SendChunk,
)
from scrm.campaigns.quota import period, quota_release, quota_reserve
from scrm.compliance.services import GateResult, content_gate
from scrm.core.wecom import wecom_client, wecom_error_text
from scrm.customers.models import Tag
from scrm.customers.selectors import FilterError
from scrm.tenancy.models import Corp
from wecom.client import WeComClient
from wecom.errors import PermanentError, TransientError, WeComError

logger = logging.getLogger(__name__)

User = AbstractBaseUser | AnonymousUser

# A chunk marked `calling` belongs to its worker this long: longer than the bulk lane's wait for a
# rate-limit token plus the HTTP timeout, so a live call is never taken for a dead one.
CHUNK_LEASE = timedelta(seconds=getattr(settings, "BROADCAST_CHUNK_LEASE_S", 90.0))
CHURN_WINDOW = timedelta(hours=72)
REMIND_LIMIT, REMIND_WINDOW = 3, timedelta(hours=24)  # remind_groupmsg_send (Doc 93338)
MEDIA_MIN_LEFT = timedelta(hours=1)
RESULTS_GIVE_UP = timedelta(days=3)  # members who never confirm: stop polling
POLL_BACKOFF_CAP_S = 600.0
DISTRIBUTING = 41063  # get_groupmsg_* right after creation: WeCom is still distributing


class Busy(Exception):
    """Another worker holds a chunk's lease; try again when it lapses."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"chunk held by another worker for {retry_in:.1f} s")
        self.retry_in = retry_in


# -- settings ---------------------------------------------------------------------------------------------


def settings_save(
    *,
    corp: Corp,
    quota_rule: str,
    churn_threshold: Decimal,
    approval_required: bool,
    dnd_tag: Tag | None,
) -> CampaignSettings:
    if quota_rule not in QuotaRule.values:
        raise ValidationError(_("Choose the receive quota rule set in the WeCom console."), code="rule")
    if not Decimal("0") < churn_threshold <= Decimal("100"):
        raise ValidationError(_("The churn threshold is a percentage above 0 and at most 100."), code="churn")
    if dnd_tag is not None and dnd_tag.corp_id != corp.pk:
        raise Tag.DoesNotExist
    s = selectors.settings_get(corp=corp)
    s.quota_rule, s.churn_threshold, s.approval_required, s.dnd_tag = (
        quota_rule,
        churn_threshold,
        approval_required,
        dnd_tag,
    )
    s.save()
    return s


def churn_resume(*, corp: Corp) -> CampaignSettings:
    """An admin lets scheduled broadcasts go again after a churn pause."""
    s = selectors.settings_get(corp=corp)
    CampaignSettings.objects.filter(pk=s.pk).update(paused=False, pause_reason="", paused_at=None)
    s.refresh_from_db()
    _dispatch_soon()
    return s


# -- compose ----------------------------------------------------------------------------------------------


def _check_text(text: str) -> None:
    if len(text.encode("utf-8")) > TEXT_MAX_BYTES:
        raise ValidationError(
            _("The text is too long: WeCom accepts at most %(max)s bytes (about 1,300 Chinese characters).")
            % {"max": TEXT_MAX_BYTES},
            code="too_long",
        )


def broadcast_save(
    *,
    corp: Corp,
    broadcast: Broadcast | None,
    user: User | None,
    name: str,
    chat_type: str,
    text: str,
    audience: Mapping[str, Any],
    scheduled_at: datetime | None,
) -> Broadcast:
    """Creates or edits a draft. Editing a broadcast waiting for approval sends it back to draft."""
    if broadcast is not None and (broadcast.corp_id != corp.pk or not broadcast.editable):
        raise ValidationError(_("This broadcast can no longer be changed."), code="locked")
    if chat_type not in Broadcast.ChatType.values:
        raise ValidationError(_("Choose customers or customer groups."), code="chat_type")
    if not name.strip():
        raise ValidationError(_("Give the broadcast a name."), code="name")
    _check_text(text)
    if scheduled_at is not None and scheduled_at < timezone.now() - timedelta(minutes=1):
        raise ValidationError(_("The scheduled time is in the past."), code="past")
    try:
        parsed = selectors.Audience.from_params(audience, chat_type=chat_type)
    except FilterError as exc:
        raise ValidationError(str(exc), code="audience") from exc
    b = broadcast or Broadcast(corp=corp, created_by=user if isinstance(user, DjangoUser) else None)
    b.name, b.chat_type, b.text, b.audience, b.scheduled_at = (
        name.strip(),
        chat_type,
        text,
        parsed.to_params(),
        scheduled_at,
    )
    b.status = Broadcast.Status.DRAFT
    b.save()
    return b


def attachment_add(
    *,
    corp: Corp,
    broadcast: Broadcast,
    kind: str,
    title: str = "",
    url: str = "",
    pic_url: str = "",
    description: str = "",
    appid: str = "",
    page: str = "",
    upload: Upload | None = None,
) -> BroadcastAttachment:
    """As a welcome attachment: files are kept and uploaded ahead as temporary media (renewed before the
    send), never uploaded while the chunks are being created."""
    if broadcast.corp_id != corp.pk:
        raise Broadcast.DoesNotExist
    if not broadcast.editable:
        raise ValidationError(_("This broadcast can no longer be changed."), code="locked")
    if kind not in BroadcastAttachment.Kind.values:
        raise ValidationError(_("Choose what kind of attachment this is."), code="kind")
    siblings = BroadcastAttachment.objects.filter(corp=corp, broadcast=broadcast)
    if siblings.count() >= MAX_ATTACHMENTS:
        raise ValidationError(
            _("A broadcast can carry at most %(n)s attachments.") % {"n": MAX_ATTACHMENTS}, code="count"
        )
    attachment_fields_check(kind=kind, title=title, url=url, appid=appid, page=page, upload=upload)
    with transaction.atomic():
        media = attachment_media_create(corp=corp, kind=kind, upload=upload)
        attachment = BroadcastAttachment.objects.create(
            corp=corp,
            broadcast=broadcast,
            kind=kind,
            order=siblings.count(),
            title=title.strip(),
            url=url,
            pic_url=pic_url,
            description=description.strip(),
            appid=appid.strip(),
            page=page.strip(),
            media=media,
        )
        Broadcast.objects.filter(pk=broadcast.pk).update(status=Broadcast.Status.DRAFT)
    if media is not None:
        try:
            media_upload(corp=corp, asset=media)
        except WeComError:
            logger.warning("broadcast attachment %s: upload failed, retried before sending", attachment.pk)
    return attachment


def attachment_delete(*, corp: Corp, attachment: BroadcastAttachment) -> None:
    if attachment.corp_id != corp.pk:
        raise BroadcastAttachment.DoesNotExist
    if not attachment.broadcast.editable:
        raise ValidationError(_("This broadcast can no longer be changed."), code="locked")
    with transaction.atomic():
        media_id = attachment.media_id
        attachment.delete()
        if media_id:
            MediaAsset.objects.filter(corp=corp, pk=media_id).delete()


def _texts(broadcast: Broadcast) -> list[str]:
    texts = [broadcast.text]
    for a in BroadcastAttachment.objects.filter(broadcast=broadcast):
        texts += [a.title, a.description]
    return [t for t in texts if t]


# -- gate and approval ------------------------------------------------------------------------------------


def _gate(broadcast: Broadcast, corp: Corp) -> GateResult:
    result = content_gate(corp=corp, texts=_texts(broadcast))
    if result.action == "block":
        raise ValidationError(
            _("This broadcast contains words that may not be sent: %(words)s. Remove them and submit again.")
            % {"words": "、".join(result.words)},
            code="sensitive",
        )
    return result


def broadcast_submit(*, corp: Corp, broadcast: Broadcast, user: User, is_admin: bool) -> Broadcast:
    """Checks content and audience; goes to an admin for approval when the corp or the gate asks for it
    (an admin submitting is the approval), otherwise it is scheduled."""
    if broadcast.corp_id != corp.pk:
        raise Broadcast.DoesNotExist
    if broadcast.status != Broadcast.Status.DRAFT:
        raise ValidationError(_("Only a draft can be submitted."), code="status")
    if not broadcast.text.strip() and not BroadcastAttachment.objects.filter(broadcast=broadcast).exists():
        raise ValidationError(_("Write a text or add an attachment."), code="empty")
    gate = _gate(broadcast, corp)
    preview = selectors.audience_preview(corp=corp, audience=selectors.audience_of(broadcast))
    if preview.total == 0:
        raise ValidationError(_("Nobody would receive this broadcast: change the audience."), code="nobody")
    needs_approval = gate.action == "approval" or selectors.settings_get(corp=corp).approval_required
    now = timezone.now()
    broadcast.gate_action, broadcast.gate_words = gate.action, gate.words
    broadcast.submitted_at = now
    if needs_approval and not is_admin:
        broadcast.status = Broadcast.Status.PENDING
    else:
        broadcast.status = Broadcast.Status.SCHEDULED
        broadcast.approved_by = user if isinstance(user, DjangoUser) else None
        broadcast.approved_at = now
    broadcast.save()
    if broadcast.status == Broadcast.Status.SCHEDULED:
        _dispatch_soon()
    return broadcast


def broadcast_approve(*, corp: Corp, broadcast: Broadcast, user: User) -> Broadcast:
    if broadcast.corp_id != corp.pk:
        raise Broadcast.DoesNotExist
    if broadcast.status != Broadcast.Status.PENDING:
        raise ValidationError(_("Only a broadcast waiting for approval can be approved."), code="status")
    gate = _gate(broadcast, corp)
    updated = Broadcast.objects.filter(pk=broadcast.pk, status=Broadcast.Status.PENDING).update(
        status=Broadcast.Status.SCHEDULED,
        approved_by=user if isinstance(user, DjangoUser) else None,
        approved_at=timezone.now(),
        gate_action=gate.action,
        gate_words=gate.words,
    )
    broadcast.refresh_from_db()
    if updated:
        _dispatch_soon()
    return broadcast


def broadcast_reject(*, corp: Corp, broadcast: Broadcast) -> Broadcast:
    if broadcast.corp_id != corp.pk:
        raise Broadcast.DoesNotExist
    Broadcast.objects.filter(pk=broadcast.pk, status=Broadcast.Status.PENDING).update(
        status=Broadcast.Status.DRAFT
    )
    broadcast.refresh_from_db()
    return broadcast


# -- sending ----------------------------------------------------------------------------------------------


def _enqueue(task: str, args: tuple[Any, ...], *, countdown: float | None = None) -> None:
    from tasks.celery import app

    def send() -> None:
        try:
            app.send_task(task, args=args, queue="bulk", countdown=countdown)
        except Exception as exc:  # the beat picks up due broadcasts and stalled chunks: nothing is lost
            logger.warning("%s not enqueued: %s", task, type(exc).__name__)

    transaction.on_commit(send)


def _dispatch_soon() -> None:
    _enqueue("tasks.campaigns.dispatch_due", ())


def broadcasts_dispatch(*, now: datetime | None = None) -> int:
    """Beat: starts due broadcasts (not while the corp is paused by the churn guard), and picks up
    broadcasts whose send task was lost. Returns how many were handed to the bulk lane."""
    now = now or timezone.now()
    count = 0
    for pk in selectors.due_broadcasts(now=now).values_list("pk", flat=True)[:100]:
        _enqueue("tasks.campaigns.send_broadcast", (pk,))
        count += 1
    stalled = Broadcast.objects.filter(status=Broadcast.Status.SENDING, updated_at__lt=now - CHUNK_LEASE)
    for pk in stalled.values_list("pk", flat=True)[:100]:
        _enqueue("tasks.campaigns.send_broadcast", (pk,))
        count += 1
    return count


def _ensure_media(*, corp: Corp, broadcast: Broadcast, now: datetime) -> None:
    """Temporary media (3 days) must outlive the send: re-upload what expires within the hour."""
    for a in BroadcastAttachment.objects.filter(broadcast=broadcast, media__isnull=False).select_related(
        "media"
    ):
        media = a.media
        assert media is not None
        if not media.media_id or media.expires_at is None or media.expires_at < now + MEDIA_MIN_LEFT:
            media_upload(corp=corp, asset=media, lane="bulk")


def media_refresh_scheduled(*, now: datetime | None = None) -> int:
    """Beat: uploads ahead the media of broadcasts due within a day, so the send path only reads ids."""
    now = now or timezone.now()
    due = Broadcast.objects.filter(
        status__in=[Broadcast.Status.SCHEDULED, Broadcast.Status.PENDING],
        scheduled_at__lt=now + timedelta(days=1),
    ).select_related("corp")
    done = 0
    for b in due:
        try:
            _ensure_media(corp=b.corp, broadcast=b, now=b.scheduled_at or now)
            done += 1
        except WeComError as exc:
            logger.warning("broadcast %s media not refreshed: %s", b.pk, exc)
    return done


_PLAN = """
INSERT INTO campaigns_sendchunk (corp_id, broadcast_id, sender_id, seq, targets, reserved, period,
    over_quota, status, tries, msgid, fail_list, reconciled, error, task_status, results_done,
    poll_failures, reminds, cancelled_in_wecom, created_at, updated_at)
SELECT %s, %s, sender, (row_number() OVER (ORDER BY sender, part)) - 1, targets, '{{}}', '', 0, 'pending',
    0, '', '{{}}', false, '', 0, false, 0, '{{}}', false, now(), now()
FROM (
    SELECT sender, part, array_agg(target ORDER BY target) AS targets
    FROM (
        SELECT sender, target, (row_number() OVER (PARTITION BY sender ORDER BY target) - 1) / %s AS part
        FROM ({audience}) a WHERE reason = 'ok'
    ) numbered GROUP BY sender, part
) grouped
"""


def broadcast_start(*, broadcast_id: int, now: datetime | None = None) -> Broadcast | None:
    """Claims a due broadcast and plans its chunks in one transaction (set-based, nothing loaded into
    Python). Returns it, or None when it is not due (already started, cancelled, corp paused)."""
    now = now or timezone.now()
    with transaction.atomic():
        b = (
            Broadcast.objects.select_for_update(of=("self",))
            .select_related("corp")
            .filter(pk=broadcast_id, status=Broadcast.Status.SCHEDULED)
            .first()
        )
        if b is None or (b.scheduled_at is not None and b.scheduled_at > now):
            return None
        if selectors.settings_get(corp=b.corp).paused:
            return None
        corp = b.corp
        audience = selectors.audience_of(b)
        preview = selectors.audience_preview(corp=corp, audience=audience, at=now)
        sql, params = selectors.audience_sql(corp=corp, audience=audience, at=now)
        limit = selectors.MAX_GROUPS if b.chat_type == "group" else selectors.MAX_SINGLE
        with connection.cursor() as cursor:
            cursor.execute(_PLAN.format(audience=sql), [corp.pk, b.pk, limit, *params])
            chunks = cursor.rowcount
        b.status = Broadcast.Status.SENDING if chunks else Broadcast.Status.DONE
        b.started_at = now
        b.chunks_total, b.planned, b.excluded = chunks, preview.total, preview.excluded
        if not chunks:
            b.finished_at, b.stop_reason = now, _("Nobody was left to receive it.")
        b.save()
    return b


def _payload_attachments(broadcast: Broadcast, now: datetime) -> list[dict[str, Any]]:
    out = []
    for a in BroadcastAttachment.objects.filter(broadcast=broadcast).select_related("media"):
        item = attachment_shape(a).payload(now=now.timestamp())
        if item is None:
            raise TransientError(None, "media not uploaded yet", api="media/upload", message_key="network")
        out.append(item)
    return out


def broadcast_send(*, broadcast_id: int, max_seconds: float = 300.0) -> bool:
    """Creates every chunk's template. Returns True when chunks are left (time slice used up or a chunk
    held by another worker): the task runs again. Transient WeCom errors propagate (task retries)."""
    b = Broadcast.objects.select_related("corp").filter(pk=broadcast_id).first()
    if b is None:
        return False
    if b.status == Broadcast.Status.SCHEDULED:
        if broadcast_start(broadcast_id=broadcast_id) is None:
            return False
        b.refresh_from_db()
    if b.status not in (Broadcast.Status.SENDING, Broadcast.Status.CANCELLED):
        return False
    corp = b.corp
    started = timezone.now()
    _ensure_media(corp=corp, broadcast=b, now=started)
    attachments = _payload_attachments(b, started)
    client = wecom_client(corp=corp, lane="bulk")
    held = False
    open_chunks = SendChunk.objects.filter(broadcast=b).exclude(
        status__in=[
            SendChunk.Status.CREATED,
            SendChunk.Status.SKIPPED,
            SendChunk.Status.FAILED,
            SendChunk.Status.CANCELLED,
        ]
    )
    for chunk_id in list(open_chunks.order_by("seq").values_list("pk", flat=True)):
        if (timezone.now() - started).total_seconds() > max_seconds:
            return True
        try:
            chunk_send(chunk_id=chunk_id, client=client, attachments=attachments)
        except Busy:
            held = True
        Broadcast.objects.filter(pk=b.pk).update(updated_at=timezone.now())  # alive, for the beat
    if held:
        return True
    _broadcast_settle(broadcast_id=b.pk)
    return False


def _broadcast_settle(*, broadcast_id: int) -> None:
    """Every chunk is finished: the broadcast waits for members to confirm (or failed as a whole)."""
    with transaction.atomic():
        b = Broadcast.objects.select_for_update().get(pk=broadcast_id)
        statuses = set(SendChunk.objects.filter(broadcast=b).values_list("status", flat=True))
        if statuses & {SendChunk.Status.PENDING, SendChunk.Status.CALLING}:
            return
        if b.status != Broadcast.Status.SENDING:
            return
        now = timezone.now()
        b.created_in_wecom_at = now
        if SendChunk.Status.CREATED in statuses:
            b.status = Broadcast.Status.SENT
        elif statuses == {SendChunk.Status.SKIPPED}:
            b.status, b.finished_at = Broadcast.Status.DONE, now
            b.stop_reason = _("Every recipient had reached the receive quota.")
        else:
            failed = SendChunk.objects.filter(broadcast=b, status=SendChunk.Status.FAILED).first()
            b.status, b.finished_at = Broadcast.Status.FAILED, now
            b.stop_reason = failed.error if failed else ""
        b.save()


@dataclass(frozen=True)
class _Claim:
    chunk: SendChunk
    takeover: bool  # a worker died holding it: look the template up before calling


def _claim(chunk_id: int, now: datetime) -> _Claim | None:
    """Reserves the quota and marks the chunk `calling` (fresh), or takes over a lapsed `calling`
    chunk. None: nothing to do. Raises Busy while another worker holds it."""
    with transaction.atomic():
        chunk = (
            SendChunk.objects.select_for_update(of=("self",))
            .select_related("broadcast", "sender")
            .get(pk=chunk_id)
        )
        b = chunk.broadcast
        if chunk.status == SendChunk.Status.PENDING:
            if b.status == Broadcast.Status.CANCELLED:
                chunk.status = SendChunk.Status.CANCELLED
                chunk.save(update_fields=["status", "updated_at"])
                return None
            rule = selectors.settings_get(corp=b.corp).quota_rule
            key, allowance = period(rule, now)
            granted = quota_reserve(
                corp_pk=chunk.corp_id, period_key=key, allowance=allowance, targets=chunk.targets
            )
            chunk.period, chunk.reserved = key, granted
            chunk.over_quota = len(chunk.targets) - len(granted)
            chunk.tries += 1
            if not granted:
                chunk.status = SendChunk.Status.SKIPPED
                chunk.save()
                return None
            chunk.status, chunk.lease_until, chunk.called_at = (
                SendChunk.Status.CALLING,
                now + CHUNK_LEASE,
                now,
            )
            chunk.save()
            return _Claim(chunk, takeover=False)
        if chunk.status == SendChunk.Status.CALLING:
            assert chunk.lease_until is not None
            if chunk.lease_until > now:
                raise Busy((chunk.lease_until - now).total_seconds())
            chunk.tries += 1
            chunk.lease_until = now + CHUNK_LEASE
            chunk.save(update_fields=["tries", "lease_until", "updated_at"])
            return _Claim(chunk, takeover=True)
        return None


def _reconcile(client: WeComClient, chunk: SendChunk) -> str | None:
    """The msgid of the template this chunk created before its worker died, or None when WeCom has none.

    API-created templates carry no creator in get_groupmsg_list_v2 (Doc 93338), so candidates are
    narrowed by time and content, then matched by the chunk's sender (get_groupmsg_task) and one of its
    recipients (get_groupmsg_send_result). 41063 (still distributing) propagates: try again later."""
    b = chunk.broadcast
    assert chunk.called_at is not None
    known = set(
        SendChunk.objects.filter(corp_id=chunk.corp_id).exclude(msgid="").values_list("msgid", flat=True)
    )
    start = int(chunk.called_at.timestamp()) - 600
    end = int(timezone.now().timestamp()) + 600
    wanted = set(chunk.reserved)
    # Reference: Doc 93338 (get_groupmsg_list_v2)
    for page in client.iter_groupmsg_list(chat_type=b.chat_type, start_time=start, end_time=end):  # type: ignore[arg-type]
        for item in page.get("group_msg_list", []):
            msgid = str(item.get("msgid", ""))
            if not msgid or msgid in known:
                continue
            if str((item.get("text") or {}).get("content", "")) != b.text:
                continue
            # Reference: Doc 93338 (get_groupmsg_task)
            senders = {
                t.get("userid") for p in client.iter_groupmsg_task(msgid) for t in p.get("task_list", [])
            }
            if chunk.sender.userid not in senders:
                continue
            # Reference: Doc 93338 (get_groupmsg_send_result)
            for rp in client.iter_groupmsg_send_result(msgid, chunk.sender.userid):
                for r in rp.get("send_list", []):
                    if (r.get("external_userid") or r.get("chat_id")) in wanted:
                        return msgid
    return None


def chunk_send(*, chunk_id: int, client: WeComClient, attachments: list[dict[str, Any]]) -> None:
    """One add_msg_template call at most once. Transient errors leave the chunk `calling` with its lease
    lapsed: the retry looks the template up first."""
    claim = _claim(chunk_id, timezone.now())
    if claim is None:
        return
    chunk, b = claim.chunk, claim.chunk.broadcast
    try:
        if claim.takeover:
            found = _reconcile(client, chunk)
            if found is not None:
                _record_created(chunk, msgid=found, fail_list=[], reconciled=True)
                return
            if b.status == Broadcast.Status.CANCELLED:
                _record_failed(chunk, errcode=None, error="cancelled", status=SendChunk.Status.CANCELLED)
                return
        targets = list(chunk.reserved)
        # Reference: Doc 92135 (add_msg_template): external_userid ≤10,000, or chat_id_list ≤2,000
        answer = client.add_msg_template(
            chat_type=b.chat_type,  # type: ignore[arg-type]
            external_userid=targets if b.chat_type == "single" else None,
            chat_id_list=targets if b.chat_type == "group" else None,
            sender=chunk.sender.userid,
            text=b.text or None,
            attachments=attachments,
        )
    except PermanentError as exc:
        _record_failed(chunk, errcode=exc.errcode, error=wecom_error_text(exc, "zh-hans")[:300])
        return
    except TransientError:
        # Whether WeCom created it is unknown (timeouts): lapse the lease so the retry looks it up.
        SendChunk.objects.filter(pk=chunk.pk, status=SendChunk.Status.CALLING).update(
            lease_until=timezone.now()
        )
        raise
    _record_created(
        chunk, msgid=str(answer["msgid"]), fail_list=[str(x) for x in answer.get("fail_list", [])]
    )


def _record_created(chunk: SendChunk, *, msgid: str, fail_list: list[str], reconciled: bool = False) -> None:
    with transaction.atomic():
        updated = SendChunk.objects.filter(pk=chunk.pk, status=SendChunk.Status.CALLING).update(
            status=SendChunk.Status.CREATED,
            msgid=msgid,
            fail_list=fail_list,
            reconciled=reconciled,
            lease_until=None,
            poll_after=timezone.now(),
            updated_at=timezone.now(),
        )
        if updated:
            quota_release(corp_pk=chunk.corp_id, period_key=chunk.period, targets=fail_list)
    if Broadcast.objects.filter(pk=chunk.broadcast_id, status=Broadcast.Status.CANCELLED).exists():
        chunk.refresh_from_db()
        _cancel_chunk(chunk)


def _record_failed(
    chunk: SendChunk, *, errcode: int | None, error: str, status: str = SendChunk.Status.FAILED
) -> None:
    with transaction.atomic():
        updated = SendChunk.objects.filter(pk=chunk.pk, status=SendChunk.Status.CALLING).update(
            status=status, errcode=errcode, error=error, lease_until=None, updated_at=timezone.now()
        )
        if updated:  # nothing was created: the reservation goes back
            quota_release(corp_pk=chunk.corp_id, period_key=chunk.period, targets=chunk.reserved)


# -- cancel and remind ------------------------------------------------------------------------------------


def _cancel_chunk(chunk: SendChunk) -> None:
    if not chunk.msgid or chunk.cancelled_in_wecom:
        return
    # Reference: Doc 97611 (cancel_groupmsg_send)
    wecom_client(corp=chunk.broadcast.corp, lane="bulk").cancel_groupmsg_send(chunk.msgid)
    SendChunk.objects.filter(pk=chunk.pk).update(cancelled_in_wecom=True)


def broadcast_cancel(*, corp: Corp, broadcast: Broadcast) -> Broadcast:
    """Stops a broadcast: nothing more is created, and templates members have not sent are withdrawn."""
    if broadcast.corp_id != corp.pk:
        raise Broadcast.DoesNotExist
    active = [
        Broadcast.Status.DRAFT,
        Broadcast.Status.PENDING,
        Broadcast.Status.SCHEDULED,
        Broadcast.Status.SENDING,
        Broadcast.Status.SENT,
    ]
    now = timezone.now()
    Broadcast.objects.filter(pk=broadcast.pk, status__in=active).update(
        status=Broadcast.Status.CANCELLED, finished_at=now, updated_at=now
    )
    SendChunk.objects.filter(broadcast=broadcast, status=SendChunk.Status.PENDING).update(
        status=SendChunk.Status.CANCELLED
    )
    chunks = SendChunk.objects.filter(
        broadcast=broadcast, status=SendChunk.Status.CREATED, cancelled_in_wecom=False
    ).select_related("broadcast__corp")
    for chunk in chunks:
        if chunk.task_status == 2:
            continue  # the member already sent it
        try:
            _cancel_chunk(chunk)
        except WeComError as exc:
            logger.warning("chunk %s not cancelled: %s", chunk.pk, exc)
    broadcast.refresh_from_db()
    return broadcast


@dataclass(frozen=True)
class RemindOutcome:
    reminded: int
    at_limit: int
    errors: list[str]


def broadcast_remind(*, corp: Corp, broadcast: Broadcast, member_pk: int | None = None) -> RemindOutcome:
    """Reminds members who have not confirmed (all, or one). WeCom allows 3 reminders per message per 24 h:
    counted here, under the chunk's row lock, before calling."""
    if broadcast.corp_id != corp.pk:
        raise Broadcast.DoesNotExist
    chunks = SendChunk.objects.filter(
        broadcast=broadcast, status=SendChunk.Status.CREATED, cancelled_in_wecom=False
    ).exclude(task_status=2)
    if member_pk is not None:
        chunks = chunks.filter(sender_id=member_pk)
    reminded, at_limit, errors = 0, 0, []
    client = wecom_client(corp=corp, lane="bulk")
    for chunk_id in list(chunks.values_list("pk", flat=True)):
        with transaction.atomic():
            chunk = SendChunk.objects.select_for_update().get(pk=chunk_id)
            now = timezone.now()
            recent = [r for r in chunk.reminds if now - r < REMIND_WINDOW]
            if len(recent) >= REMIND_LIMIT:
                at_limit += 1
                continue
            try:
                # Reference: Doc 97610 (remind_groupmsg_send)
                client.remind_groupmsg_send(chunk.msgid)
            except WeComError as exc:
                errors.append(wecom_error_text(exc, "zh-hans"))
                continue
            chunk.reminds = [*recent, now]
            chunk.save(update_fields=["reminds", "updated_at"])
            reminded += 1
    return RemindOutcome(reminded, at_limit, errors)


# -- results ----------------------------------------------------------------------------------------------

_RESULTS = """
INSERT INTO campaigns_recipientresult (corp_id, chunk_id, target, status, send_time)
SELECT %s, %s, t, s, CASE WHEN ts > 0 THEN to_timestamp(ts) END
FROM unnest(%s::varchar[], %s::smallint[], %s::bigint[]) AS r(t, s, ts)
ON CONFLICT (chunk_id, target) DO UPDATE SET status = EXCLUDED.status, send_time = EXCLUDED.send_time
"""


def _poll_backoff(failures: int) -> timedelta:
    return timedelta(seconds=random.uniform(1.0, min(POLL_BACKOFF_CAP_S, 2.0 ** (failures + 1))))  # noqa: S311


def _results_pages(client: WeComClient, chunk: SendChunk) -> Iterator[list[dict[str, Any]]]:
    # Reference: Doc 93338 (get_groupmsg_send_result)
    for page in client.iter_groupmsg_send_result(chunk.msgid, chunk.sender.userid):
        yield list(page.get("send_list", []))


def chunk_poll(*, chunk: SendChunk, client: WeComClient, now: datetime) -> None:
    """The member's confirmation, then (once sent) every recipient's result. 41063 backs off."""
    try:
        status, send_time = 0, 0
        # Reference: Doc 93338 (get_groupmsg_task)
        for page in client.iter_groupmsg_task(chunk.msgid):
            for t in page.get("task_list", []):
                if t.get("userid") == chunk.sender.userid:
                    status, send_time = int(t.get("status", 0)), int(t.get("send_time") or 0)
        chunk.task_status = status
        if status == 2:
            chunk.sent_at = datetime.fromtimestamp(send_time, tz=now.tzinfo) if send_time else now
            key = "external_userid" if chunk.broadcast.chat_type == "single" else "chat_id"
            for items in _results_pages(client, chunk):
                targets = [str(i.get(key, "")) for i in items]
                statuses = [int(i.get("status", 0)) for i in items]
                times = [int(i.get("send_time") or 0) for i in items]
                with connection.cursor() as cursor:
                    cursor.execute(_RESULTS, [chunk.corp_id, chunk.pk, targets, statuses, times])
            chunk.results_done = True
        chunk.poll_failures = 0
        chunk.poll_after = now + timedelta(seconds=60)
    except TransientError as exc:
        if exc.errcode != DISTRIBUTING:
            logger.warning("chunk %s results: %s", chunk.pk, exc)
        chunk.poll_failures += 1
        chunk.poll_after = now + _poll_backoff(chunk.poll_failures)
    chunk.save(
        update_fields=["task_status", "sent_at", "results_done", "poll_failures", "poll_after", "updated_at"]
    )


def broadcast_poll(*, broadcast_id: int, now: datetime | None = None) -> None:
    now = now or timezone.now()
    b = Broadcast.objects.select_related("corp").get(pk=broadcast_id)
    client = wecom_client(corp=b.corp, lane="bulk")
    due = (
        SendChunk.objects.filter(broadcast=b, status=SendChunk.Status.CREATED, results_done=False)
        .exclude(poll_after__gt=now)
        .select_related("sender", "broadcast")
    )
    for chunk in due:
        try:
            chunk_poll(chunk=chunk, client=client, now=now)
        except PermanentError as exc:
            logger.warning("chunk %s results refused: %s", chunk.pk, exc)
            SendChunk.objects.filter(pk=chunk.pk).update(results_done=True, error=str(exc)[:300])
    left = SendChunk.objects.filter(broadcast=b, status=SendChunk.Status.CREATED, results_done=False).exists()
    gave_up = b.created_in_wecom_at is not None and now - b.created_in_wecom_at > RESULTS_GIVE_UP
    if b.status == Broadcast.Status.SENT and (not left or gave_up):
        Broadcast.objects.filter(pk=b.pk, status=Broadcast.Status.SENT).update(
            status=Broadcast.Status.DONE, finished_at=now
        )


def broadcasts_poll_due(*, now: datetime | None = None) -> int:
    """Beat: enqueues result polling for broadcasts with chunks whose poll time has come."""
    now = now or timezone.now()
    ids = (
        SendChunk.objects.filter(status=SendChunk.Status.CREATED, results_done=False, poll_after__lte=now)
        .values_list("broadcast_id", flat=True)
        .distinct()
    )
    count = 0
    for pk in list(ids[:200]):
        _enqueue("tasks.campaigns.poll_broadcast", (pk,))
        count += 1
    return count


# -- churn guard ------------------------------------------------------------------------------------------

_CHURN_FIND = """
SELECT DISTINCT c.broadcast_id FROM campaigns_sendchunk c JOIN customers_member m ON m.id = c.sender_id
WHERE c.corp_id = %s AND c.reserved @> ARRAY[%s]::varchar[] AND m.userid = %s
  AND c.status = 'created' AND c.called_at BETWEEN %s AND %s
"""


def churn_record_deletion(*, corp: Corp, userid: str, external_userid: str, at: datetime) -> list[int]:
    """A customer deleted a member (del_follow_user): counted against every broadcast that member sent
    them within 72 h. Above the corp's threshold, scheduled broadcasts pause and admins are alerted.
    Replays are no-ops (one row per broadcast, customer and member). Returns the broadcasts counted."""
    with connection.cursor() as cursor:
        # WeCom's CreateTime has whole seconds and its clock is not ours: a minute's slack after `at`.
        cursor.execute(
            _CHURN_FIND, [corp.pk, external_userid, userid, at - CHURN_WINDOW, at + timedelta(minutes=1)]
        )
        ids = [int(r[0]) for r in cursor.fetchall()]
    counted = []
    for pk in ids:
        _, created = BroadcastDeletion.objects.get_or_create(
            broadcast_id=pk,
            external_userid=external_userid,
            userid=userid,
            defaults={"corp": corp, "at": at},
        )
        if not created:
            continue
        Broadcast.objects.filter(pk=pk).update(deletions=F("deletions") + 1)
        counted.append(pk)
        _churn_check(corp=corp, broadcast=Broadcast.objects.get(pk=pk))
    return counted


def _churn_check(*, corp: Corp, broadcast: Broadcast) -> None:
    s = selectors.settings_get(corp=corp)
    rate = selectors.deletion_rate(broadcast=broadcast)
    if rate <= float(s.churn_threshold) or s.paused:
        return
    reason = _(
        "%(rate).1f%% of the customers who received “%(name)s” deleted their member within 72 hours "
        "(threshold %(threshold)s%%). Scheduled broadcasts are paused until an admin resumes them."
    ) % {"rate": rate, "name": broadcast.name, "threshold": s.churn_threshold}
    CampaignSettings.objects.filter(pk=s.pk, paused=False).update(
        paused=True, paused_at=timezone.now(), pause_reason=reason[:300], paused_by_broadcast=broadcast
    )
    logger.warning("corp %s: broadcasts paused by the churn guard: %s", corp.corp_id, reason)
