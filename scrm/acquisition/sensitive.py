"""Compatibility shim: the sensitive-word gate now lives in `scrm.compliance` (defaults, corp words and
patterns, block/approval policy). New code calls `scrm.compliance.services.content_gate_check`."""

from __future__ import annotations

from collections.abc import Iterable

from scrm.compliance.defaults import default_words
from scrm.compliance.matching import normal as _normal
from scrm.compliance.services import content_gate, content_gate_check
from scrm.tenancy.models import Corp

BASIC_WORDS: tuple[str, ...] = tuple(w for w, _cat in default_words())

__all__ = ["BASIC_WORDS", "_normal", "sensitive_check", "sensitive_words_find"]


def sensitive_words_find(*, corp: Corp, texts: Iterable[str]) -> list[str]:
    """The listed words (built-in and the corp's own) found in any of `texts`, each once."""
    return content_gate(corp=corp, texts=texts).words


def sensitive_check(*, corp: Corp, texts: Iterable[str], approver: bool = False) -> None:
    """Raises ValidationError naming the words to remove, in plain language (see content_gate_check)."""
    content_gate_check(corp=corp, texts=texts, approver=approver)
