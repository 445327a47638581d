"""Broadcasts (群发): what is sent to whom, the per-chunk record of every add_msg_template call, the
receive-quota ledger, WeCom's results, and deletions that follow a send (the churn guard).

Every row carries its corp. The ledger is the one place the receive quota is counted: a chunk reserves
its recipients there, in one statement, before WeCom is called.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from scrm.acquisition.models import MediaAsset
from scrm.customers.models import Member, Tag
from scrm.tenancy.models import Corp


class QuotaRule(models.TextChoices):
    # Doc 92135 (群发规则), set by the admin in the WeCom console: the product must use the same one.
    DAYS_OF_MONTH = "days_of_month", _("As many as the month has days")
    PER_WEEK = "7_per_week", _("7 per week")
    PER_DAY = "1_per_day", _("1 per day")


class CampaignSettings(models.Model):
    """Per-corp broadcast rules; one row per corp, created with the defaults on first use."""

    corp = models.OneToOneField(Corp, on_delete=models.CASCADE, related_name="campaign_settings")
    quota_rule = models.CharField(
        _("receive quota rule"), max_length=16, choices=QuotaRule.choices, default=QuotaRule.DAYS_OF_MONTH
    )
    churn_threshold = models.DecimalField(
        _("churn threshold (%)"), max_digits=5, decimal_places=2, default=Decimal("1.00")
    )
    approval_required = models.BooleanField(_("operators' broadcasts need an admin's approval"), default=True)
    dnd_tag = models.ForeignKey(
        Tag,
        verbose_name=_("do-not-disturb tag"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The churn guard: while paused, no scheduled broadcast of the corp starts.
    paused = models.BooleanField(default=False)
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=300, blank=True, default="")
    paused_by_broadcast = models.ForeignKey(
        "Broadcast", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"broadcast settings of {self.corp_id}"


class Broadcast(models.Model):
    class ChatType(models.TextChoices):
        SINGLE = "single", _("Customers")
        GROUP = "group", _("Customer groups")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PENDING = "pending", _("Waiting for approval")
        SCHEDULED = "scheduled", _("Approved, waiting to send")
        SENDING = "sending", _("Creating in WeCom")
        SENT = "sent", _("Waiting for members to send")
        DONE = "done", _("Finished")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="broadcasts")
    name = models.CharField(_("name"), max_length=60)
    chat_type = models.CharField(max_length=8, choices=ChatType.choices, default=ChatType.SINGLE)
    text = models.TextField(_("text"), blank=True, default="")
    # The audience as submitted (scrm.campaigns.selectors.Audience.from_params names).
    audience = models.JSONField(default=dict, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)  # None: as soon as approved
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    gate_action = models.CharField(max_length=12, blank=True, default="")
    gate_words = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    created_in_wecom_at = models.DateTimeField(null=True, blank=True)  # every chunk's template exists
    finished_at = models.DateTimeField(null=True, blank=True)
    # Filled when sending starts: chunks and recipients planned, and why others were left out.
    chunks_total = models.PositiveIntegerField(default=0)
    planned = models.PositiveIntegerField(default=0)
    excluded = models.JSONField(default=dict, blank=True)
    deletions = models.PositiveIntegerField(default=0)  # recipients who deleted their member within 72 h
    stop_reason = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["corp", "-created_at"], name="broadcast_corp_created"),
            models.Index(fields=["status", "scheduled_at"], name="broadcast_status_due"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def editable(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.PENDING)


class BroadcastAttachment(models.Model):
    """Same shapes as a welcome attachment (Doc 92135 attachments ≤9); files live in MediaAsset and are
    uploaded ahead as temporary media, renewed before the send if they would expire."""

    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        LINK = "link", _("Link")
        MINIPROGRAM = "miniprogram", _("Mini-program")
        VIDEO = "video", _("Video")
        FILE = "file", _("File")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="+")
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="attachments")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    order = models.PositiveSmallIntegerField(default=0)
    title = models.CharField(max_length=64, blank=True, default="")
    url = models.URLField(max_length=2048, blank=True, default="")
    pic_url = models.URLField(max_length=2048, blank=True, default="")
    description = models.CharField(max_length=170, blank=True, default="")
    appid = models.CharField(max_length=64, blank=True, default="")
    page = models.CharField(max_length=256, blank=True, default="")
    media = models.ForeignKey(MediaAsset, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class SendChunk(models.Model):
    """One add_msg_template call: one sender and ≤10,000 customers (≤2,000 groups).

    Written before the call. `calling` with its lease lapsed means a worker died around the call: the
    template may exist, so it is looked up (get_groupmsg_list_v2) before WeCom is ever called again.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        CALLING = "calling", _("Creating")
        CREATED = "created", pgettext_lazy("send batch status", "Created")
        SKIPPED = "skipped", _("Nobody left under the quota")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="+")
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="chunks")
    sender = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    seq = models.PositiveIntegerField()
    targets = ArrayField(models.CharField(max_length=64), default=list)  # planned
    # What the ledger granted and WeCom was asked for; the period they were counted in.
    reserved = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    period = models.CharField(max_length=16, blank=True, default="")
    over_quota = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    tries = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    called_at = models.DateTimeField(null=True, blank=True)
    msgid = models.CharField(max_length=128, blank=True, default="")
    fail_list = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    reconciled = models.BooleanField(default=False)  # msgid found by get_groupmsg_list_v2
    errcode = models.IntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True, default="")
    # Results: the member's confirmation (get_groupmsg_task: 0 not sent, 2 sent) and polling state.
    task_status = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    results_done = models.BooleanField(default=False)
    poll_after = models.DateTimeField(null=True, blank=True)
    poll_failures = models.PositiveSmallIntegerField(default=0)
    reminds = ArrayField(models.DateTimeField(), default=list, blank=True)
    cancelled_in_wecom = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["broadcast", "seq"]
        constraints = [models.UniqueConstraint(fields=["broadcast", "seq"], name="sendchunk_broadcast_seq")]
        indexes = [
            models.Index(fields=["status", "poll_after"], name="sendchunk_status_poll"),
            # The churn hook finds the sends that reached a customer who just deleted their member.
            GinIndex(fields=["reserved"], name="sendchunk_reserved_gin"),
        ]

    def __str__(self) -> str:
        return f"chunk {self.broadcast_id}/{self.seq} ({self.status})"


