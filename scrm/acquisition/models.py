"""Channel codes (渠道活码), welcome scripts with their media, and the record of every welcome attempt.

Every row carries its corp; the welcome hot path reads these through the caches in `cache.py`, never
directly, and every service that writes them bumps the corp's cache generation.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm.customers.models import Customer, Member, Tag
from scrm.tenancy.models import Corp

# Conservative defaults, explained in the form: practitioners report restrictions for an account added
# by more than ~60 people in a minute (API.md §4); a third of that, and a day's worth a person can serve.
DEFAULT_PER_MINUTE_CAP = 20
DEFAULT_PER_DAY_CAP = 300


class MediaAsset(models.Model):
    """An image, video or file kept here and uploaded to WeCom as temporary media (valid 3 days).

    The beat task re-uploads it before `expires_at`, so the welcome path only ever reads `media_id`.
    """

    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        VIDEO = "video", _("Video")
        FILE = "file", _("File")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="media_assets")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=128)
    content = models.BinaryField()
    content_type = models.CharField(max_length=100, default="application/octet-stream")
    size = models.PositiveIntegerField(default=0)
    media_id = models.CharField(max_length=256, blank=True, default="")
    uploaded_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="media_expires")]

    def __str__(self) -> str:
        return self.name


class WelcomeScript(models.Model):
    """What a new customer receives: text with variables and up to 9 attachments, with time-slot variants.

    Used by a channel code, by members (MemberWelcome), or as the corp default (`is_default`).
    """

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="welcome_scripts")
    name = models.CharField(_("name"), max_length=60)
    text = models.TextField(_("text"), blank=True, default="")
    nickname_fallback = models.CharField(_("nickname fallback"), max_length=20, blank=True, default="")
    is_default = models.BooleanField(_("corp default"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["corp", "name"], name="welcomescript_corp_name_unique"),
            models.UniqueConstraint(
                fields=["corp"], condition=models.Q(is_default=True), name="welcomescript_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class WelcomeVariant(models.Model):
    """Another text for some weekdays and hours (Asia/Shanghai); the first variant that matches wins.

    `end_time` before `start_time` spans midnight (e.g. 18:00–09:00). Its attachments, if it has any,
    replace the script's.
    """

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="+")
    script = models.ForeignKey(WelcomeScript, on_delete=models.CASCADE, related_name="variants")
    weekdays = ArrayField(models.PositiveSmallIntegerField(), default=list, blank=True)  # 0 Mon … 6 Sun
    start_time = models.TimeField()
    end_time = models.TimeField()
    text = models.TextField(blank=True, default="")
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return f"{self.script_id}: {self.start_time:%H:%M}–{self.end_time:%H:%M}"


class WelcomeAttachment(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        LINK = "link", _("Link")
        MINIPROGRAM = "miniprogram", _("Mini-program")
        VIDEO = "video", _("Video")
        FILE = "file", _("File")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="+")
    script = models.ForeignKey(WelcomeScript, on_delete=models.CASCADE, related_name="attachments")
    variant = models.ForeignKey(
        WelcomeVariant, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    order = models.PositiveSmallIntegerField(default=0)
    title = models.CharField(max_length=64, blank=True, default="")
    url = models.URLField(max_length=2048, blank=True, default="")
    pic_url = models.URLField(max_length=2048, blank=True, default="")
    description = models.CharField(max_length=170, blank=True, default="")
    appid = models.CharField(max_length=64, blank=True, default="")
    page = models.CharField(max_length=256, blank=True, default="")
    # image / video / file: the media itself; mini-program: its cover image.
    media = models.ForeignKey(MediaAsset, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class MemberWelcome(models.Model):
    """A member's own script: used for their adds when the channel code has none."""

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    script = models.ForeignKey(WelcomeScript, on_delete=models.CASCADE, related_name="member_links")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["corp", "member"], name="memberwelcome_corp_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.member_id} → {self.script_id}"


class Routing(models.TextChoices):
    PRIMARY = "primary", _("Members")
    BACKUP = "backup", _("Backup members")
    PAUSED = "paused", _("Paused")


