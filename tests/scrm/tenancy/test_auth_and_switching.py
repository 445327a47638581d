from __future__ import annotations

import pytest
from django.test import Client

from scrm.tenancy.middleware import SESSION_CORP_KEY
from tests.conftest import PASSWORD, World, client_for


@pytest.mark.django_db
def test_login_logout(world: World) -> None:
    client = Client()
    assert client.get("/").status_code == 302
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "甲公司 Alpha" in home.content.decode()
    assert client.get("/accounts/logout/").status_code == 405  # logging out is a POST (CSRF-protected)
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_csrf_is_enforced_on_login() -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403


@pytest.mark.django_db
def test_password_change(world: World) -> None:
    client = client_for(world.bob)
    response = client.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "another-Long-pass-42",
            "new_password2": "another-Long-pass-42",
        },
    )
    assert response.status_code == 302
    world.bob.refresh_from_db()
    assert world.bob.check_password("another-Long-pass-42")


@pytest.mark.django_db
def test_corp_switch_between_own_corps_only(world: World) -> None:
    client = client_for(world.dora)
    assert "甲公司 Alpha" in client.get("/").content.decode()
    response = client.post("/corps/switch/", {"corp": world.corp_b.pk, "next": "/"})
    assert response.status_code == 302
    assert client.session[SESSION_CORP_KEY] == world.corp_b.pk
    page = client.get("/").content.decode()
    assert "乙公司 Beta" in page
    # dora is only an operator in corp B: admin pages are refused there
    assert client.get("/settings/corp/").status_code == 403
    client.post("/corps/switch/", {"corp": world.corp_a.pk})
    assert client.get("/settings/corp/").status_code == 200


@pytest.mark.django_db
def test_switching_to_a_foreign_corp_is_refused(world: World) -> None:
    client = client_for(world.charlie)
    client.post("/corps/switch/", {"corp": world.corp_a.pk})
    assert client.session[SESSION_CORP_KEY] == world.corp_b.pk
    assert "甲公司 Alpha" not in client.get("/").content.decode()


@pytest.mark.django_db
def test_switch_ignores_offsite_next(world: World) -> None:
    client = client_for(world.dora)
    response = client.post("/corps/switch/", {"corp": world.corp_b.pk, "next": "https://evil.example/"})
    assert response["Location"] == "/"


@pytest.mark.django_db
def test_user_without_corp_is_sent_to_onboarding(db: None) -> None:
    from tests.conftest import make_user

    client = client_for(make_user("newcomer"))
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/corps/new/"
