"""The sensitive-word gate: built-in words, a corp's words and patterns, normalisation, the corp's policy,
highlighting, and that one corp's list never touches another's."""

from __future__ import annotations

import itertools
import re

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from scrm.compliance import services
from scrm.compliance.defaults import CATEGORIES
from scrm.compliance.matching import (
    GAP,
    MAX_WILDCARDS,
    _pattern_spans,
    entry_parse,
    normal,
    normal_with_map,
)
from scrm.compliance.models import CorpWord, GatePolicy
from tests.conftest import World

pytestmark = pytest.mark.django_db


def test_every_category_has_words_and_the_banned_marketing_phrases_are_there() -> None:
    keys = {c.key for c in CATEGORIES}
    assert keys == {"marketing", "gambling", "fraud", "finance", "adult", "absolute"}
    assert all(c.words and c.label and c.why for c in CATEGORIES)
    marketing = next(c for c in CATEGORIES if c.key == "marketing").words
    assert "诚心招代理" in marketing and "一键代发" in marketing
    every = [w for c in CATEGORIES for w in c.words]
    assert len(every) == len({normal(w) for w in every}), "a built-in word is listed twice"


def test_default_words_block_by_default(world: World) -> None:
    result = services.content_gate(corp=world.corp_a, texts=["你好", "诚心招代理，一键代发，日赚500"])
    assert result.action == "block"
    assert result.words == ["诚心招代理", "一键代发", "日赚"]  # not also 招代理, which lies inside
    assert {m.source for m in result.matches} == {"default"}
    clean = services.content_gate(corp=world.corp_a, texts=["欢迎加入，我们周末有新品", ""])
    assert clean.action == "ok" and clean.matches == () and clean.words == []


@pytest.mark.parametrize(
    "text",
    [
        "赌 博",
        "赌*博",
        "赌-_-博",
        "赌🎲博",
        "赌\n博",
        "ＣＡＳＩＮＯ",
        "CaSiNo",
        "c a s i n o",
        "１００％有效",
    ],
)
def test_fillers_width_and_case_do_not_hide_a_word(world: World, text: str) -> None:
    result = services.content_gate(corp=world.corp_a, texts=[f"来玩{text}吧"])
    assert result.action == "block", text
    assert result.matches[0].found == text
    assert result.matches[0].found[0] not in "来玩" and result.matches[0].found[-1] != "吧"


def test_found_is_the_original_text_with_its_fillers() -> None:
    norm, origin = normal_with_map("A 赌*博!")
    assert norm == "a赌博" and origin == [0, 2, 4]


def test_a_match_never_spans_two_texts(world: World) -> None:
    assert services.content_gate(corp=world.corp_a, texts=["今天去赌", "博物馆"]).action == "ok"


def test_corp_words_and_patterns(world: World) -> None:
    corp = world.corp_a
    assert services.content_gate(corp=corp, texts=["加我微信领红包"]).action == "ok"
    services.corp_word_add(corp=corp, word="领红包", user=world.alice)
    pattern = services.corp_word_add(corp=corp, word="加*微信", user=world.alice)
    assert pattern.is_pattern and pattern.added_by == world.alice and pattern.added_at is not None
    result = services.content_gate(corp=corp, texts=["加我的 私人 微信，领红包"])
    assert [(m.word, m.source, m.found) for m in result.matches] == [
        ("加*微信", "corp", "加我的 私人 微信"),
        ("领红包", "corp", "领红包"),
    ]
    # A wildcard covers at most GAP letters; fillers don't count.
    assert services.content_gate(corp=corp, texts=["加" + "一" * GAP + "微信"]).words == ["加*微信"]
    assert services.content_gate(corp=corp, texts=["加" + "一" * (GAP + 1) + "微信"]).action == "ok"
    assert services.content_gate(corp=corp, texts=["加 . . . 微信"]).words == ["加*微信"]


