"""Limits per corp/API/minute/hour (45009 blocks the rest of the window), configured concurrency
(45033), and fault injection (-1, 5xx, slow responses, timeouts)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .conftest import Env

API = "externalcontact/get_follow_user_list"
HOUR = 1_717_200_000 - 1_717_200_000 % 3600  # an hour boundary


def _code(env: Env, path: str = API) -> int:
    return int(env.call(path, method="GET")["errcode"])


def _freeze_at(env: Env, when: float) -> None:
    env.sb.control("POST", "/sandbox/clock/set", {"now": when, "frozen": True})
    env.refresh_token()


def test_defaults_are_10000_per_minute_and_150000_per_hour(env: Env) -> None:
    limits = env.sb.control("GET", f"/sandbox/corps/{env.corp_id}")["limits"]["default"]
    assert limits["per_minute"] == 10_000 and limits["per_hour"] == 150_000


def test_45009_blocks_the_api_for_the_rest_of_the_minute(env: Env) -> None:
    _freeze_at(env, HOUR + 5)
    env.sb.limits(env.corp_id, api=API, per_minute=5)
    assert [_code(env) for _ in range(5)] == [0] * 5
    assert [_code(env) for _ in range(3)] == [45009] * 3
    assert env.call("user/list_id", {})["errcode"] == 0  # other APIs have their own budget
    env.sb.advance(50)  # still inside the same minute
    assert _code(env) == 45009
    env.sb.advance(10)  # next minute
    assert _code(env) == 0
    summary = env.sb.findings(env.corp_id)
    assert summary["summary"]["errcode_45009"] == 4 and summary["errcode_45009_by_api"] == {API: 4}
    calls = env.sb.control("GET", "/sandbox/audit/calls_per_minute", corp=env.corp_id, api=API)["calls"][API]
    assert calls == {str(HOUR): 9, str(HOUR + 60): 1}


def test_45009_per_hour(env: Env) -> None:
    _freeze_at(env, HOUR + 5)
    env.sb.limits(env.corp_id, api=API, per_hour=8)
    for _ in range(4):
        assert [_code(env), _code(env)] == [0, 0]
        env.sb.advance(60)
    assert _code(env) == 45009
    env.sb.advance(30 * 60)
    assert _code(env) == 45009  # blocked until the hour ends
    env.sb.advance(30 * 60)
    env.refresh_token()
    assert _code(env) == 0


def test_45033_when_concurrency_is_exceeded(env: Env) -> None:
    env.sb.limits(env.corp_id, api=API, concurrency=2, latency_ms=400)
    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(lambda _: _code(env), range(6)))
    assert codes.count(0) == 2 and codes.count(45033) == 4
    assert _code(env) == 0  # nothing in flight any more
    assert env.sb.findings(env.corp_id)["summary"]["errcode_45033"] == 4


def test_fault_system_busy(env: Env) -> None:
    env.sb.faults(env.corp_id, rate=1.0, kinds=["busy"], apis=[API])
    assert _code(env) == -1
    assert env.call("user/list_id", {})["errcode"] == 0  # only the chosen API
    env.sb.faults(env.corp_id, rate=0.0)
    assert _code(env) == 0


def test_fault_http_5xx(env: Env) -> None:
    env.sb.faults(env.corp_id, rate=1.0, kinds={"http5xx": 1})
    resp = httpx.get(f"{env.sb.api_base}{API}", params={"access_token": env.token})
    assert resp.status_code in (500, 502, 503)


def test_fault_slow_and_timeout(env: Env) -> None:
    env.sb.faults(env.corp_id, rate=1.0, kinds=["slow"], slow_ms=300)
    t0 = time.perf_counter()
    assert _code(env) == 0
    assert time.perf_counter() - t0 >= 0.3
    env.sb.faults(env.corp_id, rate=1.0, kinds=["timeout"], timeout_s=1.0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{env.sb.api_base}{API}", params={"access_token": env.token}, timeout=0.2)


def test_fault_rate_is_a_rate(env: Env) -> None:
    env.sb.faults(env.corp_id, rate=0.3, kinds=["busy"])
    codes = [_code(env) for _ in range(300)]
    assert 45 <= codes.count(-1) <= 135
    assert set(codes) == {0, -1}
