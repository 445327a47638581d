"""A corp's own sensitive words and patterns, and what the gate does on a match.

The built-in list lives in code (`defaults.py`); these rows are what a corp's admins add on top.
Services in `services.py` write them and bump the corp's gate version so every process reloads.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm.tenancy.models import Corp


class CorpWord(models.Model):
    """A word, or a pattern with `*` wildcards (see matching.py), refused in this corp's outgoing text."""

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="sensitive_words")
    word = models.CharField(_("word or pattern"), max_length=50)
    # The normal form ("赌 博" and "赌博" are the same word): uniqueness is on this.
    key = models.CharField(max_length=200)
    is_pattern = models.BooleanField(default=False)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-added_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["corp", "key"], name="corpword_corp_key_unique")]

    def __str__(self) -> str:
        return self.word


class GatePolicy(models.Model):
    """What a match does: refuse the text outright, or let it through only when an admin approves."""

    class Action(models.TextChoices):
        BLOCK = "block", _("Block sending")
        APPROVAL = "approval", _("Require an admin's approval")

    corp = models.OneToOneField(Corp, on_delete=models.CASCADE, primary_key=True, related_name="gate_policy")
    action = models.CharField(_("on a match"), max_length=8, choices=Action.choices, default=Action.BLOCK)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.corp_id}: {self.action}"
