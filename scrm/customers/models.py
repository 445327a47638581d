"""Members (staff), customers, the follow relation between them, and corp tags, as WeCom has them.

Every row carries its corp; natural keys are unique per corp, so events and syncs upsert by them.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm.tenancy.models import Corp


class Member(models.Model):
    """A member (成员) of the corp: the staff who serve customers."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        RESIGNED = "resigned", _("Left the company")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="members")
    userid = models.CharField(max_length=64)
    name = models.CharField(max_length=100, blank=True, default="")
    departments = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    has_contact_permission = models.BooleanField(default=True)
    left_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corp", "userid"], name="member_corp_userid_unique")]
        ordering = ["userid"]

    def __str__(self) -> str:
        return self.name or self.userid


class Customer(models.Model):
    """A person (external contact), once per corp however many members follow them (de-duplication)."""

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="customers")
    external_userid = models.CharField(max_length=64)
    name = models.CharField(max_length=100, blank=True, default="")
    avatar = models.URLField(max_length=500, blank=True, default="")
    type = models.PositiveSmallIntegerField(default=0, help_text="1 WeChat user, 2 WeCom user")
    gender = models.PositiveSmallIntegerField(default=0, help_text="0 unknown, 1 male, 2 female")
    corp_name = models.CharField(max_length=100, blank=True, default="")
    corp_full_name = models.CharField(max_length=200, blank=True, default="")
    unionid = models.CharField(max_length=64, blank=True, default="")
    enriched_at = models.DateTimeField(null=True, blank=True)
    # Derived from the customer's live follows, kept in step by the services that change follows, so the
    # customer list filters by tag and member with one GIN index scan (see customer_recompute).
    tag_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    member_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    active_follows = models.PositiveSmallIntegerField(default=0)
    first_added_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["corp", "external_userid"], name="customer_corp_extid_unique")
        ]
        indexes = [
            models.Index(fields=["corp", "-first_added_at", "id"], name="customer_corp_added"),
            GinIndex(fields=["tag_ids"], name="customer_tag_ids_gin"),
            GinIndex(fields=["member_ids"], name="customer_member_ids_gin"),
        ]

    def __str__(self) -> str:
        return self.name or self.external_userid


class FollowStatus(models.TextChoices):
    ACTIVE = "active", _("Friends")
    DELETED_BY_MEMBER = "deleted_by_member", _("Deleted by the member")
    DELETED_BY_CUSTOMER = "deleted_by_customer", _("Deleted by the customer")
    TRANSFERRED = "transferred", _("Transferred to another member")
    LOST = "lost", _("No longer seen in WeCom")


class Follow(models.Model):
    """Member ↔ customer (follow_user in WeCom's API): remark, tags, how they met, and its status."""

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="follows")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="follows")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="follows")
    remark = models.CharField(max_length=64, blank=True, default="")
    description = models.CharField(max_length=300, blank=True, default="")
    remark_mobiles = models.JSONField(default=list, blank=True)
    add_way = models.IntegerField(default=0)
    state = models.CharField(max_length=64, blank=True, default="", db_index=True)
    oper_userid = models.CharField(max_length=64, blank=True, default="")
    added_at = models.DateTimeField(null=True, blank=True, db_index=True)
    status = models.CharField(max_length=24, choices=FollowStatus.choices, default=FollowStatus.ACTIVE)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # CreateTime of the newest event applied to this row: an older event never overwrites a newer one.
    last_event_time = models.BigIntegerField(default=0)
    # The full sync that last saw this follow in WeCom; a finished sync marks unseen active follows lost.
    last_seen_sync = models.BigIntegerField(null=True, blank=True)
    # Corp tags on this follow (Tag primary keys). An array with a GIN index answers "has X and Y but not
    # Z" at a million follows without a join table; the truth is WeCom's, re-read on every edit event.
    tag_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["corp", "customer", "member"], name="follow_corp_customer_member_unique"
            )
        ]
        indexes = [
            models.Index(fields=["corp", "status", "-added_at"], name="follow_corp_status_added"),
            models.Index(fields=["member", "status"], name="follow_member_status"),
            models.Index(fields=["customer"], name="follow_customer"),
            GinIndex(fields=["tag_ids"], name="follow_tag_ids_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} → {self.customer_id} ({self.status})"


class TagGroup(models.Model):
    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="tag_groups")
    group_id = models.CharField(max_length=64)
    name = models.CharField(max_length=30)
    order = models.BigIntegerField(default=0)
    created_by_us = models.BooleanField(
        default=False, help_text="WeCom lets an app edit only tags it created"
    )
    deleted = models.BooleanField(default=False)
    created_at_wecom = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["corp", "group_id"], name="taggroup_corp_groupid_unique")
        ]
        ordering = ["-order", "name"]  # WeCom: a larger order comes first

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="tags")
    group = models.ForeignKey(TagGroup, on_delete=models.CASCADE, related_name="tags")
    tag_id = models.CharField(max_length=64)
    name = models.CharField(max_length=30)
    order = models.BigIntegerField(default=0)
    created_by_us = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    created_at_wecom = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corp", "tag_id"], name="tag_corp_tagid_unique")]
        ordering = ["-order", "name"]

    def __str__(self) -> str:
        return self.name


class TimelineEntry(models.Model):
    """Everything that happened to a customer, newest first on the customer page."""

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="timeline")
    member = models.ForeignKey(Member, on_delete=models.SET_NULL, null=True, blank=True)
    kind = models.CharField(max_length=64)
    at = models.DateTimeField()
    data = models.JSONField(default=dict, blank=True)
    inbox_event = models.ForeignKey(
        "callbacks.InboxEvent", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["customer", "-at"], name="timeline_customer_at")]
        constraints = [
            # Replaying an inbox event never writes its timeline entry twice.
            models.UniqueConstraint(
                fields=["customer", "inbox_event", "kind"],
                name="timeline_once_per_event",
                condition=models.Q(inbox_event__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} @ {self.at:%Y-%m-%d %H:%M}"


class BulkTagJob(models.Model):
    """Marking or unmarking tags on every follow a customer filter selects, one mark_tag call per follow.

    `cursor` is the last follow pk processed: a restarted worker resumes after it, so no follow is
    marked twice however often the task is delivered.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Waiting to start")
        RUNNING = "running", _("Running")
        DONE = "done", _("Finished")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Stopped")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="bulk_tag_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The customer-list filter as submitted (CustomerFilter.from_params names), re-read when the job runs.
    filter_params = models.JSONField(default=dict, blank=True)
    member = models.ForeignKey(Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    add_tag_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)  # Tag pks
    remove_tag_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(null=True, blank=True)  # counted when the job starts
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(default=0)
    # errcode (or local failure key) -> {"count": n, "errmsg": WeCom's last errmsg}
    errors = models.JSONField(default=dict, blank=True)
    # Why the whole job stopped (status failed): an errcode or local failure key, see wecom.messages.
    stop_reason = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["corp", "-created_at"], name="bulktagjob_corp_created")]

    def __str__(self) -> str:
        return f"bulk tag job {self.pk} ({self.status})"

    @property
    def processed(self) -> int:
        return self.done + self.failed

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.CANCELLED, self.Status.FAILED)
