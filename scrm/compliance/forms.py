"""Forms of the sensitive-word page; the services validate words and patterns again."""

from __future__ import annotations

from django import forms
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from scrm.compliance.matching import GAP, MAX_LENGTH, MAX_WILDCARDS
from scrm.compliance.models import GatePolicy

TRY_MAX = 10_000


class CorpWordForm(forms.Form):
    word = forms.CharField(
        label=_("Word or pattern"),
        max_length=MAX_LENGTH,
        # Lazy as a whole: `%` on a lazy string would fix the language at import time.
        help_text=lazy(
            lambda: (
                gettext(
                    "A word is matched anywhere, ignoring spaces, punctuation and letter case. "
                    "In a pattern, * stands for up to %(gap)s characters (at most %(n)s *), e.g. 加*微信."
                )
                % {"gap": GAP, "n": MAX_WILDCARDS}
            ),
            str,
        )(),
        widget=forms.TextInput(attrs={"placeholder": "加*微信", "autocomplete": "off"}),
    )


class PolicyForm(forms.Form):
    action = forms.ChoiceField(
        label=_("When a text contains a sensitive word"),
        choices=GatePolicy.Action.choices,
        widget=forms.RadioSelect,
        help_text=_(
            "Block: no one can save or send such a text. Needs approval: it goes out only with an admin's "
            "approval; an admin saving it approves it."
        ),
    )


class TryForm(forms.Form):
    text = forms.CharField(
        label=_("Try a text"),
        max_length=TRY_MAX,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": _("Paste a welcome message or broadcast")}),
    )
