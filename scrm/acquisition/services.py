"""Writes for channel codes, welcome scripts and their media, the welcome fast lane, and what follows an add.

The welcome path (`welcome_send`) runs on the realtime lane: it reads through `cache.py`, claims the
attempt by its inbox event before calling WeCom, sends, and hands the event to the events lane, where it
is applied and `channel_add_followup` tags, remarks and enriches the new customer.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any

import httpx
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.acquisition import cache, caps
from scrm.acquisition.content import (
    MAX_ATTACHMENTS,
    TEXT_MAX_BYTES,
    VARIABLES,
    render,
    render_text,
    unknown_variables,
    uses_nickname,
    worst_case_bytes,
)
from scrm.acquisition.models import (
    ChannelAdd,
    ChannelCode,
    ChannelMember,
    MediaAsset,
    MemberWelcome,
    Routing,
    WelcomeAttachment,
    WelcomeAttempt,
    WelcomeScript,
    WelcomeVariant,
)
from scrm.compliance.services import content_gate_check
from scrm.core.wecom import wecom_client, wecom_error_text
from scrm.customers.models import Customer, Follow, Member, Tag
from scrm.customers.services import follow_change_tags, timeline_add
from scrm.tenancy.models import Corp
from wecom import events as ev
from wecom.client import WeComClient
from wecom.errors import (
    PermanentError,
    RateLimited,
    TransientError,
    WeComError,
    WelcomeAlreadySent,
    WelcomeBusy,
    WelcomeCodeInvalid,
)

logger = logging.getLogger(__name__)

# Our deadline inside WeCom's 20 s (Doc 92137), counted from when the callback reached us: the event is
# a little older than that already, and the call itself takes time.
WELCOME_DEADLINE = timedelta(seconds=18)
# How long a claimed attempt is left to the worker holding it before a redelivered task takes over.
# Short, so a worker killed mid-call leaves time to retry; WeCom's welcome codes are single use, so a
# takeover racing a slow but live call gets 41051 rather than a second welcome.
CLAIM_LEASE = timedelta(seconds=3)
# Reading the nickname for a new customer costs one realtime call; only with this much time left.
NICKNAME_MIN_LEFT = 12.0
REMARK_MAX = 20  # Doc 92115
MEDIA_TTL = timedelta(days=3)  # Doc 90253: temporary media
MEDIA_REFRESH_AHEAD = timedelta(hours=24)
# Doc 90253 (media/upload): size and type limits per kind
MEDIA_MAX_BYTES = {"image": 10 * 1024 * 1024, "video": 10 * 1024 * 1024, "file": 20 * 1024 * 1024}
MEDIA_EXTENSIONS: dict[str, tuple[str, ...] | None] = {
    "image": (".jpg", ".jpeg", ".png"),
    "video": (".mp4",),
    "file": None,
}
GONE = {84061, 40096}  # the relation or the customer is gone: nothing to enrich


def _epoch(at: datetime) -> float:
    return at.timestamp()


def _local(at: datetime) -> datetime:
    return at.astimezone(caps.SHANGHAI)


# -- text checks ----------------------------------------------------------------------------------------


def welcome_text_check(*, corp: Corp, text: str, approver: bool = True) -> None:
    """Variables known, within WeCom's size even with the longest values, and no sensitive words.

    `approver`: whether the person saving may approve sensitive words (the corp's gate policy). The forms'
    early check leaves that to the services, which are told who saves (their `approver` is False unless
    said otherwise)."""
    unknown = unknown_variables(text)
    if unknown:
        raise ValidationError(
            _("Unknown variable %(names)s. You can use: %(known)s.")
            % {
                "names": ", ".join("{" + n + "}" for n in unknown),
                "known": ", ".join("{" + n + "}" for n in VARIABLES),
            },
            code="variables",
        )
    if worst_case_bytes(text) > TEXT_MAX_BYTES:
        raise ValidationError(
            _("The text is too long: WeCom accepts at most %(max)s bytes (about 1,300 Chinese characters).")
            % {"max": TEXT_MAX_BYTES},
            code="too_long",
        )
    content_gate_check(corp=corp, texts=[text], approver=approver)


# -- media ----------------------------------------------------------------------------------------------


def media_check(*, kind: str, name: str, size: int) -> None:
    exts = MEDIA_EXTENSIONS[kind]
    if exts is not None and not name.lower().endswith(exts):
        raise ValidationError(
            _("This kind of attachment must be one of these file types: %(exts)s.")
            % {"exts": ", ".join(exts)},
            code="media_type",
        )
    if size < 5 or size > MEDIA_MAX_BYTES[kind]:
        raise ValidationError(
            _("The file must be between 5 bytes and %(mb)s MB.")
            % {"mb": MEDIA_MAX_BYTES[kind] // (1024 * 1024)},
            code="media_size",
        )


def media_upload(*, corp: Corp, asset: MediaAsset, lane: str = "events") -> MediaAsset:
    """Uploads (again) as temporary media and records the new media_id; errors are kept on the asset."""
    client = wecom_client(corp=corp, lane=lane)
    try:
        # Reference: Doc 90253
        answer = client.upload_media(
            media_type=asset.kind,  # type: ignore[arg-type]
            filename=asset.name,
            content=bytes(asset.content),
            content_type=asset.content_type,
        )
    except WeComError as exc:
        asset.last_error = wecom_error_text(exc, "en")[:300]
        asset.save(update_fields=["last_error"])
        raise
    created = datetime.fromtimestamp(int(answer.get("created_at") or time.time()), tz=UTC)
    asset.media_id = str(answer["media_id"])
    asset.uploaded_at = created
    asset.expires_at = created + MEDIA_TTL
    asset.last_error = ""
    asset.save(update_fields=["media_id", "uploaded_at", "expires_at", "last_error"])
    cache.cache_invalidate(corp_pk=corp.pk)
    return asset


def media_refresh_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Re-uploads every attachment's media expiring within a day (or never uploaded). Returns how many
    were uploaded; failures stay on the asset and are tried again next run."""
    now = now or timezone.now()
    used = WelcomeAttachment.objects.filter(media__isnull=False).values("media_id")
    due = MediaAsset.objects.filter(pk__in=used).filter(
        Q(expires_at__isnull=True) | Q(expires_at__lt=now + MEDIA_REFRESH_AHEAD)
    )
    ids = list(due.values_list("pk", flat=True)[:limit])
    done = 0
    for asset in MediaAsset.objects.filter(pk__in=ids).select_related("corp").order_by("expires_at"):
        try:
            media_upload(corp=asset.corp, asset=asset, lane="bulk")
            done += 1
        except WeComError as exc:
            logger.warning("media %s not refreshed: %s", asset.pk, exc)
    return done


# -- scripts --------------------------------------------------------------------------------------------


def script_save(
    *,
    corp: Corp,
    script: WelcomeScript | None,
    name: str,
    text: str,
    nickname_fallback: str = "",
    is_default: bool = False,
    members: Sequence[Member] = (),
    approver: bool = False,
) -> WelcomeScript:
    """Creates or edits a script; `members` get it as their own script (taken from any other).
    `approver`: the person saving is an admin, whose saving approves sensitive words if the corp asks."""
    welcome_text_check(corp=corp, text=text, approver=approver)
    content_gate_check(corp=corp, texts=[nickname_fallback], approver=approver)
    if any(m.corp_id != corp.pk for m in members):
        raise Member.DoesNotExist
    name = name.strip()
    duplicate = WelcomeScript.objects.filter(corp=corp, name=name)
    if script is not None:
        if script.corp_id != corp.pk:
            raise WelcomeScript.DoesNotExist
        duplicate = duplicate.exclude(pk=script.pk)
    if duplicate.exists():
        raise ValidationError(_("Another script already has this name."), code="name")
    with transaction.atomic():
        if is_default:
            others = WelcomeScript.objects.filter(corp=corp, is_default=True)
            if script is not None:
                others = others.exclude(pk=script.pk)
            others.update(is_default=False)
        if script is None:
            script = WelcomeScript(corp=corp)
        script.name, script.text, script.nickname_fallback = name, text, nickname_fallback
        script.is_default = is_default
        script.save()
        MemberWelcome.objects.filter(corp=corp, script=script).exclude(member__in=list(members)).delete()
        for member in members:
            MemberWelcome.objects.update_or_create(corp=corp, member=member, defaults={"script": script})
        cache.cache_invalidate(corp_pk=corp.pk)
    return script


def script_delete(*, corp: Corp, script: WelcomeScript) -> None:
    if script.corp_id != corp.pk:
        raise WelcomeScript.DoesNotExist
    with transaction.atomic():
        media_ids = list(
            WelcomeAttachment.objects.filter(corp=corp, script=script, media__isnull=False).values_list(
                "media_id", flat=True
            )
        )
        script.delete()
        _media_drop_unused(corp=corp, media_ids=media_ids)
        cache.cache_invalidate(corp_pk=corp.pk)


def variant_add(
    *,
    corp: Corp,
    script: WelcomeScript,
    weekdays: Sequence[int],
    start: dtime,
    end: dtime,
    text: str,
    approver: bool = False,
) -> WelcomeVariant:
    if script.corp_id != corp.pk:
        raise WelcomeScript.DoesNotExist
    welcome_text_check(corp=corp, text=text, approver=approver)
    if start == end:
        raise ValidationError(_("The start and end times must differ."), code="slot")
    with transaction.atomic():
        order = script.variants.count()
        variant = WelcomeVariant.objects.create(
            corp=corp,
            script=script,
            weekdays=sorted(set(weekdays)),
            start_time=start,
            end_time=end,
            text=text,
            order=order,
        )
        cache.cache_invalidate(corp_pk=corp.pk)
    return variant


def variant_delete(*, corp: Corp, variant: WelcomeVariant) -> None:
    if variant.corp_id != corp.pk:
        raise WelcomeVariant.DoesNotExist
    with transaction.atomic():
        media_ids = list(variant.attachments.filter(media__isnull=False).values_list("media_id", flat=True))
        variant.delete()
        _media_drop_unused(corp=corp, media_ids=media_ids)
        cache.cache_invalidate(corp_pk=corp.pk)


@dataclass(frozen=True)
class Upload:
    name: str
    content: bytes
    content_type: str


FILE_KINDS = ("image", "video", "file", "miniprogram")  # a mini-program needs its cover image


def attachment_fields_check(
    *, kind: str, title: str, url: str, appid: str, page: str, upload: Upload | None
) -> None:
    """What each kind of attachment needs (welcome messages and broadcasts carry the same kinds)."""
    if kind in ("link", "miniprogram") and not title.strip():
        raise ValidationError(_("Give the attachment a title."), code="title")
    if kind == "link" and not url:
        raise ValidationError(_("Enter the address the link opens."), code="url")
    if kind == "miniprogram" and not (appid.strip() and page.strip()):
        raise ValidationError(_("Enter the mini-program's AppID and page path."), code="miniprogram")
    if kind in FILE_KINDS and upload is None:
        raise ValidationError(
            _("Choose a cover image for the mini-program.") if kind == "miniprogram" else _("Choose a file."),
            code="file",
        )


def attachment_media_create(*, corp: Corp, kind: str, upload: Upload | None) -> MediaAsset | None:
    """Keeps an attachment's file (checked against WeCom's size and type rules) for uploading ahead."""
    if kind not in FILE_KINDS or upload is None:
        return None
    media_kind = "image" if kind == "miniprogram" else kind
    media_check(kind=media_kind, name=upload.name, size=len(upload.content))
    return MediaAsset.objects.create(
        corp=corp,
        kind=media_kind,
        name=upload.name[:128],
        content=upload.content,
        content_type=upload.content_type or "application/octet-stream",
        size=len(upload.content),
    )


def attachment_add(
    *,
    corp: Corp,
    script: WelcomeScript,
    kind: str,
    variant: WelcomeVariant | None = None,
    title: str = "",
    url: str = "",
    pic_url: str = "",
    description: str = "",
    appid: str = "",
    page: str = "",
    upload: Upload | None = None,
    approver: bool = False,
) -> WelcomeAttachment:
    """Adds an attachment; its file is uploaded to WeCom now (and refreshed before it expires), never on
    the welcome path. A failed upload is kept and retried by the refresh task."""
    if script.corp_id != corp.pk or (variant is not None and variant.script_id != script.pk):
        raise WelcomeScript.DoesNotExist
    if kind not in WelcomeAttachment.Kind.values:
        raise ValidationError(_("Choose what kind of attachment this is."), code="kind")
    siblings = WelcomeAttachment.objects.filter(corp=corp, script=script, variant=variant)
    if siblings.count() >= MAX_ATTACHMENTS:
        raise ValidationError(
            _("A welcome message can carry at most %(n)s attachments.") % {"n": MAX_ATTACHMENTS}, code="count"
        )
    attachment_fields_check(kind=kind, title=title, url=url, appid=appid, page=page, upload=upload)
    content_gate_check(corp=corp, texts=[title, description], approver=approver)
    with transaction.atomic():
        media = attachment_media_create(corp=corp, kind=kind, upload=upload)
        attachment = WelcomeAttachment.objects.create(
            corp=corp,
            script=script,
            variant=variant,
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
        cache.cache_invalidate(corp_pk=corp.pk)
    if media is not None:
        try:
            media_upload(corp=corp, asset=media)
        except WeComError:
            logger.warning("attachment %s: upload failed, the refresh task will try again", attachment.pk)
    return attachment


def attachment_delete(*, corp: Corp, attachment: WelcomeAttachment) -> None:
    if attachment.corp_id != corp.pk:
        raise WelcomeAttachment.DoesNotExist
    with transaction.atomic():
        media_id = attachment.media_id
        attachment.delete()
        _media_drop_unused(corp=corp, media_ids=[media_id] if media_id else [])
        cache.cache_invalidate(corp_pk=corp.pk)


def _media_drop_unused(*, corp: Corp, media_ids: Sequence[int]) -> None:
    used = set(WelcomeAttachment.objects.filter(media_id__in=media_ids).values_list("media_id", flat=True))
    MediaAsset.objects.filter(corp=corp, pk__in=[m for m in media_ids if m not in used]).delete()


# -- channel codes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeatInput:
    member: Member
    backup: bool = False
    weekdays: tuple[int, ...] = ()
    start: dtime | None = None
    end: dtime | None = None


def _seats(code: ChannelCode) -> list[caps.Seat]:
    rows = ChannelMember.objects.filter(corp_id=code.corp_id, code=code).select_related("member")
    return [
        caps.Seat(
            userid=r.member.userid,
            backup=r.backup,
            weekdays=tuple(r.weekdays),
            start=r.start_time,
            end=r.end_time,
            available=r.member.status == Member.Status.ACTIVE and r.member.has_contact_permission,
        )
        for r in rows
    ]


def _check_code_input(
    *,
    corp: Corp,
    seats: Sequence[SeatInput],
    per_minute_cap: int,
    per_day_cap: int,
    remark_template: str,
    script: WelcomeScript | None,
    tags: Sequence[Tag],
) -> None:
    if not any(not s.backup for s in seats):
        raise ValidationError(_("Choose at least one member (not a backup) for the code."), code="members")
    userids = [s.member.userid for s in seats]
    if len(set(userids)) != len(userids):
        raise ValidationError(_("Each member can be on a code only once."), code="members")
    if any(s.member.corp_id != corp.pk for s in seats):
        raise Member.DoesNotExist
    gone = [str(s.member) for s in seats if s.member.status != Member.Status.ACTIVE]
    if gone:
        raise ValidationError(
            _("These members have left the company: %(names)s.") % {"names": "、".join(gone)}, code="members"
        )
    if per_minute_cap < 2 or per_day_cap < 2:
        raise ValidationError(_("Caps must allow at least 2 customers."), code="caps")
    if per_minute_cap > per_day_cap:
        raise ValidationError(_("The per-minute cap can't be larger than the per-day cap."), code="caps")
    unknown = unknown_variables(remark_template)
    if unknown:
        raise ValidationError(
            _("Unknown variable in the remark: %(names)s.")
            % {"names": ", ".join("{" + n + "}" for n in unknown)},
            code="remark",
        )
    if script is not None and script.corp_id != corp.pk:
        raise WelcomeScript.DoesNotExist
    if any(t.corp_id != corp.pk or t.deleted for t in tags):
        raise Tag.DoesNotExist


def _plan(code: ChannelCode, *, now: datetime | None = None) -> caps.Plan:
    now = now or timezone.now()
    seats = _seats(code)
    return caps.routing_plan(
        seats=seats,
        usage=caps.caps_usage(code_id=code.pk, userids=[s.userid for s in seats], now=_epoch(now)),
        per_minute=code.per_minute_cap,
        per_day=code.per_day_cap,
        reaction_s=caps.reaction_seconds(corp_pk=code.corp_id),
        now_local=_local(now),
    )


def _wanted(code: ChannelCode, plan: caps.Plan) -> tuple[list[str], bool]:
    """The user list and skip_verify WeCom should have. WeCom refuses a way without users, so a paused code
    keeps its last members but asks them to confirm each new customer: nobody is added automatically."""
    if plan.routing == Routing.PAUSED:
        users = list(code.applied_userids) or [s.userid for s in _seats(code) if not s.backup][:1]
        return users, False
    return list(plan.users), code.skip_verify


def _record_plan(code: ChannelCode, plan: caps.Plan, users: list[str], skip_verify: bool) -> None:
    now = timezone.now()
    if code.routing != plan.routing or code.applied_userids != users:
        code.routing_changed_at = now
    code.routing, code.applied_userids, code.applied_skip_verify = plan.routing, users, skip_verify
    if plan.routing == Routing.PAUSED:
        if not code.alert or code.alert_errcode is not None:
            code.alert = _(
                "Every member of this code is at a cap or off duty, so new customers must wait for a member "
                "to confirm them. Add members or backups, or raise the caps."
            )
            code.alert_errcode, code.alert_at = None, now
    elif code.alert and code.alert_errcode is None:
        code.alert, code.alert_at = "", None


def code_create(
    *,
    corp: Corp,
    name: str,
    seats: Sequence[SeatInput],
    per_minute_cap: int,
    per_day_cap: int,
    skip_verify: bool = True,
    remark_template: str = "",
    script: WelcomeScript | None = None,
    tags: Sequence[Tag] = (),
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> ChannelCode:
    """Creates the code here and in WeCom (add_contact_way) in one transaction: a refusal leaves nothing."""
    _check_code_input(
        corp=corp,
        seats=seats,
        per_minute_cap=per_minute_cap,
        per_day_cap=per_day_cap,
        remark_template=remark_template,
        script=script,
        tags=tags,
    )
    with transaction.atomic():
        code = ChannelCode.objects.create(
            corp=corp,
            name=name.strip()[:30],
            state=_new_state(corp),
            skip_verify=skip_verify,
            remark_template=remark_template,
            script=script,
            per_minute_cap=per_minute_cap,
            per_day_cap=per_day_cap,
            created_by=user if isinstance(user, User) else None,
        )
        _seats_replace(corp=corp, code=code, seats=seats)
        code.tags.set(list(tags))
        plan = _plan(code)
        users, skip = _wanted(code, plan)
        client = wecom_client(corp=corp, lane="events")
        # Reference: Doc 92572 — type 2 (multi-member, so members can change later), scene 2 (QR code)
        answer = client.add_contact_way(
            type=2, scene=2, user=users, state=code.state, remark=code.name, skip_verify=skip
        )
        code.config_id = str(answer["config_id"])
        code.qr_code = str(answer.get("qr_code", ""))
        _record_plan(code, plan, users, skip)
        code.save()
        cache.cache_invalidate(corp_pk=corp.pk)
    code_qr_fetch(code=code)
    return code


def _new_state(corp: Corp) -> str:
    # ≤30 chars (Doc 92572); unique per corp, and recognisably ours in WeCom's data.
    while True:
        state = "cc" + secrets.token_hex(6)
        if not ChannelCode.objects.filter(corp=corp, state=state).exists():
            return state


def _seats_replace(*, corp: Corp, code: ChannelCode, seats: Sequence[SeatInput]) -> None:
    ChannelMember.objects.filter(corp=corp, code=code).delete()
    ChannelMember.objects.bulk_create(
        ChannelMember(
            corp=corp,
            code=code,
            member=s.member,
            backup=s.backup,
            weekdays=sorted(set(s.weekdays)),
            start_time=s.start,
            end_time=s.end,
            order=i,
        )
        for i, s in enumerate(seats)
    )


def code_update(
    *,
    corp: Corp,
    code: ChannelCode,
    name: str,
    seats: Sequence[SeatInput],
    per_minute_cap: int,
    per_day_cap: int,
    skip_verify: bool = True,
    remark_template: str = "",
    script: WelcomeScript | None = None,
    tags: Sequence[Tag] = (),
) -> ChannelCode:
    """Saves the changes and brings WeCom in step (update_contact_way) in one transaction."""
    if code.corp_id != corp.pk or code.status != ChannelCode.Status.ACTIVE:
        raise ChannelCode.DoesNotExist
    _check_code_input(
        corp=corp,
        seats=seats,
        per_minute_cap=per_minute_cap,
        per_day_cap=per_day_cap,
        remark_template=remark_template,
        script=script,
        tags=tags,
    )
    with transaction.atomic():
        code = ChannelCode.objects.select_for_update().get(pk=code.pk, corp=corp)
        code.name, code.skip_verify, code.remark_template = name.strip()[:30], skip_verify, remark_template
        code.script, code.per_minute_cap, code.per_day_cap = script, per_minute_cap, per_day_cap
        _seats_replace(corp=corp, code=code, seats=seats)
        code.tags.set(list(tags))
        plan = _plan(code)
        users, skip = _wanted(code, plan)
        # Reference: Doc 92572
        wecom_client(corp=corp, lane="events").update_contact_way(
            config_id=code.config_id, user=users, remark=code.name, skip_verify=skip
        )
        _record_plan(code, plan, users, skip)
        code.save()
        cache.cache_invalidate(corp_pk=corp.pk)
    return code


def code_delete(*, corp: Corp, code: ChannelCode) -> None:
    """Removes the way from WeCom (del_contact_way); the code stays here, deleted, for its statistics."""
    if code.corp_id != corp.pk:
        raise ChannelCode.DoesNotExist
    with transaction.atomic():
        code = ChannelCode.objects.select_for_update().get(pk=code.pk, corp=corp)
        if code.status == ChannelCode.Status.DELETED:
            return
        if code.config_id:
            # Reference: Doc 92572
            wecom_client(corp=corp, lane="events").del_contact_way(code.config_id)
        code.status = ChannelCode.Status.DELETED
        code.applied_userids = []
        code.save(update_fields=["status", "applied_userids", "updated_at"])
        cache.cache_invalidate(corp_pk=corp.pk)


def code_qr_fetch(*, code: ChannelCode) -> bytes | None:
    """The QR image WeCom made for the way, kept here so pages and downloads don't hot-link WeCom."""
    if code.qr_png:
        return bytes(code.qr_png)
    if not code.qr_code:
        return None
    try:
        # The image sits on WeCom's CDN (or the sandbox), not behind the API: a plain GET, no token.
        response = httpx.get(code.qr_code, timeout=5.0, follow_redirects=True)
    except httpx.HTTPError as exc:
        logger.warning("QR image of code %s not fetched: %s", code.pk, type(exc).__name__)
        return None
    if response.status_code != 200 or not response.headers.get("content-type", "").startswith("image/"):
        logger.warning("QR image of code %s: HTTP %s", code.pk, response.status_code)
        return None
    code.qr_png = response.content
    ChannelCode.objects.filter(pk=code.pk).update(qr_png=response.content)
    return response.content


def code_rebalance(
    *, corp: Corp, code_id: int, triggered_at: float | None = None, now: datetime | None = None
) -> caps.Plan | None:
    """Brings the code's member list in WeCom in line with caps and schedules. Serialised per code by the
    row lock, so the last writer always pushes the newest plan. Returns the plan (None: nothing to do)."""
    with transaction.atomic():
        code = (
            ChannelCode.objects.select_for_update()
            .filter(corp=corp, pk=code_id, status=ChannelCode.Status.ACTIVE)
            .exclude(config_id="")
            .first()
        )
        if code is None:
            return None
        plan = _plan(code, now=now)
        users, skip = _wanted(code, plan)
        if users != code.applied_userids or skip != code.applied_skip_verify:
            try:
                # Reference: Doc 92572 — the user list is replaced as a whole
                wecom_client(corp=corp, lane="events").update_contact_way(
                    config_id=code.config_id, user=users, skip_verify=skip
                )
            except PermanentError as exc:
                code.alert, code.alert_errcode, code.alert_at = (
                    wecom_error_text(exc, "zh-hans")[:300],
                    exc.errcode,
                    timezone.now(),
                )
                code.save(update_fields=["alert", "alert_errcode", "alert_at", "updated_at"])
                logger.warning("code %s: update_contact_way refused: %s", code.pk, exc)
                return plan
            if triggered_at is not None and set(users) < set(code.applied_userids):
                caps.reaction_record(corp_pk=corp.pk, seconds=max(0.0, time.time() - triggered_at))
            logger.info("code %s routing %s → %s %s", code.pk, code.routing, plan.routing, users)
        _record_plan(code, plan, users, skip)
        code.save(
            update_fields=[
                "routing",
                "applied_userids",
                "applied_skip_verify",
                "routing_changed_at",
                "alert",
                "alert_errcode",
                "alert_at",
                "updated_at",
            ]
        )
    if plan.capped:
        rebalance_at_window_end(corp_pk=corp.pk, code_id=code_id)
    return plan


def rebalance_soon(*, corp_pk: int, code_id: int, triggered_at: float) -> None:
    """Asks the events lane to rebalance the code (at most once a second per code)."""
    if not caps.get_redis().set(f"acq:rb:{code_id}", "1", nx=True, px=1000):
        return
    _send("tasks.welcome.rebalance_code", (corp_pk, code_id, triggered_at))


def rebalance_at_window_end(*, corp_pk: int, code_id: int) -> None:
    """Capped members come back when their minute ends (a day cap is re-checked then too)."""
    now = time.time()
    if caps.get_redis().set(f"acq:rbw:{code_id}:{caps.minute_of(now)}", "1", nx=True, ex=120):
        _send(
            "tasks.welcome.rebalance_code",
            (corp_pk, code_id, None),
            countdown=caps.next_window_end(now=now, minute=True) + 1,
        )


def codes_rebalance_all() -> int:
    """Beat: every active code is re-planned (schedules start and end, windows pass). WeCom is only called
    for codes whose plan changed."""
    count = 0
    for code_id, corp_pk in (
        ChannelCode.objects.filter(status=ChannelCode.Status.ACTIVE)
        .exclude(config_id="")
        .values_list("pk", "corp_id")
    ):
        _send("tasks.welcome.rebalance_code", (corp_pk, code_id, None))
        count += 1
    return count


def _send(task: str, args: tuple[Any, ...], *, queue: str = "events", countdown: float | None = None) -> None:
    from tasks.celery import app

    try:
        app.send_task(task, args=args, queue=queue, countdown=countdown)
    except Exception as exc:  # the beat re-plans every code every minute: a lost message heals
        logger.warning("%s not enqueued: %s", task, type(exc).__name__)


# -- the welcome fast lane ------------------------------------------------------------------------------

_LOAD = """
SELECT e.corp_id, e.payload, e.received_at, c.updated_at
FROM callbacks_inboxevent e JOIN tenancy_corp c ON c.id = e.corp_id WHERE e.id = %s
"""
_CLAIM = """
INSERT INTO acquisition_welcomeattempt (corp_id, inbox_event_id, code_id, userid, external_userid,
    event_time, received_at, status, tries, lease_until, error, text, attachments, skipped_media, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, 'claimed', 1, %s, '', '', 0, 0, %s)
ON CONFLICT (inbox_event_id) DO NOTHING
RETURNING id
"""
# A redelivered task (its worker died) takes over a claim whose lease ran out.
_TAKEOVER = """
UPDATE acquisition_welcomeattempt SET tries = tries + 1, lease_until = %s
WHERE inbox_event_id = %s AND status = 'claimed' AND lease_until < %s
RETURNING id
"""
_CLAIM_STATE = "SELECT status, lease_until FROM acquisition_welcomeattempt WHERE inbox_event_id = %s"

_corps: dict[int, Corp] = {}


def _corp(corp_pk: int, updated_at: datetime) -> Corp:
    # Loading a Corp decrypts its secrets: keep one per process until the corp row changes.
    corp = _corps.get(corp_pk)
    if corp is None or corp.updated_at != updated_at:
        corp = Corp.objects.get(pk=corp_pk)
        _corps[corp_pk] = corp
    return corp


def _handoff(event_id: int) -> None:
    """The event goes on to the events lane: applied there (exactly once: the inbox row is claimed with a
    row lock and marked done in the same transaction), then tagged, remarked and enriched."""
    from tasks.inbox import process_inbox_event

    try:
        process_inbox_event.apply_async(args=(event_id,), queue="events", retry=False)
    except Exception as exc:  # the row stays queued: the inbox sweeper sends it again
        logger.warning("inbox event %s not handed to the events lane: %s", event_id, type(exc).__name__)


def _claim(
    *, corp: Corp, event_id: int, code_id: int | None, event: Any, received_at: datetime, deadline: datetime
) -> int | None:
    """The attempt's id if this task may call WeCom for it; None when it is finished (or still held by a
    live worker when the deadline comes)."""
    while True:
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(
                _CLAIM,
                [
                    corp.pk,
                    event_id,
                    code_id,
                    event.user_id,
                    event.external_user_id,
                    event.create_time,
                    received_at,
                    now + CLAIM_LEASE,
                    now,
                ],
            )
            row = cursor.fetchone()
            if row is None:
                cursor.execute(_TAKEOVER, [now + CLAIM_LEASE, event_id, now])
                row = cursor.fetchone()
            if row is not None:
                return int(row[0])
            cursor.execute(_CLAIM_STATE, [event_id])
            found = cursor.fetchone()
        if found is None or found[0] != WelcomeAttempt.Status.CLAIMED or now >= deadline:
            return None
        # Held by another worker: wait for it to finish, or for its lease to lapse.
        time.sleep(max(0.05, min((found[1] - now).total_seconds() + 0.01, (deadline - now).total_seconds())))


def _finish(attempt_id: int, status: str, **fields: Any) -> None:
    allowed = [WelcomeAttempt.Status.CLAIMED]
    if status == WelcomeAttempt.Status.SENT:  # our earlier try may have been answered 41051 meanwhile
        allowed.append(WelcomeAttempt.Status.ALREADY_SENT)
    WelcomeAttempt.objects.filter(pk=attempt_id, status__in=allowed).update(
        status=status, finished_at=timezone.now(), **fields
    )


@dataclass(frozen=True)
class WelcomeResult:
    status: str
    latency_ms: int | None = None
    errcode: int | None = None


def _script_for(
    *, corp_pk: int, gen: int, code: cache.CodeConfig | None, member: cache.MemberInfo
) -> int | None:
    # Precedence: the channel code's script → the member's own → the corp default.
    if code is not None and code.script_id:
        return code.script_id
    if member.script_id:
        return member.script_id
    return cache.default_script_id(corp_pk=corp_pk, gen=gen)


def _nickname(*, corp: Corp, client: WeComClient, external_userid: str, left: float) -> str:
    name = (
        Customer.objects.filter(corp=corp, external_userid=external_userid)
        .values_list("name", flat=True)
        .first()
    )
    if name or left < NICKNAME_MIN_LEFT:
        return name or ""
    try:
        # Reference: Doc 92114 — a new customer's nickname, read on the realtime lane's budget
        return str(client.get_external_contact(external_userid)["external_contact"].get("name", ""))
    except WeComError as exc:
        logger.info("nickname not read in time (%s): the fallback is used", exc.errcode)
        return ""


def welcome_send(*, event_id: int) -> WelcomeResult | None:
    """Sends the welcome message of one add event, at most once, inside WeCom's window; then hands the
    event to the events lane. Returns what happened (None: not ours to send, or already handled)."""
    with connection.cursor() as cursor:
        cursor.execute(_LOAD, [event_id])
        row = cursor.fetchone()
    if row is None:
        return None
    corp_pk, payload, received_at, corp_updated = row
    try:
        result = _welcome(
            corp=_corp(corp_pk, corp_updated), event_id=event_id, payload=payload, received_at=received_at
        )
    finally:
        _handoff(event_id)
    return result


def _welcome(*, corp: Corp, event_id: int, payload: str, received_at: datetime) -> WelcomeResult | None:
    event = ev.parse_event(payload)
    if not isinstance(event, ev.AddExternalContact | ev.AddHalfExternalContact) or not event.welcome_code:
        return None
    deadline = received_at + WELCOME_DEADLINE
    gen = cache.generation(corp_pk=corp.pk)
    code = cache.code_by_state(corp_pk=corp.pk, gen=gen, state=event.state) if event.state else None
    if code is not None:
        # Counted here, the earliest moment we know of the add: the sooner a capped member comes off
        # the code, the fewer scans reach them in the gap.
        usage, _new = caps.caps_count_add(
            code_id=code.code_id,
            userid=event.user_id,
            external_userid=event.external_user_id,
            event_time=event.create_time,
        )
        reaction = caps.reaction_seconds(corp_pk=corp.pk)
        if not usage.room(per_minute=code.per_minute_cap, per_day=code.per_day_cap, reaction_s=reaction):
            rebalance_soon(corp_pk=corp.pk, code_id=code.code_id, triggered_at=float(event.create_time))
    attempt_id = _claim(
        corp=corp,
        event_id=event_id,
        code_id=code.code_id if code else None,
        event=event,
        received_at=received_at,
        deadline=deadline,
    )
    if attempt_id is None:
        return None
    now = timezone.now()
    if now >= deadline:
        _finish(attempt_id, WelcomeAttempt.Status.EXPIRED, latency_ms=_ms(now - received_at))
        return WelcomeResult(WelcomeAttempt.Status.EXPIRED)
    member = cache.member_info(corp_pk=corp.pk, gen=gen, userid=event.user_id)
    script_id = _script_for(corp_pk=corp.pk, gen=gen, code=code, member=member)
    content = cache.script_content(corp_pk=corp.pk, gen=gen, script_id=script_id) if script_id else None
    if content is None:
        _finish(attempt_id, WelcomeAttempt.Status.NO_SCRIPT)
        return WelcomeResult(WelcomeAttempt.Status.NO_SCRIPT)
    client = wecom_client(corp=corp, lane="realtime")
    now_local = _local(now)
    values = {"member_name": member.name or event.user_id, "channel_name": code.name if code else ""}
    text, _atts = content.pick(now_local=now_local)
    if uses_nickname(text):
        values["customer_nickname"] = _nickname(
            corp=corp,
            client=client.with_lane("realtime", acquire_timeout=0.5),
            external_userid=event.external_user_id,
            left=(deadline - timezone.now()).total_seconds(),
        )
    rendered = render(content, now_local=now_local, now_epoch=_epoch(now), values=values)
    common = {
        "script_id": content.script_id,
        "text": rendered.text,
        "attachments": len(rendered.attachments),
        "skipped_media": rendered.skipped_media,
    }
    if rendered.empty:
        _finish(
            attempt_id, WelcomeAttempt.Status.FAILED, error="nothing to send: media not uploaded", **common
        )
        return WelcomeResult(WelcomeAttempt.Status.FAILED)
    status, errcode, error = _send_within(
        client=client,
        welcome_code=event.welcome_code,
        rendered_text=rendered.text,
        attachments=rendered.attachments,
        deadline=deadline,
    )
    latency = _ms(timezone.now() - received_at)
    _finish(attempt_id, status, errcode=errcode, error=error[:300], latency_ms=latency, **common)
    return WelcomeResult(status, latency, errcode)


def _ms(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() * 1000))


def _send_within(
    *,
    client: WeComClient,
    welcome_code: str,
    rendered_text: str,
    attachments: list[dict[str, Any]],
    deadline: datetime,
) -> tuple[str, int | None, str]:
    """send_welcome_msg, retrying what may succeed (41096, rate limit, network) only inside the window."""
    S = WelcomeAttempt.Status
    wait = 0.25
    while True:
        left = (deadline - timezone.now()).total_seconds()
        if left <= 0:
            return S.EXPIRED, None, "deadline passed while retrying"
        view = client.with_lane("realtime", acquire_timeout=max(0.05, min(1.0, left)))
        try:
            # Reference: Doc 92137
            view.send_welcome_msg(
                welcome_code=welcome_code, text=rendered_text or None, attachments=attachments
            )
            return S.SENT, None, ""
        except WelcomeAlreadySent as exc:  # 41051: delivered already (by an earlier try of ours too)
            return S.ALREADY_SENT, exc.errcode, exc.errmsg
        except WelcomeCodeInvalid as exc:  # 41050: expired or invalid: don't retry
            return S.INVALID, exc.errcode, exc.errmsg
        except WelcomeBusy as exc:  # 41096: another app is sending; retry only inside the window
            outcome: tuple[str, int | None, str] = (S.BUSY, exc.errcode, exc.errmsg)
        except (RateLimited, TransientError) as exc:
            outcome = (S.FAILED, exc.errcode, str(exc))
        except WeComError as exc:
            return S.FAILED, exc.errcode, str(exc)
        left = (deadline - timezone.now()).total_seconds()
        if left <= wait + 0.2:
            return outcome
        time.sleep(wait)
        wait = min(wait * 2, 2.0)


# -- after the add is applied (events lane) -------------------------------------------------------------


def _welcome_timeline(
    *, corp: Corp, customer: Customer, member: Member, attempt: WelcomeAttempt, channel: str
) -> None:
    data: dict[str, Any] = {"latency_ms": attempt.latency_ms, "channel": channel}
    if attempt.errcode is not None:
        data["errcode"] = attempt.errcode
    if attempt.text:
        data["text"] = attempt.text[:200]
    if attempt.attachments:
        data["attachments"] = attempt.attachments
    if attempt.skipped_media:
        data["skipped_media"] = attempt.skipped_media
    timeline_add(
        corp=corp,
        customer=customer,
        member=member,
        kind=f"welcome_{attempt.status}",
        at=attempt.finished_at or attempt.created_at,
        data=data,
        inbox_event=attempt.inbox_event,
    )


def channel_add_followup(
    *, corp: Corp, external_userid: str, userid: str, state: str | None, event_time: int
) -> None:
    """Runs once the add is applied (the follow exists): records the welcome on the timeline, counts the
    add toward the code's caps, marks the code's tags and sets its remark, then enriches the customer
    (externalcontact/get) — the read comes first and our own writes are laid over it, so enrichment never
    overwrites them with what WeCom had a moment before. Idempotent: a retry redoes only what is missing.
    """
    attempt = (
        WelcomeAttempt.objects.filter(
            corp=corp, userid=userid, external_userid=external_userid, event_time=event_time
        )
        .select_related("inbox_event")
        .first()
    )
    gen = cache.generation(corp_pk=corp.pk)
    config = cache.code_by_state(corp_pk=corp.pk, gen=gen, state=state) if state else None
    follow = (
        Follow.objects.filter(corp=corp, customer__external_userid=external_userid, member__userid=userid)
        .select_related("customer", "member")
        .first()
    )
    if follow is None:  # applied elsewhere and gone since (a replay of an old add): just enrich
        _enrich(corp=corp, external_userid=external_userid)
        return
    if attempt is not None and attempt.status != WelcomeAttempt.Status.CLAIMED:
        _welcome_timeline(
            corp=corp,
            customer=follow.customer,
            member=follow.member,
            attempt=attempt,
            channel=config.name if config else "",
        )
    if config is None:
        _enrich(corp=corp, external_userid=external_userid)
        return
    code = ChannelCode.objects.get(corp=corp, pk=config.code_id)
    usage, _new = caps.caps_count_add(
        code_id=code.pk, userid=userid, external_userid=external_userid, event_time=event_time
    )
    reaction = caps.reaction_seconds(corp_pk=corp.pk)
    if not usage.room(per_minute=code.per_minute_cap, per_day=code.per_day_cap, reaction_s=reaction):
        rebalance_soon(corp_pk=corp.pk, code_id=code.pk, triggered_at=float(event_time))
    add, _created = ChannelAdd.objects.get_or_create(
        code=code,
        member=follow.member,
        customer=follow.customer,
        event_time=event_time,
        defaults={
            "corp": corp,
            "added_at": datetime.fromtimestamp(event_time, tz=UTC),
            "over_cap": usage.over(per_minute=code.per_minute_cap, per_day=code.per_day_cap),
        },
    )
    if add.over_cap and _created:
        logger.warning("code %s: %s received a customer over its cap (%s)", code.pk, userid, usage)
    _code_followup(
        corp=corp, code=code, follow=follow, add=add, attempt=attempt, external_userid=external_userid
    )


def _code_followup(
    *,
    corp: Corp,
    code: ChannelCode,
    follow: Follow,
    add: ChannelAdd,
    attempt: WelcomeAttempt | None,
    external_userid: str,
) -> None:
    client = wecom_client(corp=corp, lane="events")
    contact, follow_users = _fetch(client=client, external_userid=external_userid)
    overlay: dict[str, Any] = {}
    tags = [t for t in code.tags.all() if not t.deleted]
    inbox_event = attempt.inbox_event if attempt is not None else None
    if tags and not add.tags_done:
        tag_ids = [t.tag_id for t in tags]
        try:
            # Reference: Doc 92118
            client.mark_tag(userid=follow.member.userid, external_userid=external_userid, add_tag=tag_ids)
        except PermanentError as exc:
            add.followup_error = f"mark_tag: {exc.errcode}"
        else:
            follow_change_tags(corp=corp, follow=follow, add=tag_ids, remove=[])
            timeline_add(
                corp=corp,
                customer=follow.customer,
                member=follow.member,
                kind="channel_tags",
                at=timezone.now(),
                data={"channel": code.name, "added": [t.name for t in tags]},
                inbox_event=inbox_event,
            )
        add.tags_done = True
        add.save(update_fields=["tags_done", "followup_error"])
    if tags:
        overlay["tags"] = [t.tag_id for t in tags]
    if code.remark_template and not add.remark_done:
        nickname = (contact or {}).get("name") or follow.customer.name
        remark = render_text(
            code.remark_template,
            {
                "customer_nickname": nickname,
                "member_name": follow.member.name or follow.member.userid,
                "channel_name": code.name,
            },
        )[:REMARK_MAX]
        try:
            # Reference: Doc 92115
            client.remark(userid=follow.member.userid, external_userid=external_userid, remark=remark)
        except PermanentError as exc:
            add.followup_error = f"remark: {exc.errcode}"
        else:
            Follow.objects.filter(pk=follow.pk).update(remark=remark)
            overlay["remark"] = remark
        add.remark_done = True
        add.save(update_fields=["remark_done", "followup_error"])
    elif code.remark_template:
        overlay["remark"] = Follow.objects.values_list("remark", flat=True).get(pk=follow.pk)
    if contact is not None:
        _apply_contact(
            corp=corp,
            contact=contact,
            follow_users=follow_users,
            userid=follow.member.userid,
            overlay=overlay,
        )


def _fetch(
    *, client: WeComClient, external_userid: str
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    contact: dict[str, Any] | None = None
    follow_users: list[dict[str, Any]] = []
    try:
        # Reference: Doc 92114
        for page in client.iter_external_contact(external_userid):
            contact = dict(page["external_contact"])
            follow_users.extend(dict(f) for f in page.get("follow_user", []))
    except PermanentError as exc:
        if exc.errcode in GONE:
            return None, []
        raise
    return contact, follow_users


def _apply_contact(
    *,
    corp: Corp,
    contact: Mapping[str, Any],
    follow_users: list[dict[str, Any]],
    userid: str,
    overlay: Mapping[str, Any],
) -> None:
    from scrm.customers.services import customer_apply_contact

    for info in follow_users:
        if info.get("userid") == userid:
            if "tags" in overlay:
                have = {t.get("tag_id") for t in info.get("tags") or []}
                info["tags"] = [
                    *(info.get("tags") or []),
                    *({"tag_id": t, "type": 1} for t in overlay["tags"] if t not in have),
                ]
            if "remark" in overlay:
                info["remark"] = overlay["remark"]
    customer_apply_contact(corp=corp, contact=contact, follow_users=follow_users)


def _enrich(*, corp: Corp, external_userid: str) -> None:
    from scrm.sync.services import customer_refresh

    customer_refresh(corp=corp, external_userid=external_userid)
