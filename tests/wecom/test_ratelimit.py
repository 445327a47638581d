import multiprocessing
import time
from collections import Counter

import pytest
from redis import Redis

from wecom.errors import ConcurrencyLimited, RateLimited
from wecom.ratelimit import Denied, Grant, RateLimitConfig, RateLimiter

CORP, API = "wwcorp", "externalcontact/get"
LONG = 3600.0  # a window no single-process test lasts long enough to cross in practice


def make(redis_client, key_prefix, **config) -> RateLimiter:
    return RateLimiter(redis_client, RateLimitConfig(**config), key_prefix=key_prefix)


def drain(limiter, lane, corp=CORP, api=API) -> tuple[list[Grant], Denied]:
    """Take tokens until refused; returns the grants and the refusal."""
    grants: list[Grant] = []
    while True:
        result = limiter.try_acquire(corp, api, lane)
        if isinstance(result, Denied):
            return grants, result
        grants.append(result)
        limiter.release(result)


def redis_ms(redis: Redis) -> int:
    seconds, micros = redis.time()
    return seconds * 1000 + micros // 1000


# ---------------------------------------------------------------- budgets and lanes


def test_lanes_stop_at_their_ceilings_and_realtime_keeps_its_reserve(redis_client, key_prefix):
    # budget 100; realtime reserves 10, events 10: bulk may spend 80, events 90, realtime 100.
    limiter = make(
        redis_client, key_prefix, per_minute=100, margin=1.0, minute_seconds=LONG, hour_seconds=LONG
    )
    bulk, refusal = drain(limiter, "bulk")
    assert (len(bulk), refusal.reason) == (80, "budget")
    assert 0 < refusal.retry_after <= LONG
    events, _ = drain(limiter, "events")
    assert len(events) == 10
    realtime, refusal = drain(limiter, "realtime")
    assert (len(realtime), refusal.reason) == (10, "budget")
    assert limiter.usage(CORP, API).minute_used == 100


def test_margin_scales_the_budget_and_budgets_are_per_corp_and_api(redis_client, key_prefix):
    limiter = make(
        redis_client,
        key_prefix,
        per_minute=50,
        margin=0.9,
        minute_seconds=LONG,
        hour_seconds=LONG,
        reserved={},
    )
    assert len(drain(limiter, "bulk")[0]) == 45
    assert len(drain(limiter, "bulk", api="externalcontact/list")[0]) == 45
    assert len(drain(limiter, "bulk", corp="othercorp")[0]) == 45


