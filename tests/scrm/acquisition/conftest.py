"""Channel codes and welcomes against the WeCom sandbox over real HTTP, with corp A pointed at it.

`Acq` bundles what the tests need: the sandbox, corp A, members pulled from the sandbox, scans that
return the add event WeCom would send, and the inbox row our callback endpoint would have stored.
Tests that need real Celery workers use `workers(...)`, which runs them on a broker database of their
own, so concurrent test runs never consume each other's tasks.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from django.db import connection
from django.utils import timezone

from scrm.acquisition import cache
from scrm.callbacks.models import InboxEvent, InboxStatus
from scrm.core.redis import get_redis
from scrm.customers.models import Member
from scrm.customers.services import member_apply_info
from scrm.tenancy.models import Corp
from tests.brokers import broker_at
from tests.conftest import World
from wecom.sandbox.testing import SandboxServer, sandbox, sandbox_server  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[3]
# Redis database for the Celery broker of worker tests (tasks only; caches and counters stay on the test
# database). Another database per concurrent test run: TEST_WORKER_BROKER_URL.
WORKER_BROKER = os.environ.get("TEST_WORKER_BROKER_URL", "redis://127.0.0.1:6379/11")

ADD_XML = (
    "<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
    "<CreateTime>{t}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    "<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[{change}]]></ChangeType>"
    "<UserID><![CDATA[{user}]]></UserID><ExternalUserID><![CDATA[{ext}]]></ExternalUserID>"
    "<State><![CDATA[{state}]]></State><WelcomeCode><![CDATA[{code}]]></WelcomeCode></xml>"
)


def forget_corp_keys(corp: Corp) -> None:
    """Rate-limit windows and our caches for the corp live in Redis across tests: start clean."""
    redis = get_redis()
    for pattern in (
        f"*rl:{{{corp.corp_id}:*",
        f"acq:*:{corp.pk}:*",
        f"acq:gen:{corp.pk}",
        "acq:cap:*",
        "acq:rb*",
    ):
        for key in redis.scan_iter(pattern):
            redis.delete(key)
    redis.delete(f"acq:reaction:{corp.pk}")
    cache.clear_local()


@dataclass
class Acq:
    sb: SandboxServer
    corp: Corp

    def world(self, action: str, **params: Any) -> dict[str, Any]:
        return self.sb.world(self.corp.corp_id, action, **params)

    def data(self, kind: str, **query: Any) -> list[dict[str, Any]]:
        return self.sb.data(self.corp.corp_id, kind, **query)

    def members(self, n: int) -> list[Member]:
        """n members in the sandbox and in our database (as the member sync would have them)."""
        self.sb.seed(self.corp.corp_id, members=n, customers=0, follows=0, tag_groups=0, contact_ways=0)
        return [
            member_apply_info(corp=self.corp, info={"userid": m["userid"], "name": m["name"]})
            for m in self.data("members")
        ][:n]

    def scan(self, **params: Any) -> dict[str, Any]:
        """A customer scans (WeCom routes the add); the callback is not delivered: tests store it."""
        return self.world("scan", deliver=False, **params)

    def store(self, add: dict[str, Any], *, received_at: datetime | None = None, change: str = "") -> int:
        """The inbox row our callback endpoint stores for this add; returns its id."""
        xml = ADD_XML.format(
            corp=self.corp.corp_id,
            t=int(add["event_time"]),
            change=change or "add_external_contact",
            user=add["userid"],
            ext=add["external_userid"],
            state=add.get("state", ""),
            code=add.get("welcome_code", ""),
        )
        row = InboxEvent.objects.create(
            corp=self.corp,
            digest=hashlib.sha256(xml.encode()).hexdigest(),
            kind=f"change_external_contact.{change or 'add_external_contact'}",
            lane="realtime" if add.get("welcome_code") else "events",
            payload=xml,
            event_time=int(add["event_time"]),
            received_at=received_at or timezone.now(),
            status=InboxStatus.QUEUED,
        )
        return row.pk

    def calls(self, api: str) -> int:
        records = self.sb.control(
            "GET", "/sandbox/audit", corp=self.corp.corp_id, kind="api", name=api, limit=100000
        )
        return sum(1 for r in records["records"])

    def welcomes(self) -> list[dict[str, Any]]:
        """Welcome messages WeCom delivered (the sandbox's audit)."""
        records = self.sb.control(
            "GET", "/sandbox/audit", corp=self.corp.corp_id, kind="world", name="welcome_sent", limit=100000
        )
        return [r["detail"] for r in reversed(records["records"])]  # the audit lists newest first


def link(sb: SandboxServer, corp: Corp) -> Acq:
    # A secret of our own: the access-token cache is keyed by it, and other test runs sharing this Redis
    # database use corp A's CorpID against their own sandboxes.
    corp.secret = f"acq-{uuid.uuid4().hex}"
    sb.register_corp(corp.corp_id, secret=corp.secret, agent_id=corp.agent_id, name=corp.name)
    corp.api_base = sb.api_base
    corp.save(update_fields=["api_base", "secret"])
    forget_corp_keys(corp)
    return Acq(sb, corp)


@pytest.fixture
def acq(world: World, sandbox: SandboxServer) -> Iterator[Acq]:  # noqa: F811  (fixture by name)
    linked = link(sandbox, world.corp_a)
    yield linked
    forget_corp_keys(world.corp_a)


# -- real Celery workers ---------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@dataclass
class Workers:
    proc: subprocess.Popen[bytes]
    log: Path

    def pool_pids(self) -> list[int]:
        return _children(self.proc.pid)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-20000:]


@contextmanager
def broker_for_tests() -> Iterator[str]:
    """Points this process's Celery app at the worker tests' broker database, and back afterwards."""
    broker = redis_lib.Redis.from_url(WORKER_BROKER)
    for queue in ("realtime", "events", "bulk"):
        broker.delete(queue)
    with broker_at(WORKER_BROKER):
        yield WORKER_BROKER


@contextmanager
def workers(queues: str = "realtime,events", concurrency: int = 3, *, tmp_path: Path) -> Iterator[Workers]:
    """`celery worker` on the test database (the test must use django_db(transaction=True))."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}",
        "CELERY_BROKER_URL": WORKER_BROKER,
        "LOG_LEVEL": os.environ.get("ACQ_WORKER_LOG", "WARNING"),
    }
    log = tmp_path / "worker.log"
    with broker_for_tests(), log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "celery"),
                "-A",
                "tasks",
                "worker",
                "-Q",
                queues,
                "-c",
                str(concurrency),
                "-n",
                f"acq-test-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "WARNING",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        w = Workers(proc, log)
        try:
            deadline = time.monotonic() + 60
            while len(w.pool_pids()) < concurrency:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"worker did not start:\n{w.output()}")
                time.sleep(0.2)
            time.sleep(1.0)  # the pool children finish importing Django
            yield w
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def wait_for(predicate: Any, *, timeout: float = 20.0, every: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def ago(seconds: float) -> datetime:
    return timezone.now() - timedelta(seconds=seconds)
