"""Succession (继承): handing a member's customers and groups to successors, and what WeCom made of it.

A Handover is one job (a leaver's customers, or an on-job hand-over); it has one item per customer and
per group. Items are requested in batches (≤100 per call, Doc 92125/94081/92127/95703); a TransferBatch
row is claimed *before* WeCom is called, so a redelivered task never requests an item twice: it finds
the claim and reconciles it against WeCom instead of calling again.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from scrm.customers.models import Customer, Member
from scrm.groups.models import CustomerGroup
from scrm.tenancy.models import Corp


class Handover(models.Model):
    class Kind(models.TextChoices):
        RESIGNED = "resigned", _("Member left the company")
        ONJOB = "onjob", _("On-job hand-over")

    class Rule(models.TextChoices):
        MEMBER = "member", _("A chosen member")
        LEAST_LOADED = "least_loaded", _("Least-loaded member of a chosen set")
        SAME_DEPARTMENT = "same_department", _("Least-loaded member of the same department")

    class Status(models.TextChoices):
        RUNNING = "running", _("In progress")
        DONE = "done", _("Finished")
        CANCELLED = "cancelled", _("Cancelled")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="handovers")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="handovers_out")
    rule = models.CharField(max_length=16, choices=Rule.choices, default=Rule.MEMBER)
    # The successors the rule chose among (Member pks).
    candidate_ids = models.JSONField(default=list, blank=True)
    transfer_success_msg = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Why requests stopped (a configuration errcode, see wecom.messages); empty while all is well.
    stop_reason = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["corp", "-created_at"], name="handover_corp_created")]

    def __str__(self) -> str:
        return f"handover {self.pk} of {self.member_id} ({self.kind}, {self.status})"

    @property
    def customer_api(self) -> str:
        return "resigned/transfer_customer" if self.kind == self.Kind.RESIGNED else "transfer_customer"

    @property
    def group_api(self) -> str:
        return "groupchat/transfer" if self.kind == self.Kind.RESIGNED else "groupchat/onjob_transfer"


class ItemStatus(models.TextChoices):
    PENDING = "pending", _("Not requested yet")
    REQUESTING = "requesting", _("Being requested")
    WAITING = "waiting", _("Waiting for the customer (24 h)")
    DONE = "done", _("Taken over")
    REFUSED = "refused", _("Customer refused")
    OVER_CAP = "over_cap", _("Successor has too many customers")
    GUARDED = "guarded", _("Held back: moved twice in 90 days")
    SKIPPED = "skipped", _("Not needed")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


# An item in one of these has been (or is being) sent to WeCom: it counts towards the 90-day guard and it
# is never requested again.
STARTED = (
    ItemStatus.REQUESTING,
    ItemStatus.WAITING,
    ItemStatus.DONE,
    ItemStatus.REFUSED,
    ItemStatus.OVER_CAP,
)
OPEN = (ItemStatus.PENDING, ItemStatus.REQUESTING, ItemStatus.WAITING)
FINAL = tuple(s for s in ItemStatus.values if s not in OPEN)


class TransferBatch(models.Model):
    """One WeCom call (≤100 customers or groups), claimed before the call is made."""

    class Status(models.TextChoices):
        CLAIMED = "claimed", _("Calling WeCom")
        ANSWERED = "answered", _("Answered")
        RECONCILED = "reconciled", _("Checked against WeCom after an interruption")
        RELEASED = "released", _("Not sent (will be retried)")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="+")
    handover = models.ForeignKey(Handover, on_delete=models.CASCADE, related_name="batches")
    target = models.CharField(max_length=8)  # "customer" | "group"
    takeover = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CLAIMED)
    size = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField()
    errcode = models.IntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "lease_until"], name="transferbatch_open")]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.target}, {self.status})"


class HandoverItem(models.Model):
    """One customer or one group of a handover, its successor and what became of it."""

    class Target(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        GROUP = "group", _("Group")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="+")
    handover = models.ForeignKey(Handover, on_delete=models.CASCADE, related_name="items")
    target = models.CharField(max_length=8, choices=Target.choices)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    group = models.ForeignKey(
        CustomerGroup, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    wecom_id = models.CharField(max_length=64)  # external_userid or chat_id
    takeover = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="handovers_in")
    status = models.CharField(max_length=16, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    # Groups: the first Asia/Shanghai day this item may be requested (300 a day per corp and API).
    not_before = models.DateField(null=True, blank=True)
    batch = models.ForeignKey(
        TransferBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="items"
    )
    # The Asia/Shanghai day the request was sent: the daily group budget counts these.
    requested_day = models.DateField(null=True, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    errcode = models.IntegerField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["handover", "target", "wecom_id"], name="handoveritem_once"),
            # One open transfer per customer (and per group) across every handover of the corp.
            models.UniqueConstraint(
                fields=["corp", "target", "wecom_id"],
                condition=Q(status__in=["pending", "requesting", "waiting"]),
                name="handoveritem_one_open",
            ),
        ]
        indexes = [
            models.Index(fields=["handover", "status"], name="handoveritem_status"),
            models.Index(fields=["corp", "target", "wecom_id", "requested_at"], name="handoveritem_history"),
            models.Index(fields=["corp", "target", "requested_day"], name="handoveritem_day"),
        ]

    def __str__(self) -> str:
        return f"{self.target} {self.wecom_id} → {self.takeover_id} ({self.status})"


class DedupDecision(models.Model):
    """What an admin decided about a customer followed by several members (the matrix report)."""

    class Decision(models.TextChoices):
        KEEP_ONE = "keep_one", _("Keep one member")
        KEEP_ALL = "keep_all", _("Keep every member")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    keep_member = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True, default="")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corp", "customer"], name="dedupdecision_once")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.decision}"
