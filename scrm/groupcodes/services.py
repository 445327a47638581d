"""Writes for group codes (群活码): the code and its pool, rotation on the events lane, landing pages,
notices, group welcome templates and duplicate reports.

Rotation runs right after a change_external_chat event is applied (scrm/callbacks/apply.py calls the
`code_on_*` hooks): the hook counts the join, and when a group on a code crosses the threshold
(rotation.py) the rotation runs as soon as the event's transaction commits, in the same worker. The code's
row lock serialises rotations, so two events crossing together rotate once: the second sees the plan
already applied and calls nothing.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.callbacks.models import InboxEvent
from scrm.core.wecom import wecom_client, wecom_error_text
from scrm.groupcodes import rotation
from scrm.groupcodes.models import (
    WAY_MAX_CHATS,
    CodeDayStat,
    GroupCode,
    GroupWelcomeTemplate,
    Notice,
    PoolGroup,
    Rotation,
)
from scrm.groupcodes.selectors import SHANGHAI, pool_duplicates
from scrm.groups.models import CustomerGroup
from scrm.groups.services import MemberChange, group_get_or_create
from scrm.tenancy.models import Corp
from wecom.errors import TransientError, WeComError

logger = logging.getLogger(__name__)

QR_IMAGE_TTL = timedelta(days=7)  # a WeChat group's QR image is valid for 7 days
EXPIRY_WARNING = timedelta(days=1)
QR_IMAGE_MAX_BYTES = 2 * 1024 * 1024
QR_IMAGE_TYPES = {"image/png", "image/jpeg"}
TEMPLATES_MAX = 100  # per corp (Doc 92366)
TEMPLATE_TEXT_MAX_BYTES = 4000
RETRY_SECONDS = 5.0


def _send(task: str, args: tuple[object, ...], *, countdown: float | None = None) -> None:
    from tasks.celery import app

    try:
        app.send_task(task, args=args, queue="events", countdown=countdown)
    except Exception as exc:  # the beat check re-plans active codes: a lost message heals
        logger.warning("%s not enqueued: %s", task, type(exc).__name__)


# -- notices -------------------------------------------------------------------------------------------


def notice_add(
    *, corp: Corp, kind: str, key: str, text: str, code: GroupCode | None = None, owner_userid: str = ""
) -> Notice | None:
    """Records a notice once per `key` (a repeat returns None)."""
    try:
        with transaction.atomic():
            return Notice.objects.create(
                corp=corp, code=code, kind=kind, key=key[:120], text=text, owner_userid=owner_userid
            )
    except IntegrityError:
        return None


# -- codes and pools -------------------------------------------------------------------------------


def _new_state(corp: Corp) -> str:
    # ≤30 chars (Doc 92229); unique per corp and recognisably a group code's.
    while True:
        state = "gc" + secrets.token_hex(6)
        if not GroupCode.objects.filter(corp=corp, state=state).exists():
            return state


def _check_groups(*, corp: Corp, groups: Sequence[CustomerGroup]) -> None:
    for g in groups:
        if g.corp_id != corp.pk:
            raise CustomerGroup.DoesNotExist
        if g.status != CustomerGroup.Status.ACTIVE:
            raise ValidationError(
                _("Group %(name)s is dismissed and cannot be put behind a code.") % {"name": g},
                code="dismissed",
            )


def code_create(
    *,
    corp: Corp,
    name: str,
    mode: str = GroupCode.Mode.OFFICIAL,
    groups: Sequence[CustomerGroup] = (),
    capacity: int = 200,
    room_base_name: str = "",
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> GroupCode:
    """Creates the code; an official one also in WeCom (add_join_way) in the same transaction, with its
    first groups on it, so a refusal leaves nothing."""
    if not 2 <= capacity <= 500:
        raise ValidationError(_("The capacity must be between 2 and 500 members."), code="capacity")
    _check_groups(corp=corp, groups=groups)
    if mode == GroupCode.Mode.OFFICIAL and not groups:
        raise ValidationError(_("Choose at least one group for the code."), code="no_groups")
    with transaction.atomic():
        code = GroupCode.objects.create(
            corp=corp,
            name=name.strip()[:30],
            mode=mode,
            state=_new_state(corp) if mode == GroupCode.Mode.OFFICIAL else "",
            slug=secrets.token_urlsafe(12),
            capacity=capacity,
            room_base_name=(room_base_name.strip() or name.strip())[:40],
            created_by=user if isinstance(user, User) else None,
        )
        PoolGroup.objects.bulk_create(
            PoolGroup(corp=corp, code=code, group=g, order=i) for i, g in enumerate(dict.fromkeys(groups))
        )
        if mode == GroupCode.Mode.OFFICIAL:
            plan = _plan(code, margin=1)
            if not plan.chat_ids:
                raise ValidationError(
                    _("Every group chosen is already near its capacity: add groups with room."),
                    code="all_full",
                )
            client = wecom_client(corp=corp, lane="events")
            auto = plan.exhausted
            # Reference: Doc 92229 — scene 2 (QR code); auto_create_room only once the pool runs out
            answer = client.add_join_way(
                scene=2,
                chat_id_list=list(plan.chat_ids),
                remark=code.name,
                auto_create_room=1 if auto else 0,
                room_base_name=code.room_base_name,
                room_base_id=code.room_base_id,
                state=code.state,
            )
            code.config_id = str(answer["config_id"])
            # Reference: Doc 92229 — the QR code comes with get_join_way
            way = client.get_join_way(code.config_id).get("join_way", {})
            code.qr_code = str(way.get("qr_code", ""))
            now = timezone.now()
            _apply_plan(code, plan, auto=auto, now=now)
            _exhaustion(code, plan, official=True, now=now)
            code.save()
    if code.qr_code:
        code_qr_fetch(code=code)
    return code


def code_qr_fetch(*, code: GroupCode) -> bytes | None:
    """The join way's QR image, kept here so pages don't hot-link WeCom."""
    if code.qr_png:
        return bytes(code.qr_png)
    if not code.qr_code:
        return None
    try:
        # The image sits on WeCom's CDN (or the sandbox), not behind the API: a plain GET, no token.
        response = httpx.get(code.qr_code, timeout=5.0, follow_redirects=True)
    except httpx.HTTPError as exc:
        logger.warning("QR image of group code %s not fetched: %s", code.pk, type(exc).__name__)
        return None
    if response.status_code != 200 or not response.headers.get("content-type", "").startswith("image/"):
        return None
    GroupCode.objects.filter(pk=code.pk).update(qr_png=response.content)
    code.qr_png = response.content
    return response.content


def pool_add(*, corp: Corp, code: GroupCode, groups: Sequence[CustomerGroup]) -> int:
    """Adds groups at the end of the pool (official mode) and re-plans the code. Returns how many."""
    if code.corp_id != corp.pk or code.status != GroupCode.Status.ACTIVE:
        raise GroupCode.DoesNotExist
    _check_groups(corp=corp, groups=groups)
    with transaction.atomic():
        code = GroupCode.objects.select_for_update().get(pk=code.pk, corp=corp)
        start = (code.pool.aggregate(m=Max("order"))["m"] or 0) + 1
        existing = dict(code.pool.values_list("group_id", "status"))
        added = 0
        for i, g in enumerate(groups):
            if existing.get(g.pk) == PoolGroup.Status.REMOVED:
                code.pool.filter(group=g).update(status=PoolGroup.Status.WAITING, order=start + i)
                added += 1
            elif g.pk not in existing:
                PoolGroup.objects.create(corp=corp, code=code, group=g, order=start + i)
                added += 1
    if added:
        code_rotate(corp=corp, code_id=code.pk)
    return added


def pool_add_image(
    *,
    corp: Corp,
    code: GroupCode,
    group: CustomerGroup,
    image: bytes,
    content_type: str,
    expires_at: datetime | None = None,
) -> PoolGroup:
    """Landing mode: a group's QR image, as WeChat gave it (valid 7 days). A new image for a group already
    in the pool replaces the old one."""
    if code.corp_id != corp.pk or code.mode != GroupCode.Mode.LANDING:
        raise GroupCode.DoesNotExist
    _check_groups(corp=corp, groups=[group])
    if content_type not in QR_IMAGE_TYPES or not (
        image.startswith(b"\x89PNG") or image.startswith(b"\xff\xd8")
    ):
        raise ValidationError(_("Upload the group's QR code as a PNG or JPEG image."), code="image_type")
    if len(image) > QR_IMAGE_MAX_BYTES:
        raise ValidationError(_("The image is larger than 2 MB."), code="image_size")
    now = timezone.now()
    expires_at = expires_at or now + QR_IMAGE_TTL
    if expires_at <= now:
        raise ValidationError(_("This QR image has already expired."), code="expired")
    with transaction.atomic():
        start = (code.pool.aggregate(m=Max("order"))["m"] or 0) + 1
        entry, _new = PoolGroup.objects.get_or_create(
            corp=corp, code=code, group=group, defaults={"order": start}
        )
        entry.qr_image, entry.qr_content_type, entry.qr_expires_at = image, content_type, expires_at
        entry.expiry_warned_at = None
        if entry.status == PoolGroup.Status.REMOVED:
            entry.status, entry.order = PoolGroup.Status.WAITING, start
        entry.save()
    code_rotate(corp=corp, code_id=code.pk)
    return entry


def pool_remove(*, corp: Corp, code: GroupCode, entry_pk: int) -> None:
    with transaction.atomic():
        updated = PoolGroup.objects.filter(corp=corp, code=code, pk=entry_pk).update(
            status=PoolGroup.Status.REMOVED
        )
        if not updated:
            raise PoolGroup.DoesNotExist
    code_rotate(corp=corp, code_id=code.pk)


def code_delete(*, corp: Corp, code: GroupCode) -> None:
    """Removes the join way from WeCom; the code stays here, deleted, for its statistics."""
    if code.corp_id != corp.pk:
        raise GroupCode.DoesNotExist
    with transaction.atomic():
        code = GroupCode.objects.select_for_update().get(pk=code.pk, corp=corp)
        if code.status == GroupCode.Status.DELETED:
            return
        if code.config_id:
            # Reference: Doc 92229
            wecom_client(corp=corp, lane="events").del_join_way(code.config_id)
        code.status = GroupCode.Status.DELETED
        code.applied_chat_ids = []
        code.save(update_fields=["status", "applied_chat_ids", "updated_at"])


# -- rotation --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    chat_id: str
    members: int
    received_at: datetime | None = None  # when our callback endpoint stored the event
    margin: int = 1  # the margin the event saw (its CreateTime's join rate)
    applied_at: float | None = None  # time.time() when the event was applied


def _margin(code: GroupCode) -> tuple[int, float]:
    rate = rotation.rate_now(code_id=code.pk, now=int(time.time()))
    reaction_s = rotation.reaction_seconds(corp_pk=code.corp_id)
    return rotation.margin_of(rate=rate, reaction_s=reaction_s, capacity=code.capacity), rate


def _entries(code: GroupCode) -> list[PoolGroup]:
    return list(
        code.pool.exclude(status=PoolGroup.Status.REMOVED)
        .select_related("group")
        .defer("qr_image")
        .order_by("order", "pk")
    )


def _plan(
    code: GroupCode, *, margin: int, entries: list[PoolGroup] | None = None, now: datetime | None = None
) -> rotation.WayPlan:
    now = now or timezone.now()
    landing = code.mode == GroupCode.Mode.LANDING
    slots = [
        rotation.Slot(
            entry_id=e.pk,
            chat_id=e.group.chat_id,
            members=e.group.member_count,
            full=e.status == PoolGroup.Status.FULL,
            live=e.group.status == CustomerGroup.Status.ACTIVE,
            usable=not landing or (e.qr_expires_at is not None and e.qr_expires_at > now),
        )
        for e in (entries if entries is not None else _entries(code))
    ]
    return rotation.plan_way(
        slots=slots,
        capacity=code.capacity,
        margin=margin,
        width=1 if landing else WAY_MAX_CHATS,
        applied=() if landing else code.applied_chat_ids,
    )


def _apply_plan(code: GroupCode, plan: rotation.WayPlan, *, auto: bool, now: datetime) -> None:
    serving, full = set(plan.serving), set(plan.newly_full)
    for status, ids in (
        (PoolGroup.Status.FULL, full),
        (PoolGroup.Status.SERVING, serving - full),
    ):
        if ids:
            PoolGroup.objects.filter(code=code, pk__in=ids).update(status=status)
    PoolGroup.objects.filter(code=code, pk__in=serving, served_at__isnull=True).update(served_at=now)
    PoolGroup.objects.filter(code=code, pk__in=full, full_at__isnull=True).update(full_at=now)
    PoolGroup.objects.filter(code=code, status=PoolGroup.Status.SERVING).exclude(pk__in=serving).update(
        status=PoolGroup.Status.WAITING
    )
    code.applied_chat_ids = list(plan.chat_ids)
    code.applied_auto_create = auto


def code_rotate(*, corp: Corp, code_id: int, trigger: Trigger | None = None) -> rotation.WayPlan | None:
    """Brings the groups behind the code in line with the plan. WeCom (update_join_way) is called only when
    the set of groups (or auto-create) changes. Returns the plan, None for a code that is gone."""
    with transaction.atomic():
        code = GroupCode.objects.select_for_update().filter(corp=corp, pk=code_id).first()
        if code is None or code.status != GroupCode.Status.ACTIVE:
            return None
        official = code.mode == GroupCode.Mode.OFFICIAL
        if official and not code.config_id:
            return None
        now = timezone.now()
        margin, rate = _margin(code)
        margin = max(margin, trigger.margin if trigger else 1)
        plan = _plan(code, margin=margin, now=now)
        auto = official and plan.exhausted
        before = list(code.applied_chat_ids)
        changed = set(plan.chat_ids) != set(before) or (official and auto != code.applied_auto_create)
        if changed and official:
            if not plan.chat_ids:
                _alert(code, _("Every group behind this code is dismissed: add groups to the pool."), None)
                return plan
            try:
                # Reference: Doc 92229 — WeCom overwrites the whole way, so every field goes again
                wecom_client(corp=corp, lane="events").update_join_way(
                    config_id=code.config_id,
                    scene=2,
                    chat_id_list=list(plan.chat_ids),
                    remark=code.name,
                    auto_create_room=1 if auto else 0,
                    room_base_name=code.room_base_name,
                    room_base_id=code.room_base_id,
                    state=code.state,
                )
            except WeComError as exc:
                _alert(code, wecom_error_text(exc, "zh-hans"), exc.errcode)
                Rotation.objects.create(
                    corp=corp,
                    code=code,
                    kind=Rotation.Kind.FAILED,
                    removed=[c for c in before if c not in plan.chat_ids],
                    added=[c for c in plan.chat_ids if c not in before],
                    margin=margin,
                    rate=rate,
                    errcode=exc.errcode,
                )
                logger.warning("group code %s: update_join_way refused: %s", code.pk, exc)
                if isinstance(exc, TransientError):
                    transaction.on_commit(
                        lambda: _send("tasks.groupcodes.rotate", (corp.pk, code_id), countdown=RETRY_SECONDS)
                    )
                return plan
        _apply_plan(code, plan, auto=auto, now=now)
        code.alert, code.alert_errcode, code.alert_at = "", None, None  # WeCom holds the plan now
        if changed:
            code.rotations += 1
            code.last_rotated_at = now
            latency = decide = None
            if trigger is not None and trigger.applied_at is not None:
                decide = int(max(0.0, time.time() - trigger.applied_at) * 1000)
            if trigger is not None and trigger.received_at is not None:
                reaction = max(0.0, (timezone.now() - trigger.received_at).total_seconds())
                latency = int(reaction * 1000)
                rotation.reaction_record(corp_pk=corp.pk, seconds=reaction)
            Rotation.objects.create(
                corp=corp,
                code=code,
                removed=[c for c in before if c not in plan.chat_ids],
                added=[c for c in plan.chat_ids if c not in before],
                trigger_chat_id=trigger.chat_id if trigger else "",
                trigger_members=trigger.members if trigger else None,
                margin=margin,
                rate=rate,
                latency_ms=latency,
                decide_ms=decide,
            )
            logger.info("group code %s: %s → %s (margin %s)", code.pk, before, list(plan.chat_ids), margin)
            # groupchat/get gives each member's `state`: fetch the groups that leave the code once.
            for chat_id in [c for c in before if c not in plan.chat_ids]:
                transaction.on_commit(partial(_send, "tasks.sync.refresh_group", (corp.pk, chat_id)))
        _exhaustion(code, plan, official=official, now=now)
        code.save()
    return plan


def _alert(code: GroupCode, text: str, errcode: int | None) -> None:
    code.alert, code.alert_errcode, code.alert_at = text[:300], errcode, timezone.now()
    code.save(update_fields=["alert", "alert_errcode", "alert_at", "updated_at"])
    notice_add(
        corp=code.corp,
        code=code,
        kind=Notice.Kind.ROTATION_FAILED,
        key=f"failed:{code.pk}:{int(time.time() // 600)}",  # at most one every 10 minutes
        text=_("Group code %(name)s could not change its groups: %(error)s")
        % {"name": code.name, "error": text},
    )


def _exhaustion(code: GroupCode, plan: rotation.WayPlan, *, official: bool, now: datetime) -> None:
    if not plan.exhausted:
        code.exhausted_at = None
        return
    if code.exhausted_at is not None:
        return
    code.exhausted_at = now
    if official:
        text = _(
            "Group code %(name)s has put the last groups of its pool on the code. When they are full WeCom "
            "creates new groups named %(base)s%(number)s, %(base)s%(next)s… Add groups to the pool to "
            "choose them yourself."
        ) % {
            "name": code.name,
            "base": code.room_base_name,
            "number": code.room_base_id,
            "next": code.room_base_id + 1,
        }
    elif plan.chat_ids:
        text = _(
            "Landing page %(name)s shows the last group of its pool with room: upload more group QR codes."
        ) % {"name": code.name}
    else:
        text = _(
            "Landing page %(name)s has no group left to show (all full or expired): upload a group QR code."
        ) % {"name": code.name}
    Rotation.objects.create(
        corp=code.corp, code=code, kind=Rotation.Kind.EXHAUSTED, added=list(plan.chat_ids)
    )
    notice_add(
        corp=code.corp,
        code=code,
        kind=Notice.Kind.EXHAUSTED,
        key=f"exhausted:{code.pk}:{now.timestamp()}",
        text=text,
    )


def _loaded(corp: Corp) -> Corp:
    # The events lane applies with a bare Corp (ids only, no secrets): WeCom calls need the stored one.
    return Corp.objects.get(pk=corp.pk)


def _rotate_after_commit(corp: Corp, code_id: int, trigger: Trigger | None) -> None:
    def run() -> None:
        try:
            code_rotate(corp=_loaded(corp), code_id=code_id, trigger=trigger)
        except Exception:  # the event is applied and stays so; the periodic check re-plans the code
            logger.exception("group code %s: rotation failed", code_id)
            _send("tasks.groupcodes.rotate", (corp.pk, code_id), countdown=RETRY_SECONDS)

    transaction.on_commit(run)


# -- event hooks (called by scrm/callbacks/apply.py) ------------------------------------------------


def code_on_member_change(
    *, corp: Corp, change: MemberChange, event_time: int, inbox_event: InboxEvent | None = None
) -> None:
    """Counts a join / leave for the codes whose pool holds the group, and rotates a code whose group on
    it has crossed the threshold (right after this event commits)."""
    if not change.applied:
        return  # a replay: counted the first time
    group = change.group
    entries = list(
        PoolGroup.objects.filter(corp=corp, group=group, code__status=GroupCode.Status.ACTIVE)
        .exclude(status=PoolGroup.Status.REMOVED)
        .values_list("code_id", "status", "code__capacity")
    )
    if not entries:
        return
    at = datetime.fromtimestamp(event_time, tz=UTC) if event_time else timezone.now()
    day = at.astimezone(SHANGHAI).date()
    reaction_s: float | None = None
    for code_id, status, capacity in entries:
        stat, _created = CodeDayStat.objects.get_or_create(corp=corp, code_id=code_id, group=group, day=day)
        CodeDayStat.objects.filter(pk=stat.pk).update(
            joins=F("joins") + change.joins,
            leaves=F("leaves") + change.leaves,
            size_at_end=group.member_count,
        )
        if change.joins:
            rate = rotation.rate_count(code_id=code_id, event_time=event_time, joins=change.joins)
        else:
            rate = rotation.rate_now(code_id=code_id, now=event_time)
        if status != PoolGroup.Status.SERVING:
            continue
        if reaction_s is None:
            reaction_s = rotation.reaction_seconds(corp_pk=corp.pk)
        margin = rotation.margin_of(rate=rate, reaction_s=reaction_s, capacity=capacity)
        if group.member_count + margin >= capacity:
            received = (
                InboxEvent.objects.filter(pk=inbox_event.pk).values_list("received_at", flat=True).first()
                if inbox_event is not None and inbox_event.pk
                else None
            )
            trigger = Trigger(group.chat_id, group.member_count, received, margin, time.time())
            _rotate_after_commit(corp, code_id, trigger)


def code_on_chat_dismiss(*, corp: Corp, chat_id: str) -> None:
    for code_id in (
        PoolGroup.objects.filter(corp=corp, group__chat_id=chat_id, code__status=GroupCode.Status.ACTIVE)
        .exclude(status=PoolGroup.Status.REMOVED)
        .values_list("code_id", flat=True)
        .distinct()
    ):
        _rotate_after_commit(corp, code_id, Trigger(chat_id, 0))


def code_on_chat_create(*, corp: Corp, chat_id: str) -> None:
    """A new group may be one WeCom created for a code whose pool ran out (auto_create_room)."""
    for code_id in GroupCode.objects.filter(
        corp=corp, status=GroupCode.Status.ACTIVE, mode=GroupCode.Mode.OFFICIAL, applied_auto_create=True
    ).values_list("pk", flat=True):
        transaction.on_commit(partial(_sync_after_commit, corp, code_id))


def _sync_after_commit(corp: Corp, code_id: int) -> None:
    try:
        code_sync_join_way(corp=_loaded(corp), code_id=code_id)
    except Exception:
        logger.exception("group code %s: join way not read back", code_id)
        _send("tasks.groupcodes.sync_join_way", (corp.pk, code_id), countdown=RETRY_SECONDS)


def code_sync_join_way(*, corp: Corp, code_id: int) -> list[str]:
    """Reads the join way back from WeCom and adopts the groups WeCom created for it. Returns those."""
    with transaction.atomic():
        code = (
            GroupCode.objects.select_for_update()
            .filter(corp=corp, pk=code_id, status=GroupCode.Status.ACTIVE)
            .exclude(config_id="")
            .first()
        )
        if code is None:
            return []
        # Reference: Doc 92229
        way = wecom_client(corp=corp, lane="events").get_join_way(code.config_id).get("join_way", {})
        chat_ids = [str(c) for c in way.get("chat_id_list") or []]
        known = set(code.pool.values_list("group__chat_id", flat=True))
        new = [c for c in chat_ids if c not in known]
        order = (code.pool.aggregate(m=Max("order"))["m"] or 0) + 1
        now = timezone.now()
        for i, chat_id in enumerate(new):
            group = group_get_or_create(corp=corp, chat_id=chat_id)
            PoolGroup.objects.create(
                corp=corp,
                code=code,
                group=group,
                order=order + i,
                status=PoolGroup.Status.SERVING,
                auto_created=True,
                served_at=now,
            )
            Rotation.objects.create(corp=corp, code=code, kind=Rotation.Kind.AUTO_CREATE, added=[chat_id])
            notice_add(
                corp=corp,
                code=code,
                kind=Notice.Kind.AUTO_CREATED,
                key=f"auto:{code.pk}:{chat_id}",
                text=_("WeCom created a new group for group code %(name)s (its pool is used up).")
                % {"name": code.name},
            )
        code.applied_chat_ids = chat_ids
        code.room_base_id = int(way.get("room_base_id") or code.room_base_id)
        code.save(update_fields=["applied_chat_ids", "room_base_id", "updated_at"])
    return new


def codes_check_all() -> int:
    """Periodic: every active code is re-planned (a lost rotation heals, leaves free no room). WeCom is
    called only for codes whose plan changed."""
    count = 0
    for code_id, corp_pk in GroupCode.objects.filter(status=GroupCode.Status.ACTIVE).values_list(
        "pk", "corp_id"
    ):
        _send("tasks.groupcodes.rotate", (corp_pk, code_id))
        count += 1
    return count


# -- landing pages ---------------------------------------------------------------------------------


def landing_entry(*, code: GroupCode) -> PoolGroup | None:
    """The group the landing page shows now: the serving one, re-planned when its image has expired."""
    now = timezone.now()
    entry = code.pool.filter(status=PoolGroup.Status.SERVING).select_related("group").first()
    if entry is None or entry.qr_expires_at is None or entry.qr_expires_at <= now:
        code_rotate(corp=code.corp, code_id=code.pk)
        entry = code.pool.filter(status=PoolGroup.Status.SERVING).select_related("group").first()
        if entry is not None and (entry.qr_expires_at is None or entry.qr_expires_at <= now):
            return None
    return entry


def landing_expiry_check(*, now: datetime | None = None) -> int:
    """Periodic: warns admins a day before an uploaded group QR image expires (once per image), and moves
    landing pages off expired images. Returns the warnings made."""
    now = now or timezone.now()
    due = (
        PoolGroup.objects.filter(
            code__status=GroupCode.Status.ACTIVE,
            code__mode=GroupCode.Mode.LANDING,
            status__in=[PoolGroup.Status.WAITING, PoolGroup.Status.SERVING],
            qr_expires_at__lte=now + EXPIRY_WARNING,
            expiry_warned_at__isnull=True,
        )
        .select_related("code", "group", "corp")
        .defer("qr_image")
    )
    warned = 0
    for entry in due:
        expires = entry.qr_expires_at
        assert expires is not None
        notice_add(
            corp=entry.corp,
            code=entry.code,
            kind=Notice.Kind.EXPIRY,
            key=f"expiry:{entry.pk}:{int(expires.timestamp())}",
            text=_(
                "The QR image of group %(group)s on landing page %(name)s expires at %(when)s: "
                "upload a new one."
            )
            % {
                "group": entry.group,
                "name": entry.code.name,
                "when": expires.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
            },
        )
        PoolGroup.objects.filter(pk=entry.pk).update(expiry_warned_at=now)
        warned += 1
    for code_id, corp_pk in (
        PoolGroup.objects.filter(
            code__status=GroupCode.Status.ACTIVE,
            code__mode=GroupCode.Mode.LANDING,
            status=PoolGroup.Status.SERVING,
            qr_expires_at__lte=now,
        )
        .values_list("code_id", "corp_id")
        .distinct()
    ):
        _send("tasks.groupcodes.rotate", (corp_pk, code_id))
    return warned


# -- group welcome templates -----------------------------------------------------------------------


def _template_check(*, corp: Corp, text: str, link_title: str, link_url: str, approver: bool) -> None:
    from scrm.compliance.services import content_gate_check

    if not text.strip():
        raise ValidationError(_("Write the welcome text."), code="empty")
    if len(text.encode()) > TEMPLATE_TEXT_MAX_BYTES:
        raise ValidationError(
            _("The text is too long: WeCom accepts at most %(max)s bytes.")
            % {"max": TEMPLATE_TEXT_MAX_BYTES},
            code="too_long",
        )
    if bool(link_title) != bool(link_url):
        raise ValidationError(_("A link needs both a title and an address."), code="link")
    content_gate_check(corp=corp, texts=[t for t in (text, link_title) if t], approver=approver)


def _link(link_title: str, link_url: str) -> dict[str, str] | None:
    return {"title": link_title, "url": link_url} if link_url else None


def template_save(
    *,
    corp: Corp,
    template: GroupWelcomeTemplate | None,
    name: str,
    text: str,
    link_title: str = "",
    link_url: str = "",
    notify: bool = True,
    approver: bool = False,
) -> GroupWelcomeTemplate:
    """Creates (group_welcome_template/add, ≤100 per corp) or edits a template, after the content gate."""
    _template_check(corp=corp, text=text, link_title=link_title, link_url=link_url, approver=approver)
    client = wecom_client(corp=corp, lane="events")
    with transaction.atomic():
        Corp.objects.select_for_update().filter(pk=corp.pk).values_list("pk").first()  # serialise the count
        if template is None:
            if GroupWelcomeTemplate.objects.filter(corp=corp).count() >= TEMPLATES_MAX:
                raise ValidationError(
                    _("WeCom keeps at most %(max)s group welcome templates per company: delete one first.")
                    % {"max": TEMPLATES_MAX},
                    code="too_many",
                )
            template = GroupWelcomeTemplate(corp=corp)
        elif template.corp_id != corp.pk:
            raise GroupWelcomeTemplate.DoesNotExist
        template.name, template.text = name.strip()[:50], text
        template.link_title, template.link_url, template.notify = link_title, link_url, notify
        if template.template_id:
            # Reference: Doc 92366 — an app edits only the templates it created
            client.edit_group_welcome_template(
                template_id=template.template_id,
                text=text,
                link=_link(link_title, link_url),
                agentid=corp.agent_id,
            )
        else:
            # Reference: Doc 92366
            answer = client.add_group_welcome_template(
                text=text, link=_link(link_title, link_url), agentid=corp.agent_id, notify=1 if notify else 0
            )
            template.template_id = str(answer["template_id"])
        template.save()
    return template


def template_delete(*, corp: Corp, template: GroupWelcomeTemplate) -> None:
    if template.corp_id != corp.pk:
        raise GroupWelcomeTemplate.DoesNotExist
    with transaction.atomic():
        if template.template_id:
            # Reference: Doc 92366
            wecom_client(corp=corp, lane="events").del_group_welcome_template(
                template.template_id, agentid=corp.agent_id
            )
        template.delete()


# -- duplicates ------------------------------------------------------------------------------------


def duplicates_notify_owners(*, corp: Corp, code: GroupCode) -> int:
    """Records, for each owner of a pool group, a notice naming the customers of their groups who are in
    another group of the same pool too. Nobody is removed. Returns the notices made (one per owner, once a
    day)."""
    if code.corp_id != corp.pk:
        raise GroupCode.DoesNotExist
    by_owner: dict[str, list[str]] = {}
    for dup in pool_duplicates(corp=corp, code=code):
        for g in dup.groups:
            by_owner.setdefault(g.owner_userid, []).append(f"{dup.name} ({g})")
    made = 0
    day = timezone.now().astimezone(SHANGHAI).date().isoformat()
    for owner, items in by_owner.items():
        if not owner:
            continue
        text = _(
            "Customers in your groups of %(code)s who are also in another group of it: %(items)s. "
            "Consider asking them to keep one group."
        ) % {"code": code.name, "items": "; ".join(items[:50])}
        if notice_add(
            corp=corp,
            code=code,
            kind=Notice.Kind.DUPLICATES,
            key=f"dup:{code.pk}:{owner}:{day}",
            text=text,
            owner_userid=owner,
        ):
            made += 1
    return made
