import logging
import multiprocessing
import threading
import time
import traceback

import pytest
from redis import Redis

from wecom.client import WeComClient
from wecom.errors import ConfigError, TokenInvalid, TransientError, WeComError
from wecom.token import TokenCache

CORP_ID = "wwtokencorp"
SECRET = "token-test-secret-" + "x" * 20


def _cold_start(redis_url, prefix, base_url, barrier, results):
    client = WeComClient(
        corp_id=CORP_ID, secret=SECRET, redis=Redis.from_url(redis_url), base_url=base_url, key_prefix=prefix
    )
    barrier.wait()
    answer = client.get_follow_user_list()
    results.put((answer["errcode"], client.tokens.get()))
    client.close()


@pytest.mark.slow
def test_eight_processes_starting_cold_make_exactly_one_gettoken_call(fake_wecom, redis_url, key_prefix):
    fake_wecom.gettoken_delay = 0.3  # a wide window for a second fetch, were there no single flight
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(8), ctx.Queue()
    processes = [
        ctx.Process(target=_cold_start, args=(redis_url, key_prefix, fake_wecom.base_url, barrier, results))
        for _ in range(8)
    ]
    for process in processes:
        process.start()
    try:
        answers = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
    assert fake_wecom.gettoken_calls == 1
    assert answers == [(0, fake_wecom.issued[0])] * 8
    assert len(fake_wecom.requests_to("externalcontact/get_follow_user_list")) == 8


class Fetcher:
    """A gettoken stand-in: T1, T2, … each valid ``expires_in`` seconds; can be made to hang."""

    def __init__(self, expires_in=7200):
        self.calls = 0
        self.expires_in = expires_in
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()

    def __call__(self):
        self.calls += 1
        self.started.set()
        self.release.wait(timeout=10)
        return f"T{self.calls}", self.expires_in


def make_cache(redis_client, key_prefix, fetch, **options):
    return TokenCache(redis=redis_client, corp_id=CORP_ID, fetch=fetch, key_prefix=key_prefix, **options)


def test_cached_token_is_shared_per_corp_and_app(redis_client, key_prefix):
    fetch = Fetcher()
    first = make_cache(redis_client, key_prefix, fetch)
    second = make_cache(redis_client, key_prefix, fetch)  # another process, same (corp, app)
    assert first.get() == second.get() == "T1"
    assert fetch.calls == 1
    other_app = TokenCache(
        redis=redis_client, corp_id=CORP_ID, app_key="kf", fetch=fetch, key_prefix=key_prefix
    )
    assert other_app.get() == "T2"


def test_works_with_a_decoding_redis_client(redis_url, key_prefix):
    redis = Redis.from_url(redis_url, decode_responses=True)
    fetch = Fetcher()
    cache = make_cache(redis, key_prefix, fetch)
    assert cache.get() == cache.get() == "T1"
    assert cache.invalidate("T1")
    assert cache.get() == "T2"
    redis.close()


def test_refreshed_ahead_of_expiry_while_the_old_token_is_still_served(redis_client, key_prefix):
    # A 2-s token with a 300-s margin is refreshed in its second half (after 1 s).
    fetch = Fetcher(expires_in=2)
    cache = make_cache(redis_client, key_prefix, fetch, refresh_ahead=300)
    assert cache.get() == "T1"
    assert cache.get() == "T1"
    time.sleep(1.1)
    fetch.release.clear()
    fetch.started.clear()
    refresher = threading.Thread(target=cache.get)
    refresher.start()
    assert fetch.started.wait(timeout=5)
    # The refresh is under way in another caller: T1 is still valid, so it is served, not waited on.
    assert cache.get() == "T1"
    assert not fetch.release.is_set()
    fetch.release.set()
    refresher.join(timeout=5)
    assert cache.get() == "T2"
    assert fetch.calls == 2


def test_invalidate_drops_only_the_rejected_token(redis_client, key_prefix):
    fetch = Fetcher()
    process_a = make_cache(redis_client, key_prefix, fetch)
    process_b = make_cache(redis_client, key_prefix, fetch)
    assert process_a.get() == process_b.get() == "T1"
    # Both saw 40014 for T1; A gets there first and refreshes.
    assert process_a.invalidate("T1") is True
    assert process_a.get() == "T2"
    # B's invalidation is stale: it must not throw away T2 and force another gettoken.
    assert process_b.invalidate("T1") is False
    assert process_b.get() == "T2"
    assert fetch.calls == 2


