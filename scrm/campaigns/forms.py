"""Forms of the broadcast pages: compose (content, audience, when), attachments, and the corp's rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scrm.acquisition.content import TEXT_MAX_BYTES
from scrm.acquisition.forms import MembersChoiceField, TagsChoiceField
from scrm.acquisition.models import ChannelCode
from scrm.campaigns.models import Broadcast, BroadcastAttachment, QuotaRule
from scrm.campaigns.quota import SHANGHAI
from scrm.customers.models import Member, Tag
from scrm.tenancy.models import Corp


class BroadcastForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=60, help_text=_("Only you and your team see it."))
    chat_type = forms.ChoiceField(
        label=_("Send to"), choices=Broadcast.ChatType.choices, widget=forms.RadioSelect, initial="single"
    )
    text = forms.CharField(
        label=_("Text"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("At most 4,000 bytes (about 1,300 Chinese characters). Attachments can be added next."),
    )
    tags_all = TagsChoiceField(
        label=_("Has all of these tags (AND)"), queryset=Tag.objects.none(), required=False
    )
    tags_any = TagsChoiceField(
        label=_("Has at least one of these tags (OR)"), queryset=Tag.objects.none(), required=False
    )
    tags_none = TagsChoiceField(
        label=_("Has none of these tags (NOT)"), queryset=Tag.objects.none(), required=False
    )
    members = MembersChoiceField(
        label=_("Sending members"),
        queryset=Member.objects.none(),
        required=False,
        help_text=_("Their customers receive it from them. None chosen: every member."),
    )
    added_from = forms.DateField(
        label=_("Added from"), required=False, widget=forms.DateInput({"type": "date"})
    )
    added_to = forms.DateField(
        label=_("Added until"), required=False, widget=forms.DateInput({"type": "date"})
    )
    codes = forms.ModelMultipleChoiceField(
        label=_("Added through channel codes"), queryset=ChannelCode.objects.none(), required=False
    )
    exclude = forms.CharField(
        label=_("Never send to"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("external_userid of customers (or chat_id of groups), separated by commas or lines."),
    )
    owners = MembersChoiceField(
        label=_("Groups owned by"),
        queryset=Member.objects.none(),
        required=False,
        help_text=_("None chosen: every owner's groups."),
    )
    group_q = forms.CharField(label=_("Group name contains"), max_length=100, required=False)
    send_at = forms.ChoiceField(
        label=_("When"),
        choices=[("now", _("As soon as approved")), ("later", _("At a set time"))],
        widget=forms.RadioSelect,
        initial="now",
    )
    scheduled_at = forms.DateTimeField(
        label=_("Send at (Beijing time)"),
        required=False,
        widget=forms.DateTimeInput({"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )

    def __init__(self, *args: Any, corp: Corp, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tags = (
            Tag.objects.filter(corp=corp, deleted=False)
            .select_related("group")
            .order_by("group__name", "name")
        )
        for name in ("tags_all", "tags_any", "tags_none"):
            self.fields[name].queryset = tags  # type: ignore[attr-defined]
        members = Member.objects.filter(corp=corp, status=Member.Status.ACTIVE).order_by("name", "userid")
        self.fields["members"].queryset = members  # type: ignore[attr-defined]
        self.fields["owners"].queryset = members  # type: ignore[attr-defined]
        self.fields["codes"].queryset = ChannelCode.objects.filter(  # type: ignore[attr-defined]
            corp=corp, status=ChannelCode.Status.ACTIVE
        )

    def clean_text(self) -> str:
        text: str = self.cleaned_data["text"]
        if len(text.encode("utf-8")) > TEXT_MAX_BYTES:
            raise forms.ValidationError(
                _("The text is too long: WeCom accepts at most %(max)s bytes."),
                params={"max": TEXT_MAX_BYTES},
            )
        return text

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("added_from"), data.get("added_to")
        if start and end and start > end:
            self.add_error("added_to", _("The end date is before the start date."))
        if data.get("send_at") == "later":
            when: datetime | None = data.get("scheduled_at")
            if when is None:
                self.add_error("scheduled_at", _("Choose when to send."))
            else:
                when = when.replace(tzinfo=SHANGHAI) if timezone.is_naive(when) else when
                if when < timezone.now():
                    self.add_error("scheduled_at", _("The scheduled time is in the past."))
                data["scheduled_at"] = when
        else:
            data["scheduled_at"] = None
        return data

    def audience(self) -> dict[str, Any]:
        d = self.cleaned_data

        def pks(name: str) -> list[int]:
            return [o.pk for o in d.get(name) or []]

        return {
            "tags_all": pks("tags_all"),
            "tags_any": pks("tags_any"),
            "tags_none": pks("tags_none"),
            "members": pks("members"),
            "added_from": d["added_from"].isoformat() if d.get("added_from") else "",
            "added_to": d["added_to"].isoformat() if d.get("added_to") else "",
            "codes": pks("codes"),
            "exclude": d.get("exclude") or "",
            "owners": pks("owners"),
            "group_q": d.get("group_q") or "",
        }

    @staticmethod
    def initial_for(broadcast: Broadcast) -> dict[str, Any]:
        a = broadcast.audience or {}
        when = (
            broadcast.scheduled_at.astimezone(SHANGHAI).replace(tzinfo=None)
            if broadcast.scheduled_at
            else None
        )
        return {
            "name": broadcast.name,
            "chat_type": broadcast.chat_type,
            "text": broadcast.text,
            **{k: a.get(k, []) for k in ("tags_all", "tags_any", "tags_none", "members", "codes", "owners")},
            "added_from": a.get("added_from") or None,
            "added_to": a.get("added_to") or None,
            "exclude": "\n".join(a.get("exclude", [])),
            "group_q": a.get("group_q", ""),
            "send_at": "later" if when else "now",
            "scheduled_at": when,
        }


class AttachmentForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=BroadcastAttachment.Kind.choices)
    title = forms.CharField(label=_("Title"), max_length=64, required=False)
    url = forms.URLField(label=_("Link address"), max_length=2048, required=False, assume_scheme="https")
    pic_url = forms.URLField(
        label=_("Link cover image address"), max_length=2048, required=False, assume_scheme="https"
    )
    description = forms.CharField(label=_("Description"), max_length=170, required=False)
    appid = forms.CharField(label=_("Mini-program AppID"), max_length=64, required=False)
    page = forms.CharField(label=_("Mini-program page"), max_length=256, required=False)
    file = forms.FileField(
        label=_("File"),
        required=False,
        help_text=_(
            "Image: JPG or PNG up to 10 MB; video: MP4 up to 10 MB; file: up to 20 MB; "
            "mini-program: its cover image."
        ),
    )


class SettingsForm(forms.Form):
    quota_rule = forms.ChoiceField(
        label=_("Receive quota rule"),
        choices=QuotaRule.choices,
        help_text=_(
            "Must match WeCom console → Customer contact → Broadcast assistant → Broadcast rules. Each "
            "customer and group receives at most this many broadcasts (Beijing calendar)."
        ),
    )
    churn_threshold = forms.DecimalField(
        label=_("Churn threshold (%)"),
        min_value=0.01,
        max_value=100,
        decimal_places=2,
        help_text=_(
            "When more than this share of a broadcast's recipients delete their member within 72 hours, "
            "scheduled broadcasts pause and admins are alerted."
        ),
    )
    approval_required = forms.BooleanField(
        label=_("Operators' broadcasts need an admin's approval"), required=False
    )
    dnd_tag = forms.ModelChoiceField(
        label=_("Do-not-disturb tag"),
        queryset=Tag.objects.none(),
        required=False,
        empty_label=_("None"),
        help_text=_("Customers with this tag never receive broadcasts."),
    )

    def __init__(self, *args: Any, corp: Corp, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dnd_tag"].queryset = Tag.objects.filter(  # type: ignore[attr-defined]
            corp=corp, deleted=False
        ).select_related("group")
        self.fields["dnd_tag"].label_from_instance = lambda t: f"{t.group.name} · {t.name}"  # type: ignore[attr-defined]
