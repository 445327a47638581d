from __future__ import annotations

from django.contrib.auth.models import User
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from scrm.groups.models import CustomerGroup
from scrm.tenancy.models import Corp

# Doc 92229 / API.md: beyond 200 members people cannot join a group by QR code.
QR_CAPACITY = 200
WAY_MAX_CHATS = 5  # chat_id_list ≤5 (Doc 92229)


class GroupCode(models.Model):
    """A permanent QR code (群活码) in front of a pool of customer groups."""

    class Mode(models.TextChoices):
        OFFICIAL = "official", _("WeCom join way")
        LANDING = "landing", _("Landing page with uploaded group QR codes")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        DELETED = "deleted", _("Deleted")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="group_codes")
    name = models.CharField(max_length=30)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.OFFICIAL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # The join way's `state` (≤30 chars), echoed in groupchat/get's member_list: joins are attributed by it.
    state = models.CharField(max_length=30, blank=True, default="")
    # The public landing page /g/<slug>/ (landing mode); unguessable.
    slug = models.CharField(max_length=32, unique=True)
    capacity = models.PositiveIntegerField(default=QR_CAPACITY)
    config_id = models.CharField(max_length=64, blank=True, default="")
    qr_code = models.URLField(max_length=500, blank=True, default="")
    qr_png = models.BinaryField(null=True, blank=True)
    room_base_name = models.CharField(max_length=40, blank=True, default="")
    room_base_id = models.PositiveIntegerField(default=1)
    # What WeCom holds now: the way's chat ids in order, and whether it may create rooms itself.
    applied_chat_ids = models.JSONField(default=list, blank=True)
    applied_auto_create = models.BooleanField(default=False)
    exhausted_at = models.DateTimeField(null=True, blank=True)
    rotations = models.PositiveIntegerField(default=0)
    last_rotated_at = models.DateTimeField(null=True, blank=True)
    alert = models.CharField(max_length=300, blank=True, default="")
    alert_errcode = models.IntegerField(null=True, blank=True)
    alert_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["corp", "state"], condition=~Q(state=""), name="groupcode_corp_state_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name


class PoolGroup(models.Model):
    """One group of a code's pool, in order. Landing mode adds the group's uploaded QR image."""

    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        SERVING = "serving", _("On the code")
        FULL = "full", _("Full")
        REMOVED = "removed", _("Removed")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE)
    code = models.ForeignKey(GroupCode, on_delete=models.CASCADE, related_name="pool")
    group = models.ForeignKey(CustomerGroup, on_delete=models.CASCADE, related_name="pool_entries")
    order = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    auto_created = models.BooleanField(default=False)
    served_at = models.DateTimeField(null=True, blank=True)
    full_at = models.DateTimeField(null=True, blank=True)
    qr_image = models.BinaryField(null=True, blank=True)
    qr_content_type = models.CharField(max_length=32, blank=True, default="")
    qr_expires_at = models.DateTimeField(null=True, blank=True)
    expiry_warned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["code", "group"], name="poolgroup_code_group_unique")]
        indexes = [models.Index(fields=["group", "status"], name="poolgroup_group_status")]

    def __str__(self) -> str:
        return f"{self.code_id}:{self.group_id} ({self.status})"


class CodeDayStat(models.Model):
    """Joins and leaves of one pool group per day (Asia/Shanghai) while it belongs to the code."""

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE)
    code = models.ForeignKey(GroupCode, on_delete=models.CASCADE, related_name="day_stats")
    group = models.ForeignKey(CustomerGroup, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    joins = models.PositiveIntegerField(default=0)
    leaves = models.PositiveIntegerField(default=0)
    size_at_end = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["code", "group", "day"], name="codedaystat_code_group_day_unique")
        ]

    def __str__(self) -> str:
        return f"{self.code_id}:{self.group_id} {self.day}: +{self.joins} -{self.leaves}"


class Rotation(models.Model):
    """A change of the groups behind a code: what went out, what came in, and why."""

    class Kind(models.TextChoices):
        ROTATE = "rotate", _("Groups swapped")
        AUTO_CREATE = "auto_create", _("WeCom created a group")
        EXHAUSTED = "exhausted", _("Pool exhausted")
        FAILED = "failed", _("WeCom refused the change")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE)
    code = models.ForeignKey(GroupCode, on_delete=models.CASCADE, related_name="rotation_log")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ROTATE)
    at = models.DateTimeField(auto_now_add=True)
    removed = models.JSONField(default=list, blank=True)
    added = models.JSONField(default=list, blank=True)
    trigger_chat_id = models.CharField(max_length=64, blank=True, default="")
    trigger_members = models.IntegerField(null=True, blank=True)
    margin = models.PositiveIntegerField(default=1)
    rate = models.FloatField(default=0.0)
    # Callback received → the new groups in effect (WeCom answered update_join_way), when an event caused it.
    latency_ms = models.IntegerField(null=True, blank=True)
    # The event applied → the new groups in effect: the rotation's own part (the rest is the queue).
    decide_ms = models.IntegerField(null=True, blank=True)
    errcode = models.IntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.code_id} {self.kind} {self.at:%Y-%m-%d %H:%M:%S}"


class Notice(models.Model):
    """Something an admin (owner_userid empty) or a group owner should know. `key` makes it once-only."""

    class Kind(models.TextChoices):
        EXHAUSTED = "exhausted", _("Pool exhausted")
        AUTO_CREATED = "auto_created", _("Group created by WeCom")
        EXPIRY = "expiry", _("Group QR image expires soon")
        ROTATION_FAILED = "rotation_failed", _("Rotation failed")
        DUPLICATES = "duplicates", _("Customers in several groups")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE)
    code = models.ForeignKey(
        GroupCode, null=True, blank=True, on_delete=models.CASCADE, related_name="notices"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    owner_userid = models.CharField(max_length=64, blank=True, default="")
    key = models.CharField(max_length=120)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corp", "key"], name="gcnotice_corp_key_unique")]
        indexes = [models.Index(fields=["corp", "owner_userid", "-created_at"], name="gcnotice_owner")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.text[:40]}"


class GroupWelcomeTemplate(models.Model):
    """A group welcome template (入群欢迎语素材), kept in WeCom (≤100 per corp)."""

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="group_welcome_templates")
    name = models.CharField(max_length=50)
    text = models.TextField(max_length=4000)
    link_title = models.CharField(max_length=128, blank=True, default="")
    link_url = models.URLField(max_length=500, blank=True, default="")
    notify = models.BooleanField(default=True)
    template_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name
