"""Normalisation and matching for the sensitive-word gate; no database, no Django models.

Text and words are compared in a *normal form*: each character NFKC-normalised (full-width Latin and
digits become ASCII, compatibility forms fold) and case-folded, and every character that is not a letter
or digit dropped — the spaces, punctuation, symbols and emoji people put inside a word to slip it past a
filter ("赌 博", "赌*博", "赌🎲博"). Each normal character remembers where it came from, so a match
can be highlighted in the original text.

Corp patterns use one wildcard, `*`: up to `GAP` letters or digits of anything (fillers don't count).
That is all an admin needs ("加*微信" catches 加我微信, 加个人微信), and no regex is ever built from
what an admin typed: `_pattern_spans` matches in one pass per part, linear in the text whatever the
pattern, so no pattern can hang a worker.
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

GAP = 8
MAX_WILDCARDS = 3
MAX_LENGTH = 50
WILDCARD = "*"


def _is_kept(ch: str) -> bool:
    # Letters and digits of any script; "_" and every other \W character is a filler.
    return ch.isalnum()


def normal(text: str) -> str:
    """The normal form of `text` (see the module docstring)."""
    return "".join(ch for c in text for ch in unicodedata.normalize("NFKC", c).casefold() if _is_kept(ch))


def normal_with_map(text: str) -> tuple[str, list[int]]:
    """The normal form and, for each of its characters, the index of the original character."""
    chars: list[str] = []
    origin: list[int] = []
    for i, c in enumerate(text):
        if c.isascii():  # the common case, without the Unicode tables
            if c.isalnum():
                chars.append(c.lower())
                origin.append(i)
            continue
        for ch in unicodedata.normalize("NFKC", c).casefold():
            if _is_kept(ch):
                chars.append(ch)
                origin.append(i)
    return "".join(chars), origin


@dataclass(frozen=True)
class Entry:
    """One listed word or pattern: `word` as written, `key` its normal form."""

    word: str
    source: str  # "default" | "corp"
    is_pattern: bool
    key: str  # the normal form of a word; the normal literal parts joined by "*" for a pattern


def entry_parse(raw: str) -> tuple[str, bool, str]:
    """Validates an admin's word or pattern: (cleaned text, is_pattern, normal key).

    Raises ValidationError with a plain-language message when it could never match sensibly."""
    word = raw.strip()
    if not word:
        raise ValidationError(_("Enter a word or a pattern."), code="empty")
    if len(word) > MAX_LENGTH:
        raise ValidationError(
            _("Keep it to %(max)s characters or fewer.") % {"max": MAX_LENGTH}, code="too_long"
        )
    if WILDCARD not in word:
        key = normal(word)
        if not key:
            raise ValidationError(
                _("A word needs at least one letter or digit: spaces and punctuation are ignored."),
                code="no_letters",
            )
        return word, False, key
    parts = [normal(p) for p in word.split(WILDCARD)]
    if not parts[0] or not parts[-1]:
        raise ValidationError(
            _("A pattern must begin and end with a word, e.g. 加*微信: * stands for what comes between."),
            code="edge_wildcard",
        )
    if any(not p for p in parts):
        raise ValidationError(
            _("Put some letters between two *; one * already stands for up to %(gap)s characters.")
            % {"gap": GAP},
            code="empty_part",
        )
    if len(parts) - 1 > MAX_WILDCARDS:
        raise ValidationError(
            _("A pattern can have at most %(n)s *.") % {"n": MAX_WILDCARDS}, code="too_many_wildcards"
        )
    return word, True, WILDCARD.join(parts)


def _find_all(text: str, part: str) -> list[int]:
    """Start of every occurrence of `part`, overlapping ones too."""
    found: list[int] = []
    at = text.find(part)
    while at != -1:
        found.append(at)
        at = text.find(part, at + 1)
    return found


def _pattern_spans(parts: list[str], text: str) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) of `parts[0]`, ≤ GAP chars, `parts[1]`, ≤ GAP chars, … in `text`.

    Chains grow one part at a time: an occurrence of the next part at `s` extends the chain ending in
    [s - GAP, s] that started latest (the shortest match), found with a sliding-window maximum. Every
    occurrence and chain enters and leaves the window once: linear in the text for any pattern."""
    chains = [(s, s + len(parts[0])) for s in _find_all(text, parts[0])]  # sorted by end
    for part in parts[1:]:
        if not chains:
            return []
        grown: list[tuple[int, int]] = []
        window: deque[tuple[int, int]] = deque()  # chains with end in range, by decreasing start
        i = 0
        for s in _find_all(text, part):
            while i < len(chains) and chains[i][1] <= s:
                while window and window[-1][0] <= chains[i][0]:
                    window.pop()
                window.append(chains[i])
                i += 1
            while window and window[0][1] < s - GAP:
                window.popleft()
            if window:
                grown.append((window[0][0], s + len(part)))
        chains = grown
    spans: list[tuple[int, int]] = []
    for start, end in chains:
        if not spans or start >= spans[-1][1]:
            spans.append((start, end))
    return spans


@dataclass(frozen=True)
class Hit:
    entry: Entry
    start: int  # in normal text
    end: int


class Matcher:
    """Finds every listed word and pattern in a text. Built once per corp list version and reused."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        words: dict[str, Entry] = {}
        for e in entries:
            if not e.is_pattern:
                words.setdefault(e.key, e)  # a default word wins over the same corp word
        self._words = words
        # One pass for all literal words: a lookahead at every position finds overlapping matches too,
        # longest first ("诚心招代理" before its part "招代理").
        alternatives = "|".join(re.escape(k) for k in sorted(words, key=len, reverse=True))
        self._literal = re.compile(f"(?=({alternatives}))", re.DOTALL) if words else None
        self._patterns = [(e, e.key.split(WILDCARD)) for e in entries if e.is_pattern]

    def hits(self, norm: str) -> list[Hit]:
        found: list[Hit] = []
        if self._literal is not None:
            for m in self._literal.finditer(norm):
                key = m.group(1)
                found.append(Hit(self._words[key], m.start(), m.start() + len(key)))
        for entry, parts in self._patterns:
            # Cheap check first: most texts lack one of the parts.
            if all(p in norm for p in parts):
                found.extend(Hit(entry, start, end) for start, end in _pattern_spans(parts, norm))
        # A hit inside a longer hit is the same finding ("招代理" inside "诚心招代理").
        found.sort(key=lambda h: (h.start, -(h.end - h.start)))
        # Sorted by start, so a hit lies inside an earlier one exactly when it ends before the furthest end.
        kept: list[Hit] = []
        furthest = -1
        for h in found:
            if h.end <= furthest:
                continue
            kept.append(h)
            furthest = h.end
        return kept
