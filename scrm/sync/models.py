"""A full sync run: where it is (phase + checkpoint), what it has seen, and how it ended.

The checkpoint is written in the same transaction as each page's upserts, so a run that dies part-way
continues from the last committed page and counts stay exact.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm.tenancy.models import Corp

# Userids per call, and so per checkpoint chunk: Doc 92994 userid_list ≤ 100, Doc 92120 owner_filter ≤ 100.
CHUNK = 100


class SyncRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Finished")
        FAILED = "failed", _("Failed")

    class Phase(models.TextChoices):
        # Tags come first although the issue lists them third: each customers page maps its WeCom tag
        # ids to our Tag rows, so the tags must exist before the first page is written.
        TAGS = "tags", _("Tags")
        MEMBERS = "members", _("Members")
        CUSTOMERS = "customers", _("Customers and follows")
        GROUPS = "groups", _("Customer groups")
        RECONCILE = "reconcile", _("Reconciling")
        DONE = "done", _("Done")

    class Trigger(models.TextChoices):
        MANUAL = "manual", _("Started by an admin")
        NIGHTLY = "nightly", _("Nightly")

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="sync_runs")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    phase = models.CharField(max_length=16, choices=Phase.choices, default=Phase.TAGS)

    # Checkpoint. The member list is frozen when the members phase starts so chunk indexes mean the same
    # thing after a resume; likewise the group owners when the groups phase starts.
    member_userids = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    owner_userids = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    chunk = models.PositiveIntegerField(default=0, help_text="index of the current chunk of ≤100 userids")
    cursor = models.TextField(blank=True, default="", help_text="WeCom next_cursor inside the chunk")

    # What this run has seen (exact across resumes: updated with each page's writes).
    tags_seen = models.PositiveIntegerField(default=0)
    members_seen = models.PositiveIntegerField(default=0)
    customers_seen = models.PositiveIntegerField(default=0)
    follows_seen = models.PositiveIntegerField(default=0)
    groups_seen = models.PositiveIntegerField(default=0)
    groups_skipped = models.PositiveIntegerField(default=0)
    follows_lost = models.PositiveIntegerField(default=0)
    groups_dismissed = models.PositiveIntegerField(default=0)
    # Totals for the progress bar: members and groups are counted from WeCom; follows are estimated
    # from what we held when the run started (0 on a first sync).
    members_total = models.PositiveIntegerField(default=0)
    groups_total = models.PositiveIntegerField(default=0)
    follows_estimate = models.PositiveIntegerField(default=0)

    # One worker at a time: a claim takes the lease with a conditional UPDATE, every page renews it,
    # and a page whose renewal finds another token rolls back (a stale worker can't write).
    lease_token = models.CharField(max_length=32, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Transient failures in a row without progress; past a limit the run fails.
    attempts = models.PositiveSmallIntegerField(default=0)

    error_code = models.IntegerField(null=True, blank=True, help_text="WeCom errcode")
    error_key = models.CharField(max_length=32, blank=True, default="", help_text="wecom.messages key")
    error_detail = models.CharField(max_length=500, blank=True, default="")

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Only one sync per corp at a time, whoever asks (button, API, nightly beat).
            models.UniqueConstraint(
                fields=["corp"],
                condition=models.Q(status__in=["queued", "running"]),
                name="syncrun_one_active_per_corp",
            )
        ]
        indexes = [models.Index(fields=["corp", "-created_at"], name="syncrun_corp_created")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"sync #{self.pk} {self.corp_id} {self.status}/{self.phase}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE
