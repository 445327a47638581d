"""The fault suite's rig: the product as processes (gunicorn, Celery workers) behind a Postgres proxy and on a
Redis server of our own, the sandbox as WeCom delivering callbacks through an unreliable front, and the
invariant checker over both.

Short versions run with the normal suite (marker `faults`); `FAULTS_LONG=1` (scripts/faults) runs the same
scenarios at a larger scale and for longer.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from django.db import connection

from scrm.callbacks.models import InboxEvent, InboxStatus
from scrm.tenancy.models import Corp
from tests.brokers import broker_at
from tests.conftest import World
from tests.faults.front import CallbackFront
from tests.faults.invariants import Checker, Report
from tests.faults.procs import (
    PrivateRedis,
    Proc,
    Product,
    TcpProxy,
    product,
    redeliver_unacked,
    wait_until,
)
from wecom.crypto import CallbackCrypto
from wecom.sandbox.testing import SandboxServer

LONG = os.environ.get("FAULTS_LONG", "") not in ("", "0")
LANES = ("realtime", "events", "bulk")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: fault-injection scenarios checked by tests/faults/invariants.py"
    )


@dataclass(frozen=True)
class Scale:
    """How much traffic a scenario makes: short in the normal suite, long under FAULTS_LONG=1."""

    customers: int  # scans (adds with a welcome code)
    edits: int  # tag edits, deletions
    members: int
    seed_customers: int  # for the full sync
    seed_follows: int
    rounds: int  # faults injected per scenario
    drain: float  # seconds allowed for everything to settle

    @classmethod
    def current(cls) -> Scale:
        if LONG:
            return cls(
                customers=400,
                edits=300,
                members=12,
                seed_customers=3000,
                seed_follows=4500,
                rounds=5,
                # A 45009 closes its API for the rest of the minute: settling takes a while.
                drain=1800,
            )
        return cls(
            customers=24, edits=16, members=4, seed_customers=150, seed_follows=220, rounds=1, drain=90
        )


@pytest.fixture
def scale() -> Scale:
    return Scale.current()


@dataclass
class Rig:
    sb: SandboxServer
    corp: Corp
    redis: PrivateRedis
    pg: TcpProxy
    front: CallbackFront
    app: Product

    # --- driving WeCom -----------------------------------------------------------------------------------
    def world(self, action: str, **params: Any) -> dict[str, Any]:
        return self.sb.world(self.corp.corp_id, action, **params)

    def data(self, kind: str, **query: Any) -> list[dict[str, Any]]:
        return self.sb.data(self.corp.corp_id, kind, **query)

    def faults(self, **values: Any) -> dict[str, Any]:
        return self.sb.faults(self.corp.corp_id, **values)

    def lost_answers(self, *apis: str) -> None:
        """WeCom does what was asked but the answer is lost (the client times out): the fault a retry
        turns into a duplicate template or transfer. Short runs aim it at the creating APIs, one call in
        two; long runs spread it, with -1, 45009, 45033 and plain timeouts, over one call in ten."""
        if LONG:
            kinds = {"busy": 3, "lost": 2, "timeout": 1, "freq": 1, "concurrent": 2}
            self.faults(rate=0.1, kinds=kinds, timeout_s=11.0, apis=None)
        else:
            self.faults(rate=0.5, kinds={"lost": 1}, timeout_s=11.0, apis=list(apis))

    def no_faults(self) -> None:
        self.sb.faults(self.corp.corp_id, rate=0.0)
        self.sb.limits(self.corp.corp_id, reset=True)

    # --- waiting for the product ------------------------------------------------------------------------
    def queued(self) -> int:
        """Tasks waiting in the broker or delivered to a worker and not yet acknowledged."""
        return sum(self.tasks().values())

    def tasks(self) -> dict[str, int]:
        try:
            r = redis_lib.Redis.from_url(self.redis.url, socket_connect_timeout=1)
            found = {q: int(r.llen(q)) for q in LANES}
            for raw in r.hvals("unacked"):
                name = json.loads(raw)[0]["headers"]["task"]
                found[f"unacked {name}"] = found.get(f"unacked {name}", 0) + 1
            return {k: v for k, v in found.items() if v}
        except redis_lib.RedisError:
            return {"redis unreachable": 1}

    def settle(self, *, timeout: float, sweep: bool = True) -> None:
        """Until WeCom has delivered everything, every inbox row is done and no task is left anywhere.
        The inbox sweeper runs as beat would (every few seconds here instead of 30 s)."""
        self.front.wait_idle(self.sb, timeout=timeout)
        deadline = time.monotonic() + timeout
        last_sweep = 0.0
        quiet_since: float | None = None
        while True:
            open_rows = InboxEvent.objects.filter(corp=self.corp).exclude(status=InboxStatus.DONE).count()
            busy = open_rows or self.queued()
            if not busy:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 1.5:  # follow-ups enqueued on commit have shown up
                    return
            else:
                quiet_since = None
            if sweep and time.monotonic() - last_sweep > 3:
                self.sweep()
                last_sweep = time.monotonic()
            if self.app.revive():
                warnings.warn(
                    f"worker exited on its own and was restarted: {self.app.revived[-1]}", stacklevel=2
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not settled after {timeout:.0f} s: {open_rows} inbox rows open, tasks {self.tasks()}\n"
                    f"{self.app.logs()}"
                )
            time.sleep(0.3)

    def sweep(self) -> int:
        from scrm.callbacks import services

        with broker_at(self.redis.url):
            return services.inbox_sweep()

    def kill(self, worker: Proc, queues: str) -> None:
        """SIGKILL the worker and its pool; its unacknowledged tasks come back as after the visibility
        timeout (the test then starts a fresh worker)."""
        worker.kill()
        redeliver_unacked(self.redis.url, queues.split(","))

    def checker(self) -> Checker:
        return Checker(self.sb, self.corp, acked=self.front.acked)

    def assert_invariants(self, *names: str) -> Report:
        return self.checker().assert_holds(*names, context=self.app.logs())


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis", appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
def pg_proxy() -> Iterator[TcpProxy]:
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)).start()
    yield proxy
    proxy.stop()


def link_corp(sb: SandboxServer, corp: Corp, callback_url: str) -> None:
    # A secret of our own: the access-token cache is keyed by it.
    corp.secret = f"faults-{uuid.uuid4().hex}"
    corp.api_base = sb.api_base
    corp.save(update_fields=["api_base", "secret"])
    sb.register_corp(
        corp.corp_id,
        secret=corp.secret,
        agent_id=corp.agent_id,
        name=corp.name,
        callback_url=callback_url,
        token=corp.callback_token,
        encoding_aes_key=corp.encoding_aes_key,
    )


@pytest.fixture
def rig(
    world: World,
    sandbox: SandboxServer,
    private_redis: PrivateRedis,
    pg_proxy: TcpProxy,
    tmp_path: Path,
    settings: Any,
) -> Iterator[Rig]:
    """Corp A linked to the sandbox, whose callbacks pass the front to gunicorn; workers are started by
    each test (`rig.app.start_worker`). The product's processes reach Postgres only through the proxy."""
    settings.WECOM_CALLBACK_REPLAY_WINDOW = 0
    # WeCom's own delivery rules: 5 s to answer, 3 retries.
    sandbox.reset(timeout=5.0, retry_interval=0.2, retries=3)
    db = connection.settings_dict
    db_url = f"postgres://{db['USER']}@127.0.0.1:{pg_proxy.port}/{db['NAME']}"
    corp = world.corp_a
    env = {
        "FAULTS_SYNC_LEASE": "4",
        "FAULTS_CHUNK_LEASE": "4",
        "FAULTS_BATCH_LEASE": "4",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    with product(db_url, private_redis.url, logs, **env) as app:
        web = app.start_web()
        crypto = CallbackCrypto(corp.callback_token, corp.encoding_aes_key, corp.corp_id)
        front = CallbackFront(web, crypto).start()
        link_corp(sandbox, corp, front.url)
        try:
            with broker_at(private_redis.url):
                yield Rig(sandbox, corp, private_redis, pg_proxy, front, app)
        finally:
            front.stop()
            sandbox.control("DELETE", f"/sandbox/corps/{corp.corp_id}")


def seed_members(rig: Rig, n: int) -> list[str]:
    """n members in WeCom and in our tables (as the member sync would have them)."""
    from scrm.customers.services import member_apply_info

    rig.sb.seed(rig.corp.corp_id, members=n, customers=0, follows=0, tag_groups=1, contact_ways=0, groups=0)
    members = rig.data("members")
    for m in members:
        member_apply_info(corp=rig.corp, info={"userid": m["userid"], "name": m["name"]})
    return [m["userid"] for m in members]


def wait_for(predicate: Any, *, timeout: float = 30.0, what: str = "") -> Any:
    return wait_until(predicate, timeout=timeout, what=what)
