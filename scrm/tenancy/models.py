from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm.core.fields import EncryptedTextField


class Corp(models.Model):
    """A tenant: one WeCom corp (企业) connected through its self-built app."""

    name = models.CharField(_("name"), max_length=100)
    corp_id = models.CharField(_("CorpID"), max_length=64, unique=True)
    agent_id = models.PositiveIntegerField(_("AgentId"))
    secret = EncryptedTextField(_("app secret"))
    callback_token = EncryptedTextField(_("callback Token"))
    encoding_aes_key = EncryptedTextField(_("EncodingAESKey"))
    # The WeCom API this corp talks to: the real one, or the local sandbox for demos and tests.
    api_base = models.URLField(_("API base URL"), blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_connection_ok_at = models.DateTimeField(null=True, blank=True)
    last_connection_error = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["name"]
        verbose_name = _("corp")
        verbose_name_plural = _("corps")

    def __str__(self) -> str:
        return f"{self.name} ({self.corp_id})"

    @property
    def effective_api_base(self) -> str:
        return self.api_base or settings.WECOM_API_BASE


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    OPERATOR = "operator", _("Operator")
    VIEWER = "viewer", _("Viewer")


# Higher rank can do everything a lower rank can.
ROLE_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "corp"], name="membership_user_corp_unique")]
        ordering = ["corp__name"]

    def __str__(self) -> str:
        return f"{self.user} @ {self.corp.corp_id} ({self.role})"

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]
