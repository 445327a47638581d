from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from scrm.customers.models import Member
from scrm.succession import selectors
from scrm.succession.models import DedupDecision, Handover
from scrm.tenancy.models import Corp


class HandoverForm(forms.Form):
    rule = forms.ChoiceField(
        label=_("Who takes over"), choices=Handover.Rule.choices, widget=forms.RadioSelect
    )
    takeover = forms.ModelChoiceField(
        label=_("Successor"), queryset=Member.objects.none(), required=False, empty_label=_("Choose a member")
    )
    candidates = forms.ModelMultipleChoiceField(
        label=_("Share among"),
        queryset=Member.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "Least-loaded: each customer goes to whoever has the fewest customers at that moment. "
            "Same department: leave empty to consider everyone in the department."
        ),
    )
    include_customers = forms.BooleanField(label=_("Customers"), required=False, initial=True)
    include_groups = forms.BooleanField(label=_("Groups they own"), required=False, initial=True)
    transfer_success_msg = forms.CharField(
        label=_("Message to the customer"),
        required=False,
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Shown to the customer when the new member takes over (at most 200 characters)."),
    )

    def __init__(self, *args: Any, corp: Corp, member: Member, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = selectors.successor_choices(corp=corp).exclude(pk=member.pk)
        self.fields["takeover"].queryset = choices  # type: ignore[attr-defined]
        self.fields["candidates"].queryset = choices  # type: ignore[attr-defined]
        self.kind = kind
        if kind != Handover.Kind.ONJOB:
            del self.fields["transfer_success_msg"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        rule = data.get("rule")
        if rule == Handover.Rule.MEMBER and not data.get("takeover"):
            self.add_error("takeover", _("Choose the member who takes over."))
        if rule == Handover.Rule.LEAST_LOADED and not data.get("candidates"):
            self.add_error("candidates", _("Choose at least one member to share the customers."))
        if not data.get("include_customers") and not data.get("include_groups"):
            raise forms.ValidationError(_("Hand over the customers, the groups, or both."))
        return data


class OnjobStartForm(forms.Form):
    member = forms.ModelChoiceField(label=_("Member handing over"), queryset=Member.objects.none())

    def __init__(self, *args: Any, corp: Corp, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = selectors.successor_choices(corp=corp)  # type: ignore[attr-defined]


class DedupForm(forms.Form):
    decision = forms.ChoiceField(choices=DedupDecision.Decision.choices)
    keep_member = forms.ModelChoiceField(queryset=Member.objects.none(), required=False)
    note = forms.CharField(required=False, max_length=300)

    def __init__(self, *args: Any, corp: Corp, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["keep_member"].queryset = Member.objects.filter(corp=corp)  # type: ignore[attr-defined]