def test_deleting_a_word_takes_effect_at_once(world: World) -> None:
    row = services.corp_word_add(corp=world.corp_a, word="秒杀", user=world.alice)
    assert services.content_gate(corp=world.corp_a, texts=["限时秒杀"]).words == ["秒杀"]
    services.corp_word_delete(corp=world.corp_a, word_pk=row.pk)
    assert services.content_gate(corp=world.corp_a, texts=["限时秒杀"]).action == "ok"
    with pytest.raises(CorpWord.DoesNotExist):
        services.corp_word_delete(corp=world.corp_a, word_pk=row.pk)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("!!! ...", "no_letters"),
        ("x" * 51, "too_long"),
        ("*微信", "edge_wildcard"),
        ("加*", "edge_wildcard"),
        ("加**微信", "empty_part"),
        ("加* *微信", "empty_part"),
        ("a*b*c*d*e", "too_many_wildcards"),
    ],
)
def test_invalid_entries_are_refused_in_plain_language(world: World, raw: str, code: str) -> None:
    with pytest.raises(ValidationError) as info:
        services.corp_word_add(corp=world.corp_a, word=raw, user=world.alice)
    assert info.value.code == code
    assert info.value.messages[0].endswith(".")
    assert not CorpWord.objects.filter(corp=world.corp_a).exists()


def test_duplicates_and_built_in_words_are_refused(world: World) -> None:
    services.corp_word_add(corp=world.corp_a, word="秒杀", user=world.alice)
    with pytest.raises(ValidationError) as dup:
        services.corp_word_add(corp=world.corp_a, word=" 秒 杀 ", user=world.alice)
    assert dup.value.code == "duplicate"
    with pytest.raises(ValidationError) as builtin:
        services.corp_word_add(corp=world.corp_a, word="赌 博", user=world.alice)
    assert builtin.value.code == "default"
    # The same word in another corp is that corp's business.
    services.corp_word_add(corp=world.corp_b, word="秒杀", user=world.charlie)


def test_regex_characters_are_not_regex(world: World) -> None:
    """Only * is special; everything else that isn't a letter or digit is ignored like any filler."""
    assert entry_parse("a.b(c)+") == ("a.b(c)+", False, "abc")
    assert entry_parse("(a.)+*[x]") == ("(a.)+*[x]", True, "a*x")
    with pytest.raises(ValidationError):
        entry_parse("(.)+*x")
    services.corp_word_add(corp=world.corp_a, word="(a.)+*[x]", user=world.alice)
    assert services.content_gate(corp=world.corp_a, texts=["aaaa"]).action == "ok"
    assert services.content_gate(corp=world.corp_a, texts=["a-yz-x"]).words == ["(a.)+*[x]"]


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(st.text("ab", min_size=1, max_size=2), min_size=2, max_size=MAX_WILDCARDS + 1),
    text=st.text("abc", max_size=60),
)
def test_pattern_matching_agrees_with_a_reference_regex(parts: list[str], text: str) -> None:
    """The linear matcher finds a match exactly when the plain regex would, and each span it reports
    is a real match (part, at most GAP characters, part, ...)."""
    gaps = f".{{0,{GAP}}}"
    reference = re.compile(gaps.join(re.escape(p) for p in parts))
    spans = _pattern_spans(parts, text)
    assert bool(spans) == (reference.search(text) is not None)
    for start, end in spans:
        assert reference.fullmatch(text[start:end]), (parts, text, start, end)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_a_pathological_pattern_is_refused_or_bounded(world: World) -> None:
    """Past MAX_WILDCARDS a pattern is refused; the allowed worst case (single letters that match almost
    everywhere, so every gap has many choices) is matched in one linear pass and completes."""
    with pytest.raises(ValidationError):
        services.corp_word_add(corp=world.corp_a, word="a*" * (MAX_WILDCARDS + 1) + "b", user=world.alice)
    services.corp_word_add(corp=world.corp_a, word="a*" * MAX_WILDCARDS + "b", user=world.alice)
    text = "a" * 20_000  # no "b": the pattern fails at every position after trying every gap
    assert services.content_gate(corp=world.corp_a, texts=[text]).action == "ok"
    assert services.content_gate(corp=world.corp_a, texts=[text + "b"]).words == ["a*" * MAX_WILDCARDS + "b"]


