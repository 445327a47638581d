"""Named people for every test (healthchecks style):

- alice: admin of corp A       - bob: operator of corp A     - victor: viewer of corp A
- charlie: admin of corp B     - dora: admin of A *and* operator of B (corp switching)
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.test import Client

from scrm.tenancy.models import Corp, Membership, Role

PASSWORD = "correct-horse-battery-staple"


@dataclass
class World:
    corp_a: Corp
    corp_b: Corp
    alice: User
    bob: User
    victor: User
    charlie: User
    dora: User


def make_corp(name: str, corp_id: str) -> Corp:
    return Corp.objects.create(
        name=name,
        corp_id=corp_id,
        agent_id=1000002,
        secret=f"secret-of-{corp_id}-PLAINTEXT",
        callback_token=f"Tok{corp_id[-6:]}",
        encoding_aes_key=("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
    )


def make_user(username: str, corp: Corp | None = None, role: str = Role.VIEWER) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD)
    if corp is not None:
        Membership.objects.create(user=user, corp=corp, role=role)
    return user


@pytest.fixture
def world(db: None) -> World:
    corp_a = make_corp("甲公司 Alpha", "wwalpha000000001")
    corp_b = make_corp("乙公司 Beta", "wwbeta0000000002")
    alice = make_user("alice", corp_a, Role.ADMIN)
    bob = make_user("bob", corp_a, Role.OPERATOR)
    victor = make_user("victor", corp_a, Role.VIEWER)
    charlie = make_user("charlie", corp_b, Role.ADMIN)
    dora = make_user("dora", corp_a, Role.ADMIN)
    Membership.objects.create(user=dora, corp=corp_b, role=Role.OPERATOR)
    return World(corp_a, corp_b, alice, bob, victor, charlie, dora)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice_client(world: World) -> Client:
    return client_for(world.alice)


@pytest.fixture
def bob_client(world: World) -> Client:
    return client_for(world.bob)


@pytest.fixture
def charlie_client(world: World) -> Client:
    return client_for(world.charlie)


@pytest.fixture(scope="session", autouse=True)
def _fresh_test_redis() -> None:
    """Start every run with an empty test Redis database (queues, token cache, rate-limit counters)."""
    from django.conf import settings

    # /15 by default; TEST_REDIS_URL may pick another database, never the dev instance's /0.
    assert not settings.REDIS_URL.endswith("/0"), "tests must not touch the dev Redis database"
    from scrm.core.redis import get_redis

    get_redis().flushdb()


# The WeCom sandbox over real HTTP, for any test that needs WeCom (see wecom/sandbox/testing.py).
from wecom.sandbox.testing import callback_receiver, sandbox, sandbox_server  # noqa: E402, F401


@pytest.fixture(autouse=True)
def _english_unless_browser(request: pytest.FixtureRequest) -> None:
    """Server-side tests read English messages; the browser suite sees the real default, 简体中文."""
    if request.node.get_closest_marker("browser") is None:
        request.getfixturevalue("settings").LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def _forget_callback_targets() -> None:
    """Each test's corps are new rows: the callback path's per-process corp cache starts empty."""
    from scrm.callbacks import services

    services._targets.clear()
