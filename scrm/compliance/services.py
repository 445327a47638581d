"""The sensitive-word gate every outgoing text passes (DESIGN §5), and the writes of a corp's list.

Callers (welcome scripts, broadcasts, group welcome templates) use three functions:
- `content_gate` tells what matched and what the corp's policy says to do;
- `content_gate_check` refuses, with a plain-language ValidationError, content saved to be sent later;
- `content_highlight` shows a text with each match marked, for previews.

Each process keeps a compiled matcher per corp, tagged with the corp's *gate version*, a Redis counter
bumped (now, and again on commit) whenever the corp's words or policy change: one GET per check tells
whether the matcher is stale, so a long preview costs one pass of a precompiled regex.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from scrm.compliance.defaults import default_words
from scrm.compliance.matching import Entry, Hit, Matcher, entry_parse, normal, normal_with_map
from scrm.compliance.models import CorpWord, GatePolicy
from scrm.core.redis import get_redis
from scrm.tenancy.models import Corp

logger = logging.getLogger(__name__)

LOCAL_TTL = 300.0  # a safety net: a lost version bump is forgotten after this long
LOCAL_MAX = 1024


@dataclass(frozen=True)
class GateMatch:
    word: str  # the listed word or pattern as the admin wrote it
    source: str  # "default" | "corp"
    found: str  # the text actually matched


@dataclass(frozen=True)
class GateResult:
    matches: tuple[GateMatch, ...]
    action: str  # "ok" (no match) | "block" | "approval"  -- from the corp's gate policy

    @property
    def words(self) -> list[str]:
        """Distinct matched words, in order."""
        return list(dict.fromkeys(m.word for m in self.matches))


# -- the per-corp matcher -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Gate:
    matcher: Matcher
    action: str


_DEFAULT_ENTRIES: list[Entry] = [
    Entry(word=w, source="default", is_pattern=False, key=normal(w)) for w, _cat in default_words()
]
_local: OrderedDict[int, tuple[int, float, _Gate]] = OrderedDict()
_lock = threading.Lock()


def _version_key(corp_pk: int) -> str:
    return f"gate:v:{corp_pk}"


def _version(corp_pk: int) -> int | None:
    try:
        return int(get_redis().get(_version_key(corp_pk)) or 0)
    except redis.RedisError:
        logger.warning("gate: redis unavailable, reading corp %s's list from the database", corp_pk)
        return None


def _gate_invalidate(*, corp_pk: int) -> None:
    """Bump the version now and again once the transaction commits: a process that loaded the old rows
    in between must not keep them under the new version."""
    client = get_redis()
    client.incr(_version_key(corp_pk))
    transaction.on_commit(lambda: client.incr(_version_key(corp_pk)))


def _gate_load(corp_pk: int) -> _Gate:
    entries = list(_DEFAULT_ENTRIES)
    for word, key, is_pattern in (
        CorpWord.objects.filter(corp_id=corp_pk).values_list("word", "key", "is_pattern").order_by("pk")
    ):
        entries.append(Entry(word=word, source="corp", is_pattern=is_pattern, key=key))
    action = (
        GatePolicy.objects.filter(corp_id=corp_pk).values_list("action", flat=True).first()
        or GatePolicy.Action.BLOCK
    )
    return _Gate(Matcher(entries), str(action))


def _gate(corp_pk: int) -> _Gate:
    version = _version(corp_pk)  # read before the rows, see _gate_invalidate
    if version is None:
        return _gate_load(corp_pk)
    now = time.monotonic()
    with _lock:
        hit = _local.get(corp_pk)
        if hit is not None and hit[0] == version and hit[1] > now:
            _local.move_to_end(corp_pk)
            return hit[2]
    gate = _gate_load(corp_pk)
    with _lock:
        _local[corp_pk] = (version, now + LOCAL_TTL, gate)
        _local.move_to_end(corp_pk)
        while len(_local) > LOCAL_MAX:
            _local.popitem(last=False)
    return gate


# -- the gate -------------------------------------------------------------------------------------------


def _text_hits(gate: _Gate, text: str) -> tuple[list[Hit], list[int]]:
    norm, origin = normal_with_map(text)
    return gate.matcher.hits(norm), origin


def content_gate(*, corp: Corp, texts: Iterable[str]) -> GateResult:
    """Every listed word and pattern found in `texts` (each text on its own: no match across two), and
    the corp's action for them."""
    gate = _gate(corp.pk)
    matches: list[GateMatch] = []
    for text in texts:
        if not text:
            continue
        hits, origin = _text_hits(gate, text)
        for h in hits:
            found = text[origin[h.start] : origin[h.end - 1] + 1]
            matches.append(GateMatch(word=h.entry.word, source=h.entry.source, found=found))
    return GateResult(matches=tuple(matches), action=gate.action if matches else "ok")