def test_block_policy_refuses_admins_and_operators_alike(world: World) -> None:
    with pytest.raises(ValidationError) as info:
        services.content_gate_check(corp=world.corp_a, texts=["诚心招代理"], approver=True)
    assert info.value.code == "sensitive" and "诚心招代理" in info.value.messages[0]
    ok = services.content_gate_check(corp=world.corp_a, texts=["你好"], approver=False)
    assert ok.action == "ok"


def test_approval_policy_lets_an_admin_through_but_not_an_operator(world: World) -> None:
    services.gate_policy_set(corp=world.corp_a, action="approval", user=world.alice)
    assert GatePolicy.objects.get(corp=world.corp_a).updated_by == world.alice
    with pytest.raises(ValidationError) as info:
        services.content_gate_check(corp=world.corp_a, texts=["躺赚"], approver=False)
    assert info.value.code == "sensitive" and "躺赚" in info.value.messages[0]
    assert "admin" in info.value.messages[0]
    approved = services.content_gate_check(corp=world.corp_a, texts=["躺赚"], approver=True)
    assert approved.action == "approval" and approved.words == ["躺赚"]
    # Corp B still blocks.
    assert services.content_gate(corp=world.corp_b, texts=["躺赚"]).action == "block"
    services.gate_policy_set(corp=world.corp_a, action="block", user=world.alice)
    with pytest.raises(ValidationError):
        services.content_gate_check(corp=world.corp_a, texts=["躺赚"], approver=True)
    with pytest.raises(ValidationError):
        services.gate_policy_set(corp=world.corp_a, action="ignore", user=world.alice)


def test_highlight_escapes_html_and_marks_each_match(world: World) -> None:
    services.corp_word_add(corp=world.corp_a, word="<b>秒杀</b>", user=world.alice)
    html = services.content_highlight(
        corp=world.corp_a, text='<script>alert("x")</script> 赌 博 & <b>秒杀</b>!'
    )
    assert "<script>" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert '<mark class="sensitive" title="Sensitive: 赌博">赌 博</mark>' in html
    # The corp word matched through its tags' letters; the mark's content is escaped too.
    assert '<mark class="sensitive" title="Sensitive: &lt;b&gt;秒杀&lt;/b&gt;">' in html
    assert "&amp;" in html and html.endswith("!")
    assert services.content_highlight(corp=world.corp_a, text="你好 <i>") == "你好 &lt;i&gt;"
    assert services.content_highlight(corp=world.corp_a, text="") == ""


def test_overlapping_matches_share_one_mark(world: World) -> None:
    html = services.content_highlight(corp=world.corp_a, text="赌博彩")
    assert html == '<mark class="sensitive" title="Sensitive: 赌博、博彩">赌博彩</mark>'


def test_one_corps_words_never_touch_another(world: World) -> None:
    services.corp_word_add(corp=world.corp_b, word="秒杀", user=world.charlie)
    services.corp_word_add(corp=world.corp_b, word="限*优惠", user=world.charlie)
    services.gate_policy_set(corp=world.corp_b, action="approval", user=world.charlie)
    text = "限时秒杀优惠"
    assert services.content_gate(corp=world.corp_a, texts=[text]).action == "ok"
    assert services.content_highlight(corp=world.corp_a, text=text) == text
    assert services.content_gate(corp=world.corp_b, texts=[text]).action == "approval"
    with pytest.raises(CorpWord.DoesNotExist):
        services.corp_word_delete(corp=world.corp_a, word_pk=CorpWord.objects.get(word="秒杀").pk)
    assert CorpWord.objects.filter(corp=world.corp_b).count() == 2


def test_the_gate_works_without_redis_from_the_database(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis down: every check reads the list from the database instead of trusting a stale copy."""
    import redis

    services.corp_word_add(corp=world.corp_a, word="秒杀", user=world.alice)
    assert services.content_gate(corp=world.corp_a, texts=["秒杀"]).words == ["秒杀"]
    broken = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr(services, "get_redis", lambda: broken)
    CorpWord.objects.filter(corp=world.corp_a).delete()  # behind the gate's back
    assert services.content_gate(corp=world.corp_a, texts=["秒杀"]).action == "ok"
