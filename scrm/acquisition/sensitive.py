"""The sensitive-word gate every outgoing text passes when it is saved (DESIGN §5).

A basic built-in list for now. `sensitive_words_for(corp=)` is the one place the list comes from, so the
broadcast work can make it a per-corp setting without touching the callers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from scrm.tenancy.models import Corp

# Words WeChat's and China's advertising rules forbid in marketing messages (gambling, adult content,
# fraud, illegal finance, absolute claims the Advertising Law bans) — a starting point, not a policy.
BASIC_WORDS: tuple[str, ...] = (
    "赌博",
    "博彩",
    "六合彩",
    "赌场",
    "色情",
    "裸聊",
    "约炮",
    "代开发票",
    "刷单",
    "套现",
    "传销",
    "洗钱",
    "高利贷",
    "稳赚不赔",
    "保本保息",
    "躺赚",
    "国家级",
    "最高级",
    "全网最低",
    "第一品牌",
    "百分百有效",
    "100%有效",
    "根治",
    "casino",
    "gambling",
    "guaranteed profit",
)

# Characters people put between the letters of a word to slip it past a filter ("赌 博", "赌*博").
_FILLER = re.compile(r"[\s\W_]+", re.UNICODE)


def _normal(text: str) -> str:
    return _FILLER.sub("", unicodedata.normalize("NFKC", text).casefold())


def sensitive_words_for(*, corp: Corp | None) -> tuple[str, ...]:
    """The words refused for `corp` (the basic list for every corp, for now)."""
    return BASIC_WORDS


def sensitive_words_find(*, corp: Corp | None, texts: Iterable[str]) -> list[str]:
    """The listed words found in any of `texts`, in list order, each once."""
    haystack = "\n".join(_normal(t) for t in texts if t)
    # Words are matched in their own normal form too ("100%有效" keeps its meaning without the "%").
    return [w for w in sensitive_words_for(corp=corp) if _normal(w) and _normal(w) in haystack]


def sensitive_check(*, corp: Corp | None, texts: Iterable[str]) -> None:
    """Raises ValidationError naming the words to remove, in plain language."""
    found = sensitive_words_find(corp=corp, texts=texts)
    if found:
        raise ValidationError(
            _("This text contains words that can't be sent to customers: %(words)s. Please remove them.")
            % {"words": "、".join(found)},
            code="sensitive",
        )