def test_a_hung_lock_holder_is_taken_over_when_its_lock_expires(redis_client, key_prefix):
    fetch = Fetcher()
    fetch.release.clear()
    cache = make_cache(redis_client, key_prefix, fetch, lock_ttl=0.3, wait_timeout=5)
    hung = threading.Thread(target=cache.get, daemon=True)
    hung.start()
    assert fetch.started.wait(timeout=5)

    def second_fetch():
        fetch.calls += 1
        return "T-takeover", 7200

    takeover = make_cache(redis_client, key_prefix, second_fetch, lock_ttl=0.3, wait_timeout=5)
    assert takeover.get() == "T-takeover"
    fetch.release.set()
    hung.join(timeout=5)


def test_waiting_for_another_process_is_bounded(redis_client, key_prefix):
    fetch = Fetcher()
    fetch.release.clear()
    holder = make_cache(redis_client, key_prefix, fetch, lock_ttl=10)
    thread = threading.Thread(target=holder.get, daemon=True)
    thread.start()
    assert fetch.started.wait(timeout=5)
    waiter = make_cache(redis_client, key_prefix, Fetcher(), wait_timeout=0.2)
    with pytest.raises(TransientError) as caught:
        waiter.get()
    assert caught.value.message_key == "token_wait"
    fetch.release.set()
    thread.join(timeout=5)


def test_a_failed_gettoken_is_shared_so_waiters_dont_hammer_it(fake_wecom, make_client):
    fake_wecom.gettoken_reply = {"errcode": 40001, "errmsg": "invalid credential, hint: [h-40001]"}
    first, second = make_client(), make_client()
    with pytest.raises(ConfigError) as caught:
        first.get_follow_user_list()
    assert (caught.value.errcode, caught.value.api, caught.value.hint) == (40001, "gettoken", "h-40001")
    with pytest.raises(ConfigError):
        second.get_follow_user_list()
    assert fake_wecom.gettoken_calls == 1
    assert not fake_wecom.requests_to("externalcontact/get_follow_user_list")


def test_40014_refreshes_once_and_retries_once(fake_wecom, make_client):
    client = make_client()
    client.get_follow_user_list()
    fake_wecom.revoke_tokens()  # e.g. the secret was reset in the admin console
    assert client.get_follow_user_list()["errcode"] == 0
    calls = fake_wecom.requests_to("externalcontact/get_follow_user_list")
    assert [call.query["access_token"] for call in calls] == [
        fake_wecom.issued[0],
        fake_wecom.issued[0],
        fake_wecom.issued[1],
    ]
    assert fake_wecom.gettoken_calls == 2


@pytest.mark.parametrize("errcode", [40014, 42001])
def test_a_fresh_token_rejected_again_gives_up_with_token_invalid(fake_wecom, make_client, errcode):
    fake_wecom.route("externalcontact/get_follow_user_list", {"errcode": errcode, "errmsg": "expired"})
    client = make_client()
    with pytest.raises(TokenInvalid) as caught:
        client.get_follow_user_list()
    assert caught.value.errcode == errcode
    assert len(fake_wecom.requests_to("externalcontact/get_follow_user_list")) == 2
    assert fake_wecom.gettoken_calls == 2


def answer_late(request):
    time.sleep(1)
    return {"errcode": 0}


def test_token_and_secret_never_reach_logs_or_exceptions(fake_wecom, make_client, caplog):
    for name in (None, "httpx", "httpcore"):  # settings may quieten httpx; here it must speak
        caplog.set_level(logging.DEBUG, logger=name)
    client = make_client(timeout=0.3)
    raised: list[WeComError] = []
    client.get_follow_user_list()
    fake_wecom.revoke_tokens()
    client.get_follow_user_list()  # 40014, refresh, retry
    # Failures whose text could carry the request: an errmsg echoing the token, a timeout, a 5xx.
    fake_wecom.route(
        "externalcontact/list",
        lambda request: {"errcode": 40003, "errmsg": f"bad userid for {request.query['access_token']}"},
    )
    fake_wecom.route("externalcontact/get", answer_late)
    fake_wecom.route("externalcontact/remark", (502, b"<html>bad gateway</html>"))
    for call in (
        lambda: client.list_external_contacts("u1"),
        lambda: client.get_external_contact("wm1"),
        lambda: client.remark(userid="u1", external_userid="wm1", remark="x"),
    ):
        with pytest.raises(WeComError) as caught:
            call()
        raised.append(caught.value)
    assert len(fake_wecom.issued) == 2
    assert any("HTTP Request" in record.getMessage() for record in caplog.records)  # httpx did log
    texts = [caplog.text] + [record.getMessage() for record in caplog.records]
    texts += [str(record.__dict__) for record in caplog.records]
    texts += [f"{exc!s} {exc!r} {''.join(traceback.format_exception(exc))}" for exc in raised]
    for secret in [*fake_wecom.issued, SECRET, "s" * 24]:
        assert not any(secret in text for text in texts), secret
