"""Reads for the sensitive-word page."""

from __future__ import annotations

from django.db.models import QuerySet

from scrm.compliance.defaults import CATEGORIES, Category
from scrm.compliance.models import CorpWord, GatePolicy
from scrm.tenancy.models import Corp


def corp_word_list(*, corp: Corp) -> QuerySet[CorpWord]:
    return CorpWord.objects.filter(corp=corp).select_related("added_by").order_by("-added_at", "-pk")


def gate_policy_action(*, corp: Corp) -> str:
    action = GatePolicy.objects.filter(corp=corp).values_list("action", flat=True).first()
    return str(action or GatePolicy.Action.BLOCK)


def default_categories() -> tuple[Category, ...]:
    return CATEGORIES
