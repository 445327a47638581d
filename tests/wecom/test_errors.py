import pickle

import pytest

from wecom import errors
from wecom.errors import (
    Category,
    ConcurrencyLimited,
    ConfigError,
    PermanentError,
    RateLimited,
    TokenInvalid,
    TransientError,
    WelcomeAlreadySent,
    WelcomeBusy,
    WelcomeCodeInvalid,
    error_for,
    error_from_response,
    hint_of,
)
from wecom.messages import MESSAGES, message_for

# API.md §5, written out independently of wecom.errors: code -> (class, category).
SECTION_5 = {
    -1: (TransientError, Category.RETRY),
    40001: (ConfigError, Category.CONFIG),
    40013: (ConfigError, Category.CONFIG),
    40014: (TokenInvalid, Category.RETRY),
    42001: (TokenInvalid, Category.RETRY),
    41001: (PermanentError, Category.BUG),
    40003: (PermanentError, Category.ADMIN),
    60011: (PermanentError, Category.ADMIN),
    81013: (PermanentError, Category.ADMIN),
    40068: (PermanentError, Category.RESYNC),
    40096: (PermanentError, Category.GIVE_UP),
    40098: (PermanentError, Category.ADMIN),
    40099: (PermanentError, Category.ADMIN),
    41048: (PermanentError, Category.GIVE_UP),
    41050: (WelcomeCodeInvalid, Category.GIVE_UP),
    41051: (WelcomeAlreadySent, Category.GIVE_UP),
    41063: (TransientError, Category.RETRY),
    41096: (WelcomeBusy, Category.RETRY),
    45009: (RateLimited, Category.RETRY),
    45033: (ConcurrencyLimited, Category.RETRY),
    48002: (ConfigError, Category.CONFIG),
    84074: (ConfigError, Category.CONFIG),
    301002: (ConfigError, Category.CONFIG),
    60020: (ConfigError, Category.CONFIG),
    81017: (PermanentError, Category.ADJUST),
    84061: (PermanentError, Category.GIVE_UP),
    90500: (PermanentError, Category.GIVE_UP),
    90501: (PermanentError, Category.GIVE_UP),
}


@pytest.mark.parametrize(("errcode", "expected"), sorted(SECTION_5.items()))
def test_every_section_5_code_maps_to_its_class_and_category(errcode, expected):
    cls, category = expected
    error = error_for(errcode, "whatever", api="externalcontact/get")
    assert type(error) is cls
    assert error.category is category
    assert error.retryable is (category is Category.RETRY)
    assert isinstance(error, TransientError) is error.retryable
    assert isinstance(error, PermanentError) is not error.retryable


def test_the_table_covers_exactly_section_5():
    assert set(errors.ERRCODES) == set(SECTION_5)


def test_welcome_lane_can_tell_its_codes_apart():
    busy, expired, sent = error_for(41096), error_for(41050), error_for(41051)
    assert isinstance(busy, TransientError) and not isinstance(busy, (RateLimited, ConcurrencyLimited))
    assert not isinstance(expired, WelcomeAlreadySent)
    assert not isinstance(sent, WelcomeCodeInvalid)


def test_unknown_codes_are_permanent_so_nothing_retries_forever():
    error = error_for(99999, "new error")
    assert type(error) is PermanentError
    assert error.category is Category.GIVE_UP
    assert "99999" in error.message("en")
    assert "99999" in error.message("zh-hans")


@pytest.mark.parametrize("errcode", sorted(SECTION_5))
def test_every_code_has_distinct_chinese_and_english_messages(errcode):
    zh, en = message_for(errcode, "zh-hans"), message_for(errcode, "en")
    assert zh and en and zh != en
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in en)
    # The generic fallback names the code; a real message doesn't need to.
    assert "WeCom returned an error" not in en


def test_message_language_selection():
    assert message_for(40001, "zh-Hans") == message_for(40001, "zh") == MESSAGES[40001][0]
    assert message_for(40001, "en-US") == MESSAGES[40001][1]
    assert message_for(None, "en") == MESSAGES["network"][1]


def test_hint_comes_from_the_field_or_the_errmsg():
    errmsg = "invalid credential, hint: [1621567234_38_abc], from ip: 1.2.3.4, more info at https://x"
    assert hint_of({"errmsg": errmsg}) == "1621567234_38_abc"
    assert hint_of({"errmsg": errmsg, "hint": "field-hint"}) == "field-hint"
    assert hint_of({"errmsg": "ok"}) is None


def test_error_from_response_keeps_code_message_hint_and_api():
    payload = {"errcode": 40068, "errmsg": "invalid tagid, hint: [h-1]"}
    error = error_from_response(payload, api="externalcontact/mark_tag")
    assert (error.errcode, error.hint, error.api) == (40068, "h-1", "externalcontact/mark_tag")
    assert error.category is Category.RESYNC
    text = str(error)
    assert "40068" in text and "externalcontact/mark_tag" in text and "h-1" in text


def test_errors_survive_pickling_with_every_attribute():
    error = error_for(45009, "freq limit, hint: [h]", api="externalcontact/get", hint="h", retry_after=12.5)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, as a result backend would
    assert type(copy) is RateLimited
    assert copy.__dict__ == error.__dict__
    assert str(copy) == str(error)
