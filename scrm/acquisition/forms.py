"""Forms for channel codes and welcome scripts: shapes and plain-language errors. The rules themselves
(caps, members, sensitive words, sizes) are checked again by the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from scrm.acquisition import selectors
from scrm.acquisition.content import VARIABLES, WEEKDAYS
from scrm.acquisition.models import (
    DEFAULT_PER_DAY_CAP,
    DEFAULT_PER_MINUTE_CAP,
    WelcomeAttachment,
    WelcomeScript,
    WelcomeVariant,
)
from scrm.acquisition.services import SeatInput, welcome_text_check
from scrm.customers.models import Member, Tag
from scrm.tenancy.models import Corp

VARIABLE_HELP = _("Variables: %(vars)s.") % {"vars": ", ".join("{" + k + "}" for k in VARIABLES)}


class MemberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.userid})" if obj.name else str(obj.userid)


class MembersChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.userid})" if obj.name else str(obj.userid)


class TagsChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.group.name} · {obj.name}"


class CodeForm(forms.Form):
    name = forms.CharField(
        label=_("Channel name"), max_length=30, help_text=_("Shown in the statistics; at most 30 characters.")
    )
    script = forms.ModelChoiceField(
        label=_("Welcome script"),
        queryset=WelcomeScript.objects.none(),
        required=False,
        empty_label=_("(none: the member's own script, else the corp default)"),
    )
    tags = TagsChoiceField(
        label=_("Auto-tags"),
        queryset=Tag.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Marked on every customer who adds a member through this code."),
    )
    remark_template = forms.CharField(
        label=_("Remark"),
        max_length=40,
        required=False,
        help_text=_("Set as the member's remark on the customer (WeCom keeps 20 characters). ")
        + VARIABLE_HELP,
    )
    per_minute_cap = forms.IntegerField(
        label=_("Per member, per minute"),
        min_value=2,
        max_value=60,
        initial=DEFAULT_PER_MINUTE_CAP,
        # Lazy as a whole: `%` on a lazy string would fix the language at import time.
        help_text=lazy(
            lambda: (
                gettext(
                    "WeCom restricts accounts that get added too fast (reportedly more than about 60 "
                    "people a minute for a new account). %(n)s leaves a wide margin."
                )
                % {"n": DEFAULT_PER_MINUTE_CAP}
            ),
            str,
        )(),
    )
    per_day_cap = forms.IntegerField(
        label=_("Per member, per day"),
        min_value=2,
        max_value=5000,
        initial=DEFAULT_PER_DAY_CAP,
        help_text=_(
            "About as many new customers as one person can greet and serve in a day. A member who reaches "
            "a cap is taken off the code until the minute or the day ends; backups take over when all are."
        ),
    )
    skip_verify = forms.BooleanField(
        label=_("Add without the member confirming"),
        required=False,
        initial=True,
        help_text=_("Off: each customer's request waits until the member accepts it."),
    )

    def __init__(self, *args: Any, corp: Corp, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["script"].queryset = WelcomeScript.objects.filter(corp=corp)  # type: ignore[attr-defined]
        self.fields["tags"].queryset = selectors.tag_choices(corp=corp)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        per_minute, per_day = data.get("per_minute_cap"), data.get("per_day_cap")
        if per_minute and per_day and per_minute > per_day:
            raise ValidationError(_("The per-minute cap can't be larger than the per-day cap."))
        return data


class SeatForm(forms.Form):
    member = MemberChoiceField(label=_("Member"), queryset=Member.objects.none(), required=False)
    backup = forms.BooleanField(label=_("Backup"), required=False)
    weekdays = forms.TypedMultipleChoiceField(
        label=_("Days"),
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every day."),
    )
    start = forms.TimeField(label=_("From"), required=False, widget=forms.TimeInput(attrs={"type": "time"}))
    end = forms.TimeField(label=_("To"), required=False, widget=forms.TimeInput(attrs={"type": "time"}))

    def __init__(self, *args: Any, corp: Corp, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = selectors.member_choices(corp=corp)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("start") is None) != (data.get("end") is None):
            raise ValidationError(_("Give both times, or neither for all day."))
        return data

    def seat(self) -> SeatInput | None:
        data = self.cleaned_data
        if not data.get("member"):
            return None
        return SeatInput(
            member=data["member"],
            backup=bool(data.get("backup")),
            weekdays=tuple(data.get("weekdays") or ()),
            start=data.get("start"),
            end=data.get("end"),
        )


class BaseSeatFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        if any(self.errors):
            return
        seats = [f.seat() for f in self.forms if f.is_valid()]
        chosen = [s for s in seats if s is not None]
        if not any(not s.backup for s in chosen):
            raise ValidationError(_("Choose at least one member (not a backup) for the code."))
        ids = [s.member.pk for s in chosen]
        if len(set(ids)) != len(ids):
            raise ValidationError(_("Each member can be on a code only once."))

    def seats(self) -> list[SeatInput]:
        return [s for f in self.forms if (s := f.seat()) is not None]


SeatFormSet: type[BaseSeatFormSet] = forms.formset_factory(  # type: ignore[assignment]
    SeatForm, formset=BaseSeatFormSet, extra=2, max_num=50
)


class ScriptForm(forms.Form):
    name = forms.CharField(label=_("Script name"), max_length=60)
    text = forms.CharField(
        label=_("Text"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=VARIABLE_HELP,
    )
    nickname_fallback = forms.CharField(
        label=_("When the nickname is unknown, say"),
        max_length=20,
        required=False,
        help_text=_("Used for {customer_nickname} if WeCom can't tell us the nickname in time."),
    )
    is_default = forms.BooleanField(
        label=_("Corp default"), required=False, help_text=_("For adds whose code and member have no script.")
    )
    members = MembersChoiceField(
        label=_("Members' own script"),
        queryset=Member.objects.none(),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text=_("Their adds use this script unless the channel code has its own."),
    )

    def __init__(self, *args: Any, corp: Corp, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.corp = corp
        self.fields["members"].queryset = selectors.member_choices(corp=corp)  # type: ignore[attr-defined]

    def clean_text(self) -> str:
        text: str = self.cleaned_data.get("text", "")
        welcome_text_check(corp=self.corp, text=text)
        return text


class VariantForm(forms.Form):
    weekdays = forms.TypedMultipleChoiceField(
        label=_("Days"),
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every day."),
    )
    start_time = forms.TimeField(label=_("From"), widget=forms.TimeInput(attrs={"type": "time"}))
    end_time = forms.TimeField(
        label=_("To"),
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text=_("Earlier than the start: runs past midnight."),
    )
    text = forms.CharField(label=_("Text"), required=False, widget=forms.Textarea(attrs={"rows": 4}))

    def __init__(self, *args: Any, corp: Corp, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.corp = corp

    def clean_text(self) -> str:
        text: str = self.cleaned_data.get("text", "")
        welcome_text_check(corp=self.corp, text=text)
        return text


class AttachmentForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=WelcomeAttachment.Kind.choices)
    variant = forms.ModelChoiceField(
        label=_("For"),
        queryset=WelcomeVariant.objects.none(),
        required=False,
        empty_label=_("The script's own text"),
    )
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

    def __init__(self, *args: Any, script: WelcomeScript, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["variant"].queryset = script.variants.all()  # type: ignore[attr-defined]
        self.fields["variant"].label_from_instance = (  # type: ignore[attr-defined]
            lambda v: f"{v.start_time:%H:%M}–{v.end_time:%H:%M}"
        )
