from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm.tenancy.models import Corp


class InboxStatus(models.TextChoices):
    PENDING = "pending", _("Pending")  # stored, not yet handed to a worker (e.g. Redis was down)
    QUEUED = "queued", _("Queued")
    PROCESSING = "processing", _("Processing")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class InboxEvent(models.Model):
    """A decrypted WeCom callback, stored before it is acknowledged. Every event is replayable from here.

    `digest` is the SHA-256 of the decrypted XML: WeCom's retries of one callback carry the same
    plaintext, so a retry is an INSERT that does nothing. (FromUserName + CreateTime, WeCom's suggested
    key, collides for two different events in the same second.)
    """

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="inbox_events")
    digest = models.CharField(max_length=64)
    kind = models.CharField(max_length=100)
    lane = models.CharField(max_length=16)
    payload = models.TextField()
    event_time = models.BigIntegerField(help_text="CreateTime of the event, seconds since the epoch")
    received_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=InboxStatus.choices, default=InboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    deliveries = models.PositiveIntegerField(default=1, help_text="how many times WeCom delivered it")
    enqueued_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corp", "digest"], name="inbox_corp_digest_unique")]
        indexes = [
            models.Index(fields=["status", "received_at"], name="inbox_status_received"),
            models.Index(fields=["corp", "-received_at"], name="inbox_corp_received"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"
