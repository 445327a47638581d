"""Broadcasts against the WeCom sandbox over real HTTP: corp A linked to it, its members, customers, tags
and groups pulled in by the real full sync, so audiences and sends see what WeCom has."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from django.db import connection

from scrm.campaigns import services
from scrm.campaigns.models import Broadcast
from scrm.customers.models import Customer, Member, Tag
from scrm.sync.models import SyncRun
from scrm.sync.services import full_sync_execute, full_sync_start
from scrm.tenancy.models import Corp
from tests.brokers import broker_at
from tests.conftest import World
from tests.scrm.acquisition.conftest import REPO, Workers, forget_corp_keys, link
from wecom.sandbox.testing import SandboxServer, sandbox, sandbox_server  # noqa: F401  (fixtures)


@dataclass
class Camp:
    sb: SandboxServer
    corp: Corp
    world: World

    def seed(self, **params: Any) -> SyncRun:
        """WeCom's state (sandbox seed), then our full sync of it."""
        self.sb.seed(self.corp.corp_id, **params)
        run, _ = full_sync_start(corp=self.corp)
        full_sync_execute(run_id=run.pk)
        run.refresh_from_db()
        assert run.status == SyncRun.Status.DONE, run.error_detail
        return run

    def data(self, kind: str, **query: Any) -> list[dict[str, Any]]:
        return self.sb.data(self.corp.corp_id, kind, **query)

    def templates(self) -> list[dict[str, Any]]:
        return self.data("templates")

    def findings(self) -> dict[str, Any]:
        return dict(self.sb.findings(self.corp.corp_id)["summary"])

    def calls(self, api: str) -> int:
        records = self.sb.control(
            "GET", "/sandbox/audit", corp=self.corp.corp_id, kind="api", name=api, limit=100000
        )
        return len(records["records"])

    def settings(self, **values: Any) -> None:
        self.sb.settings(self.corp.corp_id, **values)

    def broadcast(
        self,
        *,
        name: str = "双十一",
        text: str = "双十一优惠，回复 1 了解详情",
        chat_type: str = "single",
        **audience: Any,
    ) -> Broadcast:
        return services.broadcast_save(
            corp=self.corp,
            broadcast=None,
            user=self.world.bob,
            name=name,
            chat_type=chat_type,
            text=text,
            audience=audience,
            scheduled_at=None,
        )

    def approved(self, **kwargs: Any) -> Broadcast:
        """A broadcast submitted by an admin (the submission is the approval)."""
        b = self.broadcast(**kwargs)
        return services.broadcast_submit(corp=self.corp, broadcast=b, user=self.world.alice, is_admin=True)

    def tag(self, name: str) -> Tag:
        return Tag.objects.get(corp=self.corp, name=name)

    def customers(self) -> int:
        return Customer.objects.filter(corp=self.corp, active_follows__gt=0).count()

    def members(self) -> list[Member]:
        return list(Member.objects.filter(corp=self.corp).order_by("userid"))


@pytest.fixture
def camp(world: World, sandbox: SandboxServer) -> Iterator[Camp]:  # noqa: F811  (fixture by name)
    linked = link(sandbox, world.corp_a)
    # Members confirm at once and results are ready a moment after creation, unless a test says otherwise.
    sandbox.settings(world.corp_a.corp_id, confirm_delay=0.0, distribute_seconds=0.0)
    yield Camp(sandbox, linked.corp, world)
    forget_corp_keys(world.corp_a)


# -- real Celery workers ---------------------------------------------------------------------------------


@contextmanager
def bulk_worker(*, tmp_path: Path, concurrency: int = 1) -> Iterator[Workers]:
    """`celery worker -Q bulk` on the test database, its broker on this run's own Redis database."""
    broker = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    redis_lib.Redis.from_url(broker).delete("bulk")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.scrm.campaigns.worker_settings",
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CELERY_BROKER_URL": broker,
        "LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "worker.log"
    with broker_at(broker), log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "celery"),
                "-A",
                "tasks",
                "worker",
                "-Q",
                "bulk",
                "-c",
                str(concurrency),
                "-n",
                f"camp-test-{os.getpid()}@%h",
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
            time.sleep(1.0)
            yield w
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