class ChannelCode(models.Model):
    """A 联系我 QR code (add_contact_way) with its own `state`, members, caps, auto-tags and script."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        DELETED = "deleted", _("Deleted")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="channel_codes")
    name = models.CharField(_("name"), max_length=30)
    state = models.CharField(max_length=30)
    config_id = models.CharField(max_length=64, blank=True, default="")
    qr_code = models.URLField(max_length=1000, blank=True, default="")
    qr_png = models.BinaryField(null=True, blank=True)
    skip_verify = models.BooleanField(_("add without confirmation"), default=True)
    remark_template = models.CharField(_("remark"), max_length=40, blank=True, default="")
    script = models.ForeignKey(
        WelcomeScript, on_delete=models.SET_NULL, null=True, blank=True, related_name="codes"
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="+")
    per_minute_cap = models.PositiveIntegerField(default=DEFAULT_PER_MINUTE_CAP)
    per_day_cap = models.PositiveIntegerField(default=DEFAULT_PER_DAY_CAP)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    # What WeCom has now (we are the only writer: our own calls produce no callbacks).
    routing = models.CharField(max_length=10, choices=Routing.choices, default=Routing.PRIMARY)
    applied_userids = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    applied_skip_verify = models.BooleanField(default=True)
    routing_changed_at = models.DateTimeField(null=True, blank=True)
    # Shown to admins: why the code is paused, or the last WeCom refusal (errcode kept for support).
    alert = models.CharField(max_length=300, blank=True, default="")
    alert_errcode = models.IntegerField(null=True, blank=True)
    alert_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["corp", "state"], name="channelcode_corp_state_unique")
        ]
        indexes = [models.Index(fields=["corp", "status"], name="channelcode_corp_status")]

    def __str__(self) -> str:
        return self.name


class ChannelMember(models.Model):
    """A member on a code: on duty on `weekdays` (empty: every day) between the times (none: all day)."""

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="+")
    code = models.ForeignKey(ChannelCode, on_delete=models.CASCADE, related_name="code_members")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    backup = models.BooleanField(default=False)
    weekdays = ArrayField(models.PositiveSmallIntegerField(), default=list, blank=True)
    start_time = models.TimeField(null=True, blank=True)
    end_time = models.TimeField(null=True, blank=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["backup", "order", "id"]
        constraints = [models.UniqueConstraint(fields=["code", "member"], name="channelmember_unique")]

    def __str__(self) -> str:
        return f"{self.code_id}: {self.member_id}{' (backup)' if self.backup else ''}"


class WelcomeAttempt(models.Model):
    """One welcome message, claimed (by its inbox event) before WeCom is called: a redelivered task finds
    the claim and never sends twice."""

    class Status(models.TextChoices):
        CLAIMED = "claimed", _("Sending")
        SENT = "sent", _("Sent")
        ALREADY_SENT = "already_sent", _("Already sent or chatting")
        EXPIRED = "expired", _("Too late (expired)")
        INVALID = "invalid", _("Welcome code invalid")
        BUSY = "busy", _("Another app was sending")
        FAILED = "failed", _("Failed")
        NO_SCRIPT = "no_script", _("No welcome script")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="+")
    inbox_event = models.OneToOneField(
        "callbacks.InboxEvent", on_delete=models.CASCADE, related_name="welcome_attempt"
    )
    code = models.ForeignKey(
        ChannelCode, on_delete=models.SET_NULL, null=True, blank=True, related_name="attempts"
    )
    script = models.ForeignKey(
        WelcomeScript, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    userid = models.CharField(max_length=64)
    external_userid = models.CharField(max_length=64)
    event_time = models.BigIntegerField()
    received_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CLAIMED)
    tries = models.PositiveSmallIntegerField(default=1)
    lease_until = models.DateTimeField()
    errcode = models.IntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True, default="")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)  # from callback receipt to WeCom's answer
    text = models.TextField(blank=True, default="")
    attachments = models.PositiveSmallIntegerField(default=0)
    skipped_media = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["code", "created_at"], name="attempt_code_created"),
            models.Index(fields=["corp", "userid", "external_userid"], name="attempt_corp_pair"),
        ]

    def __str__(self) -> str:
        return f"welcome {self.pk} ({self.status})"


class ChannelAdd(models.Model):
    """A customer added through a code (one per add event): the source of the code's statistics, and the
    marker that its auto-tags and remark were applied."""

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="+")
    code = models.ForeignKey(ChannelCode, on_delete=models.CASCADE, related_name="adds")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    event_time = models.BigIntegerField()
    added_at = models.DateTimeField()
    # The member had no room left under a cap (WeCom routed a scan in the gap, or while paused).
    over_cap = models.BooleanField(default=False)
    tags_done = models.BooleanField(default=False)
    remark_done = models.BooleanField(default=False)
    followup_error = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["code", "member", "customer", "event_time"], name="channeladd_once_per_event"
            )
        ]
        indexes = [models.Index(fields=["code", "added_at"], name="channeladd_code_added")]

    def __str__(self) -> str:
        return f"{self.code_id}: {self.member_id} ← {self.customer_id} @ {self.event_time}"
