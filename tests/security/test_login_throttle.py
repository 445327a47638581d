"""Password guessing is slowed: after MAX_FAILURES failed sign-ins for one username from one address, that
pair is locked out for a while, whatever the password, and the answers never tell which usernames exist."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client

from scrm.core.redis import get_redis
from scrm.tenancy.login import LOCKOUT_SECONDS, MAX_FAILURES, MAX_FAILURES_PER_IP
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def _no_counts() -> Iterator[None]:
    redis = get_redis()  # this test run's Redis, even if a test points the setting elsewhere

    def clear() -> None:
        for key in redis.scan_iter("login-fail:*"):
            redis.delete(key)

    clear()
    yield
    clear()


def sign_in(client: Client, username: str, password: str, ip: str = "10.1.1.1") -> tuple[int, str]:
    response = client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)
    return response.status_code, response.content.decode()


def test_lockout_after_repeated_failures_even_with_the_right_password(db: None) -> None:
    User.objects.create_user("target", password=PASSWORD)
    client = Client()
    for _ in range(MAX_FAILURES):
        status, page = sign_in(client, "target", "wrong")
        assert status == 200 and "correct username and password" in page
    status, page = sign_in(client, "target", PASSWORD)
    assert status == 429
    assert "Too many failed sign-in attempts" in page and "15 minutes" in page
    assert "_auth_user_id" not in client.session
    # The counter expires: the lockout lasts LOCKOUT_SECONDS from the first failure, no longer.
    ttls = [get_redis().ttl(k) for k in get_redis().scan_iter("login-fail:u:*")]
    assert ttls and all(0 < t <= LOCKOUT_SECONDS for t in ttls)
    # Another address, or another username from the same address, is not locked out by it.
    assert sign_in(Client(), "target", PASSWORD, ip="10.2.2.2")[0] == 302
    assert sign_in(Client(), "someone-else", "wrong")[0] == 200
    # Case and spaces don't make a fresh counter.
    assert sign_in(Client(), " TARGET ", PASSWORD)[0] == 429


def test_success_resets_the_count(db: None) -> None:
    User.objects.create_user("target", password=PASSWORD)
    for _ in range(MAX_FAILURES - 1):
        sign_in(Client(), "target", "wrong")
    assert sign_in(Client(), "target", PASSWORD)[0] == 302
    for _ in range(MAX_FAILURES - 1):
        assert sign_in(Client(), "target", "wrong")[0] == 200
    assert sign_in(Client(), "target", PASSWORD)[0] == 302


def _comparable(page: str, username: str) -> str:
    """The page without what differs on every response anyway (CSRF tokens) and the echoed username."""
    page = re.sub(r"csrfmiddlewaretoken\" value=\"[^\"]+|X-CSRFToken\": \"[^\"]+", "CSRF", page)
    return page.replace(username, "NAME")


def test_no_user_enumeration(db: None) -> None:
    """An existing and a missing username get the same answers, failure after failure, and the same lock."""
    User.objects.create_user("exists", password=PASSWORD)
    for _ in range(MAX_FAILURES + 2):
        existing = sign_in(Client(), "exists", "wrong")
        missing = sign_in(Client(), "missing", "wrong")
        assert existing[0] == missing[0]
        assert _comparable(existing[1], "exists") == _comparable(missing[1], "missing")
    assert existing[0] == 429


def test_one_address_trying_many_usernames_is_stopped(db: None) -> None:
    for i in range(MAX_FAILURES_PER_IP):
        assert sign_in(Client(), f"user{i}", "wrong", ip="10.9.9.9")[0] == 200
    assert sign_in(Client(), "fresh-name", "wrong", ip="10.9.9.9")[0] == 429
    assert sign_in(Client(), "fresh-name", "wrong", ip="10.9.9.8")[0] == 200


def test_sign_in_still_works_when_redis_is_down(db: None, settings) -> None:
    User.objects.create_user("target", password=PASSWORD)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there (get_redis() follows the setting)
    for _ in range(MAX_FAILURES + 1):
        assert sign_in(Client(), "target", "wrong")[0] == 200
    assert sign_in(Client(), "target", PASSWORD)[0] == 302
