"""Forms for group codes and group welcome templates: shapes and plain-language errors. The rules
(capacity, groups of this corp, image types, sensitive words, the 100-template limit) are checked again
by the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from scrm.groupcodes.models import QR_CAPACITY, GroupCode
from scrm.groupcodes.selectors import groups_for_pool
from scrm.groups.models import CustomerGroup
from scrm.tenancy.models import Corp


class GroupChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name or obj.chat_id} ({obj.member_count})"


class GroupsChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name or obj.chat_id} ({obj.member_count})"


class CodeForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=30, help_text=_("At most 30 characters."))
    mode = forms.ChoiceField(label=_("Kind"), choices=GroupCode.Mode.choices, initial=GroupCode.Mode.OFFICIAL)
    groups = GroupsChoiceField(
        label=_("Groups, in the order they fill"),
        queryset=CustomerGroup.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("WeCom join way: up to 5 groups are on the code at a time; full ones are swapped out."),
    )
    capacity = forms.IntegerField(
        label=_("Members per group"),
        min_value=2,
        max_value=500,
        initial=QR_CAPACITY,
        help_text=_("WeCom stops QR joins at 200 members; a group leaves the code a little before."),
    )
    room_base_name = forms.CharField(
        label=_("Name of groups WeCom creates when the pool runs out"),
        max_length=40,
        required=False,
        help_text=_("Numbered after it: name1, name2… Empty: the code's name."),
    )

    def __init__(self, *args: Any, corp: Corp, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["groups"].queryset = groups_for_pool(corp=corp)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") == GroupCode.Mode.OFFICIAL and not data.get("groups"):
            self.add_error("groups", _("Choose at least one group for the code."))
        return data


class PoolAddForm(forms.Form):
    groups = GroupsChoiceField(
        label=_("Groups to add"), queryset=CustomerGroup.objects.none(), widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, corp: Corp, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["groups"].queryset = groups_for_pool(corp=corp)  # type: ignore[attr-defined]


class ImageForm(forms.Form):
    group = GroupChoiceField(label=_("Group"), queryset=CustomerGroup.objects.none())
    image = forms.FileField(label=_("The group's QR code image (PNG or JPEG, ≤2 MB)"))
    expires_at = forms.DateTimeField(
        label=_("Valid until"),
        required=False,
        help_text=_("As WeChat shows under the QR code; empty: 7 days from now."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def __init__(self, *args: Any, corp: Corp, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = groups_for_pool(corp=corp)  # type: ignore[attr-defined]


class TemplateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=50)
    text = forms.CharField(label=_("Welcome text"), widget=forms.Textarea(attrs={"rows": 5}), max_length=4000)
    link_title = forms.CharField(label=_("Link title"), max_length=128, required=False)
    link_url = forms.URLField(label=_("Link address"), max_length=500, required=False, assume_scheme="https")
    notify = forms.BooleanField(
        label=_("Tell members in the WeCom client that a template was added"), required=False, initial=True
    )