def test_hour_budget_binds_across_minute_windows(redis_client, key_prefix):
    # "minute" 0.1 s / 10 calls, "hour" 0.5 s / 25 calls: five minute windows would allow 50.
    limiter = make(
        redis_client,
        key_prefix,
        per_minute=10,
        per_hour=25,
        margin=1.0,
        minute_seconds=0.1,
        hour_seconds=0.5,
        reserved={},
    )
    start = redis_ms(redis_client)
    stamps = []
    while True:
        grant = limiter.acquire(CORP, API, "bulk", timeout=2.0)
        limiter.release(grant)
        if grant.at_ms >= start + 1200:
            break
        stamps.append(grant.at_ms)
    per_minute = Counter(at // 100 for at in stamps)
    per_hour = Counter(at // 500 for at in stamps)
    assert max(per_minute.values()) <= 10
    assert max(per_hour.values()) <= 25
    full_hours = [w for w in per_hour if w * 500 >= start and (w + 1) * 500 <= start + 1200]
    assert full_hours
    assert all(per_hour[w] == 25 for w in full_hours)


def test_acquire_waits_for_the_next_window_or_raises_when_the_wait_is_too_long(redis_client, key_prefix):
    limiter = make(redis_client, key_prefix, per_minute=5, margin=1.0, minute_seconds=1.0, hour_seconds=LONG)
    grants, _ = drain(limiter, "realtime")
    with pytest.raises(RateLimited) as caught:
        limiter.acquire(CORP, API, "realtime", timeout=0)
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 1.0
    assert caught.value.message_key == "rate_limited_local"
    grant = limiter.acquire(CORP, API, "realtime", timeout=2.0)
    assert grant.minute_window > grants[-1].minute_window
    assert grant.at_ms // 1000 == grant.minute_window  # windows are aligned on Redis time


# ---------------------------------------------------------------- 45009 breaker


def test_breaker_blocks_every_lane_of_that_corp_and_api_until_the_window_ends(redis_client, key_prefix):
    limiter = make(redis_client, key_prefix, minute_seconds=0.5, hour_seconds=30.0)
    other = make(redis_client, key_prefix, minute_seconds=0.5, hour_seconds=30.0)  # "another process"
    blocked = limiter.open_breaker(CORP, API)
    assert blocked == pytest.approx(0.5, abs=0.01)
    for lane in ("realtime", "events", "bulk"):
        refusal = other.try_acquire(CORP, API, lane)
        assert isinstance(refusal, Denied) and refusal.reason == "breaker"
        assert 0 < refusal.retry_after <= 0.5
    with pytest.raises(RateLimited) as caught:
        other.acquire(CORP, API, timeout=0.01)
    assert caught.value.message_key == 45009
    # Other APIs and other corps are unaffected.
    assert isinstance(other.try_acquire(CORP, "externalcontact/list"), Grant)
    assert isinstance(other.try_acquire("othercorp", API), Grant)
    # 45009s of calls already in flight don't extend or escalate the open breaker.
    assert limiter.open_breaker(CORP, API) <= 0.5
    assert limiter.usage(CORP, API).breaker_seconds > 0
    # It closes by itself.
    assert isinstance(other.acquire(CORP, API, timeout=1.0), Grant)
    # A second strike within the hour means the hourly budget: block until the hour window ends.
    now = redis_ms(redis_client)
    blocked = limiter.open_breaker(CORP, API)
    until_hour_end = ((now // 30_000) + 1) * 30_000 - now
    assert blocked == pytest.approx(max(0.5, until_hour_end / 1000), abs=0.05)


# ---------------------------------------------------------------- 45033 concurrency


def test_45033_halves_concurrency_once_per_burst_and_leases_gate_new_calls(redis_client, key_prefix):
    limiter = make(redis_client, key_prefix, concurrency_cooldown_seconds=0.2, concurrency_recover_seconds=60)
    in_flight = [limiter.acquire(CORP, API) for _ in range(8)]
    assert limiter.usage(CORP, API).concurrency_limit is None
    assert limiter.lower_concurrency(CORP, API) == 4
    # The rest of the same burst of 45033s doesn't cut again.
    assert limiter.lower_concurrency(CORP, API) == 4
    refusal = limiter.try_acquire(CORP, API)
    assert isinstance(refusal, Denied) and refusal.reason == "concurrency"
    with pytest.raises(ConcurrencyLimited):
        limiter.acquire(CORP, API, timeout=0)
    for grant in in_flight[:5]:
        limiter.release(grant)
    assert isinstance(limiter.try_acquire(CORP, API), Grant)  # 3 in flight -> 4
    assert isinstance(limiter.try_acquire(CORP, API), Denied)
    usage = limiter.usage(CORP, API)
    assert (usage.concurrency_limit, usage.in_flight) == (4, 4)
    time.sleep(0.25)
    assert limiter.lower_concurrency(CORP, API) == 2  # a later 45033 cuts again


def test_concurrency_recovers_slowly_then_the_cap_is_lifted(redis_client, key_prefix):
    limiter = make(redis_client, key_prefix, concurrency_recover_seconds=0.1, concurrency_ceiling=6)
    grants = [limiter.acquire(CORP, API) for _ in range(2)]
    assert limiter.lower_concurrency(CORP, API) == 1
    assert limiter.usage(CORP, API).concurrency_limit == 1
    time.sleep(0.25)
    assert limiter.usage(CORP, API).concurrency_limit in (3, 4, 5)
    time.sleep(0.5)
    assert limiter.usage(CORP, API).concurrency_limit is None
    for grant in grants:
        limiter.release(grant)


def test_a_dead_callers_lease_expires(redis_client, key_prefix):
    limiter = make(redis_client, key_prefix, lease_seconds=0.3, concurrency_recover_seconds=60)
    limiter.acquire(CORP, API)  # never released: the process "died"
    assert limiter.lower_concurrency(CORP, API) == 1
    assert isinstance(limiter.try_acquire(CORP, API), Denied)
    assert isinstance(limiter.acquire(CORP, API, timeout=1.0), Grant)


# ---------------------------------------------------------------- usage for the dashboard


def test_usage_counts_grants_per_lane_and_outcomes(redis_client, key_prefix):
    limiter = make(redis_client, key_prefix, minute_seconds=LONG)
    for outcome in ("0", "0", "45009"):
        limiter.finish(limiter.acquire(CORP, API, "bulk"), outcome=outcome, latency_ms=10)
    limiter.finish(limiter.acquire(CORP, API, "realtime"), outcome="timeout", latency_ms=5000)
    usage = limiter.usage(CORP, API)
    assert (usage.minute_used, usage.minute_budget, usage.hour_used, usage.hour_budget) == (
        4,
        9000,
        4,
        135000,
    )
    assert usage.in_flight == 0
    history = limiter.usage_history(CORP, API, windows=3)
    assert len(history) == 3
    assert history[-1].counts == {
        "lane:bulk": 3,
        "lane:realtime": 1,
        "calls": 4,
        "outcome:0": 2,
        "outcome:45009": 1,
        "outcome:timeout": 1,
        "latency_ms": 5030,
    }
    assert history[0].counts == {}


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        RateLimitConfig(margin=1.5)
    with pytest.raises(ValueError):
        RateLimitConfig(reserved={"realtime": 0.6, "events": 0.5})
    with pytest.raises(ValueError):
        RateLimitConfig(reserved={"vip": 0.1})
    with pytest.raises(ValueError):
        RateLimitConfig().ceiling("vip", 100)


# ---------------------------------------------------------------- acceptance: processes, real windows

WINDOW_MS = 1500
BUDGET = 600
RESERVE = 60  # 10% for realtime, 10% for events (the defaults)
RUN_MS = 5000  # any 4.5 s contains two whole 1.5-s windows
ACCEPTANCE = {"per_minute": BUDGET, "margin": 1.0, "minute_seconds": WINDOW_MS / 1000, "hour_seconds": LONG}


def _flat_out(redis_url, prefix, config, lane, run_ms, barrier, results):
    """Call as fast as the limiter allows (waiting when told to); report every grant's Redis time."""
    redis = Redis.from_url(redis_url)
    limiter = RateLimiter(redis, RateLimitConfig(**config), key_prefix=prefix)
    barrier.wait()
    start = redis_ms(redis)
    stamps = []
    while True:
        grant = limiter.acquire(CORP, API, lane, timeout=None)
        limiter.release(grant)
        stamps.append(grant.at_ms)
        if grant.at_ms >= start + run_ms:
            break
    results.put((lane, start, stamps, 0))


def _spinning(redis_url, prefix, config, lane, run_ms, barrier, results):
    """Never wait: every window ends in a race between all processes for its last tokens."""
    redis = Redis.from_url(redis_url)
    limiter = RateLimiter(redis, RateLimitConfig(**config), key_prefix=prefix)
    barrier.wait()
    start = redis_ms(redis)
    stamps = []
    while True:
        result = limiter.try_acquire(CORP, API, lane)
        if isinstance(result, Grant):
            limiter.release(result)
            stamps.append(result.at_ms)
        elif redis_ms(redis) >= start + run_ms:
            break
    results.put((lane, start, stamps, 0))


def _late_welcomes(redis_url, prefix, config, lane, run_ms, barrier, results):
    """Arrive 60% into each window, when the other lanes have spent all they may, and ask for
    the realtime reserve without waiting."""
    redis = Redis.from_url(redis_url)
    limiter = RateLimiter(redis, RateLimitConfig(**config), key_prefix=prefix)
    barrier.wait()
    start = redis_ms(redis)
    stamps, refused = [], 0
    window = start // WINDOW_MS + 1
    while window * WINDOW_MS < start + run_ms:
        wake = window * WINDOW_MS + WINDOW_MS * 6 // 10
        time.sleep(max(0, wake - redis_ms(redis)) / 1000)
        for _ in range(RESERVE):
            result = limiter.try_acquire(CORP, API, lane)
            if isinstance(result, Grant):
                limiter.release(result)
                stamps.append(result.at_ms)
            else:
                refused += 1
        window += 1
    results.put((lane, start, stamps, refused))


def run_processes(redis_url, prefix, workers, *, config=ACCEPTANCE, window_ms=WINDOW_MS, run_ms=RUN_MS):
    """Run one spawned process per (target, lane); count grants per lane and per window (by Redis
    time). Returns (outcomes, per-lane counters, total counter, windows every process covered)."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(workers)), ctx.Queue()
    processes = [
        ctx.Process(target=target, args=(redis_url, prefix, config, lane, run_ms, barrier, results))
        for target, lane in workers
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
    assert all(process.exitcode == 0 for process in processes)
    latest_start = max(start for _, start, _, _ in outcomes)
    earliest_stop = min(start for _, start, _, _ in outcomes) + run_ms
    full_windows = [
        w
        for w in range(latest_start // window_ms, earliest_stop // window_ms + 1)
        if w * window_ms >= latest_start and (w + 1) * window_ms <= earliest_stop
    ]
    per_lane: dict[str, Counter] = {}
    for lane, _, stamps, _ in outcomes:
        per_lane.setdefault(lane, Counter()).update(at // window_ms for at in stamps)
    total = sum(per_lane.values(), Counter())
    return outcomes, per_lane, total, full_windows


@pytest.mark.slow
def test_four_processes_flat_out_get_the_budget_and_never_more(redis_url, key_prefix):
    workers = [(_flat_out, "bulk"), (_flat_out, "bulk"), (_flat_out, "events"), (_flat_out, "realtime")]
    _, per_lane, total, full_windows = run_processes(redis_url, key_prefix, workers)
    assert len(full_windows) >= 2
    # Never more than the budget in any window, partial ones included; lanes under their ceilings.
    assert max(total.values()) <= BUDGET
    assert max(per_lane["bulk"].values()) <= BUDGET - 2 * RESERVE
    assert max((per_lane["bulk"] + per_lane["events"]).values()) <= BUDGET - RESERVE
    for window in full_windows:
        assert total[window] >= 0.95 * BUDGET, (window, total[window])
        assert per_lane["realtime"][window] >= RESERVE


@pytest.mark.slow
def test_realtime_reserve_stays_available_while_other_lanes_saturate(redis_url, key_prefix):
    workers = [(_flat_out, "bulk"), (_flat_out, "bulk"), (_flat_out, "events"), (_late_welcomes, "realtime")]
    outcomes, per_lane, total, full_windows = run_processes(redis_url, key_prefix, workers)
    assert len(full_windows) >= 2
    assert max(total.values()) <= BUDGET
    assert sum(refused for lane, _, _, refused in outcomes if lane == "realtime") == 0
    for window in full_windows:
        # Bulk and events spent everything they may (the rest is saturated)...
        assert per_lane["bulk"][window] <= BUDGET - 2 * RESERVE
        assert per_lane["bulk"][window] + per_lane["events"][window] == BUDGET - RESERVE
        # ...and every late welcome still got a token.
        assert per_lane["realtime"][window] == RESERVE
        assert total[window] == BUDGET


@pytest.mark.slow
def test_racing_for_the_last_tokens_of_many_windows_never_overspends(redis_url, key_prefix):
    # A check-then-increment that isn't atomic overspends here within a few of the ~25 windows.
    config = {"per_minute": 3, "margin": 1.0, "minute_seconds": 0.1, "hour_seconds": LONG, "reserved": {}}
    workers = [(_spinning, "realtime")] * 4
    _, _, total, full_windows = run_processes(
        redis_url, key_prefix, workers, config=config, window_ms=100, run_ms=2500
    )
    assert len(full_windows) >= 20
    assert max(total.values()) <= 3
    assert all(total[window] == 3 for window in full_windows)
