"""Shared by the API and security suites: corp A synced from the WeCom sandbox, and API tokens per person.

Import the fixtures by name in a conftest.py (`from tests.api.fixtures import populated, tokens`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from scrm.core.redis import get_redis
from scrm.sync.services import full_sync_execute, full_sync_start
from scrm.tenancy.models import Corp
from tests.conftest import World
from wecom.sandbox.testing import SandboxServer

# Small on purpose: enough rows that every list has items and a second page at page_size=1.
SEED = {
    "members": 3,
    "customers": 12,
    "follows": 16,
    "groups": 2,
    "group_size": 4,
    "tag_groups": 2,
    "seed": 7,
}

# Everything of corp A that must never reach corp B's users (beyond tests.scrm.test_url_walk's markers).
CORP_A_MARKERS = ("甲公司 Alpha", "wwalpha000000001", "alice", "victor", "secret-of-")


@dataclass
class Tokens:
    alice: str
    bob: str
    victor: str
    charlie: str

    @staticmethod
    def header(key: str) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Token {key}"}


def api_client(key: str, *, enforce_csrf_checks: bool = False) -> Client:
    """A test client that sends `Authorization: Token <key>` with every request."""
    return Client(enforce_csrf_checks=enforce_csrf_checks, HTTP_AUTHORIZATION=f"Token {key}")


def forget_rate_limits(corp: Corp) -> None:
    """Our limiter's windows and breakers for the corp live in Redis across tests: start clean."""
    redis = get_redis()
    for key in redis.scan_iter(f"*rl:{{{corp.corp_id}:*"):
        redis.delete(key)


@pytest.fixture
def tokens(world: World) -> Tokens:
    return Tokens(
        *(Token.objects.create(user=u).key for u in (world.alice, world.bob, world.victor, world.charlie))
    )


@pytest.fixture
def populated(world: World, sandbox: SandboxServer) -> Iterator[World]:
    """Corp A pointed at the sandbox and fully synced from it: members, customers, follows, tags, groups."""
    corp = world.corp_a
    sandbox.register_corp(corp.corp_id, secret=corp.secret, agent_id=corp.agent_id, name=corp.name)
    corp.api_base = sandbox.api_base
    corp.save(update_fields=["api_base"])
    forget_rate_limits(corp)
    sandbox.seed(corp.corp_id, **SEED)
    run, _ = full_sync_start(corp=corp)
    full_sync_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "done", (run.status, run.error_code)
    yield world
    forget_rate_limits(corp)
