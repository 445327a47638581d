from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.utils.translation import gettext_lazy as _

from scrm.tenancy.models import Corp, Role

# Reference: Doc 90930 (Token ≤32 letters/digits; EncodingAESKey exactly 43 characters of [a-zA-Z0-9])
TOKEN_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
AES_KEY_RE = re.compile(r"^[A-Za-z0-9]{43}$")
CORP_ID_RE = re.compile(r"^[A-Za-z0-9_-]{6,64}$")


def validate_token(value: str) -> None:
    if not TOKEN_RE.match(value):
        raise forms.ValidationError(_("Token must be 1 to 32 letters or digits."), code="token")


def validate_aes_key(value: str) -> None:
    if not AES_KEY_RE.match(value):
        raise forms.ValidationError(
            _("EncodingAESKey must be exactly 43 letters or digits (you entered %(n)d characters)."),
            code="aes_key",
            params={"n": len(value)},
        )


class CorpCreateForm(forms.Form):
    name = forms.CharField(label=_("Company name"), max_length=100)
    corp_id = forms.CharField(
        label=_("CorpID"),
        max_length=64,
        help_text=_("WeCom admin console → My Company (我的企业) → Company info, at the bottom: 企业ID."),
    )
    agent_id = forms.IntegerField(
        label=_("AgentId"), min_value=1, help_text=_("Apps (应用管理) → your self-built app → AgentId.")
    )
    secret = forms.CharField(
        label=_("App secret"),
        max_length=128,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("The self-built app's Secret. Stored encrypted; never shown again."),
    )
    callback_token = forms.CharField(
        label=_("Callback Token"), max_length=32, validators=[validate_token], widget=forms.PasswordInput
    )
    encoding_aes_key = forms.CharField(
        label=_("EncodingAESKey"),
        max_length=43,
        min_length=1,
        validators=[validate_aes_key],
        widget=forms.PasswordInput,
    )
    api_base = forms.URLField(
        label=_("API base URL"),
        required=False,
        assume_scheme="https",
        help_text=_("Leave blank for WeCom itself. The local sandbox is used for demos and tests."),
    )

    def clean_corp_id(self) -> str:
        value: str = self.cleaned_data["corp_id"].strip()
        if not CORP_ID_RE.match(value):
            raise forms.ValidationError(
                _("A CorpID is 6 to 64 letters, digits, '-' or '_' (e.g. ww1234abcd…).")
            )
        if Corp.objects.filter(corp_id=value).exists():
            raise forms.ValidationError(_("This CorpID is already connected. Ask its admin to invite you."))
        return value


class CorpEditForm(forms.Form):
    name = forms.CharField(label=_("Company name"), max_length=100)
    agent_id = forms.IntegerField(label=_("AgentId"), min_value=1)
    secret = forms.CharField(
        label=_("App secret"),
        max_length=128,
        required=False,
        widget=forms.PasswordInput,
        help_text=_("Leave blank to keep the current one."),
    )
    callback_token = forms.CharField(
        label=_("Callback Token"),
        max_length=32,
        required=False,
        validators=[validate_token],
        widget=forms.PasswordInput,
        help_text=_("Leave blank to keep the current one."),
    )
    encoding_aes_key = forms.CharField(
        label=_("EncodingAESKey"),
        max_length=43,
        required=False,
        validators=[validate_aes_key],
        widget=forms.PasswordInput,
        help_text=_("Leave blank to keep the current one."),
    )
    api_base = forms.URLField(label=_("API base URL"), required=False, assume_scheme="https")

    @classmethod
    def for_corp(cls, corp: Corp, data: Any = None) -> CorpEditForm:
        return cls(
            data=data, initial={"name": corp.name, "agent_id": corp.agent_id, "api_base": corp.api_base}
        )


class MembershipForm(forms.Form):
    """Adds a teammate to the current corp, creating their account when it doesn't exist yet."""

    username = forms.CharField(label=_("Username"), max_length=150)
    password = forms.CharField(
        label=_("Initial password"),
        required=False,
        widget=forms.PasswordInput,
        help_text=_("Only for a new account. They can change it after signing in."),
    )
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        username = (cleaned.get("username") or "").strip()
        user = get_user_model().objects.filter(username=username).first()
        password = cleaned.get("password") or ""
        if user is None:
            if not password:
                self.add_error("password", _("A new account needs an initial password."))
            else:
                try:
                    password_validation.validate_password(password)
                except forms.ValidationError as exc:
                    self.add_error("password", exc)
        cleaned["user"] = user
        cleaned["username"] = username
        return cleaned
