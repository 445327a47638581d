from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm.tenancy.models import Corp


class CustomerGroup(models.Model):
    """A customer group chat (客户群)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        DISMISSED = "dismissed", _("Dismissed")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="customer_groups")
    chat_id = models.CharField(max_length=64)
    name = models.CharField(max_length=100, blank=True, default="")
    owner_userid = models.CharField(max_length=64, blank=True, default="")
    notice = models.TextField(blank=True, default="")
    admin_userids = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # member_version from groupchat/get; a change event whose LastMemVer differs means we missed one.
    member_version = models.CharField(max_length=64, blank=True, default="")
    member_count = models.PositiveIntegerField(default=0)
    created_at_wecom = models.DateTimeField(null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    last_event_time = models.BigIntegerField(default=0)
    last_seen_sync = models.BigIntegerField(null=True, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corp", "chat_id"], name="group_corp_chatid_unique")]

    def __str__(self) -> str:
        return self.name or self.chat_id


class GroupMember(models.Model):
    class Type(models.IntegerChoices):
        MEMBER = 1, _("Member")
        CUSTOMER = 2, _("Customer")

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE)
    group = models.ForeignKey(CustomerGroup, on_delete=models.CASCADE, related_name="memberships")
    userid = models.CharField(max_length=64, help_text="member userid or customer external_userid")
    type = models.PositiveSmallIntegerField(choices=Type.choices, default=Type.CUSTOMER)
    join_time = models.DateTimeField(null=True, blank=True)
    join_scene = models.IntegerField(null=True, blank=True)
    invitor_userid = models.CharField(max_length=64, blank=True, default="")
    state = models.CharField(max_length=64, blank=True, default="", db_index=True)
    group_nickname = models.CharField(max_length=100, blank=True, default="")
    name = models.CharField(max_length=100, blank=True, default="")
    unionid = models.CharField(max_length=64, blank=True, default="")
    is_active = models.BooleanField(default=True)
    left_at = models.DateTimeField(null=True, blank=True)
    quit_scene = models.IntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "userid"], name="groupmember_group_userid_unique")
        ]
        indexes = [models.Index(fields=["corp", "userid"], name="groupmember_corp_userid")]

    def __str__(self) -> str:
        return f"{self.userid} in {self.group_id}"


class GroupDailyStat(models.Model):
    """Joins and leaves per group per day (Asia/Shanghai), counted as events are applied."""

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE)
    group = models.ForeignKey(CustomerGroup, on_delete=models.CASCADE, related_name="daily_stats")
    day = models.DateField()
    joins = models.PositiveIntegerField(default=0)
    leaves = models.PositiveIntegerField(default=0)
    size_at_end = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "day"], name="groupstat_group_day_unique")]

    def __str__(self) -> str:
        return f"{self.group_id} {self.day}: +{self.joins} -{self.leaves}"


class CorpGroupDayStat(models.Model):
    """WeCom's own daily figures for the corp's customer groups (groupchat/statistic_group_by_day, summed
    over owners): groups, active groups (with messages), members, new members."""

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE)
    day = models.DateField()
    chat_total = models.PositiveIntegerField(default=0)
    new_chat_cnt = models.PositiveIntegerField(default=0)
    chat_has_msg = models.PositiveIntegerField(default=0)
    member_total = models.PositiveIntegerField(default=0)
    new_member_cnt = models.PositiveIntegerField(default=0)
    member_has_msg = models.PositiveIntegerField(default=0)
    msg_total = models.PositiveIntegerField(default=0)
    fetched_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corp", "day"], name="corpgroupday_corp_day_unique")]

    def __str__(self) -> str:
        return f"{self.corp_id} {self.day}: {self.chat_total} groups, {self.member_total} members"