class QuotaLedger(models.Model):
    """How many corp mass messages a customer (external_userid) or group (chat_id) was included in, per
    quota period (Asia/Shanghai calendar). Reserved before the call, released when WeCom refuses."""

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="+")
    target = models.CharField(max_length=64)
    period = models.CharField(max_length=16)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["corp", "target", "period"], name="quotaledger_unique")
        ]

    def __str__(self) -> str:
        return f"{self.target} {self.period}: {self.count}"


class RecipientResult(models.Model):
    """A customer's (or group's) result of one chunk (get_groupmsg_send_result)."""

    class Status(models.IntegerChoices):
        NOT_SENT = 0, _("Not sent")
        SENT = 1, _("Sent")
        NOT_FRIEND = 2, _("Not a friend")
        ALREADY_RECEIVED = 3, _("Already received another broadcast")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="+")
    chunk = models.ForeignKey(SendChunk, on_delete=models.CASCADE, related_name="results")
    target = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(choices=Status.choices, default=Status.NOT_SENT)
    send_time = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chunk", "target"], name="recipientresult_unique")]

    def __str__(self) -> str:
        return f"{self.target}: {self.status}"


class BroadcastDeletion(models.Model):
    """A recipient deleted the member who sent them a broadcast, within 72 h of the send."""

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="+")
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="deletion_rows")
    external_userid = models.CharField(max_length=64)
    userid = models.CharField(max_length=64)
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["broadcast", "external_userid", "userid"], name="broadcastdeletion_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.broadcast_id}: {self.external_userid} left {self.userid}"