def content_gate_check(*, corp: Corp, texts: Iterable[str], approver: bool) -> GateResult:
    """For content that is saved and then sent automatically (welcome scripts, group welcome templates):
    raises ValidationError(code="sensitive", naming the words) when the policy blocks, or when it requires
    approval and `approver` is False (an admin saving it is the approval). Returns the GateResult
    otherwise."""
    result = content_gate(corp=corp, texts=texts)
    words = "、".join(result.words)
    if result.action == GatePolicy.Action.BLOCK:
        raise ValidationError(
            _("This text contains words that can't be sent to customers: %(words)s. Please remove them.")
            % {"words": words},
            code="sensitive",
        )
    if result.action == GatePolicy.Action.APPROVAL and not approver:
        raise ValidationError(
            _(
                "This text contains sensitive words: %(words)s. Only an admin can approve sending it: "
                "ask an admin to save it, or remove them."
            )
            % {"words": words},
            code="sensitive",
        )
    return result


def content_highlight(*, corp: Corp, text: str) -> SafeString:
    """The text HTML-escaped with each match wrapped in <mark class="sensitive" title="...">…</mark>."""
    if not text:
        return mark_safe("")
    hits, origin = _text_hits(_gate(corp.pk), text)
    # Hits in original positions, overlapping ones merged into one mark naming every word.
    spans: list[tuple[int, int, list[str]]] = []
    for h in hits:
        start, end = origin[h.start], origin[h.end - 1] + 1
        if spans and start < spans[-1][1]:
            last = spans[-1]
            words = last[2] if h.entry.word in last[2] else [*last[2], h.entry.word]
            spans[-1] = (last[0], max(last[1], end), words)
        else:
            spans.append((start, end, [h.entry.word]))
    out: list[str] = []
    at = 0
    for start, end, words in spans:
        out.append(escape(text[at:start]))
        title = _("Sensitive: %(words)s") % {"words": "、".join(words)}
        out.append(f'<mark class="sensitive" title="{escape(title)}">{escape(text[start:end])}</mark>')
        at = end
    out.append(escape(text[at:]))
    return mark_safe("".join(out))  # noqa: S308 - every piece of text above is escaped


# -- the corp's list and policy -------------------------------------------------------------------------


def corp_word_add(*, corp: Corp, word: str, user: User | None = None) -> CorpWord:
    """Adds a word or `*` pattern to the corp's list; refuses, in plain language, one that is invalid,
    already listed, or already a built-in word."""
    cleaned, is_pattern, key = entry_parse(word)
    if not is_pattern and any(e.key == key for e in _DEFAULT_ENTRIES):
        raise ValidationError(
            _("“%(word)s” is already on the built-in list.") % {"word": cleaned}, code="default"
        )
    if CorpWord.objects.filter(corp=corp, key=key).exists():
        raise ValidationError(_("“%(word)s” is already on your list.") % {"word": cleaned}, code="duplicate")
    try:
        with transaction.atomic():
            row = CorpWord.objects.create(
                corp=corp, word=cleaned, key=key, is_pattern=is_pattern, added_by=user
            )
    except IntegrityError as exc:  # added at the same moment by someone else
        raise ValidationError(
            _("“%(word)s” is already on your list.") % {"word": cleaned}, code="duplicate"
        ) from exc
    _gate_invalidate(corp_pk=corp.pk)
    return row


def corp_word_delete(*, corp: Corp, word_pk: int) -> None:
    deleted, _rows = CorpWord.objects.filter(corp=corp, pk=word_pk).delete()
    if not deleted:
        raise CorpWord.DoesNotExist
    _gate_invalidate(corp_pk=corp.pk)


def gate_policy_set(*, corp: Corp, action: str, user: User | None = None) -> GatePolicy:
    if action not in GatePolicy.Action.values:
        raise ValidationError(_("Choose what happens when a text contains a sensitive word."), code="action")
    policy, _created = GatePolicy.objects.update_or_create(
        corp=corp, defaults={"action": action, "updated_by": user}
    )
    _gate_invalidate(corp_pk=corp.pk)
    return policy
