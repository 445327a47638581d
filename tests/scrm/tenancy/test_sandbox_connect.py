from __future__ import annotations

import pytest
from django.test import override_settings

from scrm.tenancy.models import Corp, Membership, Role
from tests.conftest import World, client_for
from wecom.sandbox.testing import SandboxServer


@pytest.mark.django_db
def test_one_click_sandbox_corp_then_test_connection_both_ways(world: World, sandbox: SandboxServer) -> None:
    client = client_for(world.victor)
    with override_settings(WECOM_SANDBOX_URL=sandbox.base_url, PUBLIC_BASE_URL="http://testserver"):
        response = client.post("/corps/new/sandbox/", {"name": "沙箱演示"})
    assert response.status_code == 302 and response["Location"] == "/settings/corp/"
    corp = Corp.objects.get(name="沙箱演示")
    assert Membership.objects.get(corp=corp, user=world.victor).role == Role.ADMIN
    assert corp.api_base.startswith(sandbox.base_url)
    # The sandbox knows the corp with the same credentials and callback URL
    registered = sandbox.control("GET", f"/sandbox/corps/{corp.corp_id}")
    app = registered["apps"][0]
    assert app["secret"] == corp.secret and app["token"] == corp.callback_token
    assert app["callback_url"] == f"http://testserver/wecom/callback/{corp.corp_id}/"
    assert registered["counts"]["members"] == 8

    response = client.post("/settings/corp/test-connection/", follow=True)
    corp.refresh_from_db()
    assert corp.last_connection_ok_at is not None and corp.last_connection_error == ""
    assert "8" in response.content.decode()  # members with customer-contact permission

    corp.secret = "a-wrong-secret-for-this-corp"
    corp.save()
    client.cookies["django_language"] = "en"
    response = client.post("/settings/corp/test-connection/", follow=True)
    corp.refresh_from_db()
    assert "40001" in corp.last_connection_error
    assert "40001" in response.content.decode()


@pytest.mark.django_db
def test_one_click_says_so_when_the_sandbox_is_not_running(world: World) -> None:
    client = client_for(world.victor)
    client.cookies["django_language"] = "en"
    with override_settings(WECOM_SANDBOX_URL="http://127.0.0.1:1"):
        response = client.post("/corps/new/sandbox/", follow=True)
    assert "did not answer" in response.content.decode()
    assert not Corp.objects.filter(memberships__user=world.victor).exclude(pk=world.corp_a.pk).exists()
