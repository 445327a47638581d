from __future__ import annotations

import pytest
from django.db import connection

from scrm.tenancy.models import Corp, Membership, Role
from tests.conftest import World, client_for, make_user

VALID = {
    "name": "丙公司",
    "corp_id": "wwgamma000000003",
    "agent_id": "1000005",
    "secret": "s3cr3t-VALUE-for-gamma",
    "callback_token": "GammaToken123",
    "encoding_aes_key": "A" * 20 + "b" * 20 + "123",
    "api_base": "",
}


@pytest.mark.django_db
def test_onboarding_creates_corp_with_creator_as_admin_and_encrypted_secrets(db: None) -> None:
    user = make_user("founder")
    client = client_for(user)
    response = client.post("/corps/new/", VALID)
    assert response.status_code == 302 and response["Location"] == "/settings/corp/"
    corp = Corp.objects.get(corp_id="wwgamma000000003")
    assert Membership.objects.get(user=user, corp=corp).role == Role.ADMIN
    assert corp.secret == VALID["secret"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret::text || callback_token || encoding_aes_key FROM tenancy_corp WHERE id=%s",
            [corp.pk],
        )
        raw = cursor.fetchone()[0]
    for value in (VALID["secret"], VALID["callback_token"], VALID["encoding_aes_key"]):
        assert value not in raw
    page = client.get("/settings/corp/").content.decode()
    assert "/wecom/callback/wwgamma000000003/" in page
    assert VALID["secret"] not in page and VALID["encoding_aes_key"] not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field,value,message",
    [
        ("callback_token", "has space", "1 to 32 letters or digits"),
        ("callback_token", "x" * 33, "32"),
        ("encoding_aes_key", "short", "exactly 43"),
        ("encoding_aes_key", "A" * 42 + "=", "exactly 43"),
        ("corp_id", "ww!!", "CorpID"),
        ("agent_id", "0", ""),
        ("api_base", "not a url", ""),
    ],
)
def test_onboarding_validates_each_field(db: None, field: str, value: str, message: str) -> None:
    client = client_for(make_user("founder"))
    client.cookies["django_language"] = "en"
    response = client.post("/corps/new/", {**VALID, field: value})
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert message in str(response.context["form"].errors[field])
    assert not Corp.objects.filter(corp_id=VALID["corp_id"]).exists()


@pytest.mark.django_db
def test_an_already_connected_corp_id_is_refused(world: World) -> None:
    client = client_for(make_user("intruder"))
    response = client.post("/corps/new/", {**VALID, "corp_id": world.corp_a.corp_id})
    assert "corp_id" in response.context["form"].errors
    assert not Membership.objects.filter(user__username="intruder").exists()


@pytest.mark.django_db
def test_edit_keeps_blank_secrets_and_replaces_given_ones(world: World) -> None:
    client = client_for(world.alice)
    response = client.post(
        "/settings/corp/edit/",
        {
            "name": "甲公司 Alpha 2",
            "agent_id": "1000009",
            "secret": "",
            "callback_token": "NewTok1",
            "encoding_aes_key": "",
        },
    )
    assert response.status_code == 302
    corp = Corp.objects.get(pk=world.corp_a.pk)
    assert corp.name == "甲公司 Alpha 2" and corp.agent_id == 1000009
    assert corp.secret == "secret-of-wwalpha000000001-PLAINTEXT"
    assert corp.callback_token == "NewTok1"


@pytest.mark.django_db
def test_team_add_and_last_admin_guard(world: World) -> None:
    client = client_for(world.alice)
    response = client.post(
        "/settings/team/", {"username": "erin", "password": "erin-Strong-pass-1", "role": "operator"}
    )
    assert response.status_code == 302
    assert Membership.objects.get(user__username="erin", corp=world.corp_a).role == Role.OPERATOR
    response = client.post("/settings/team/", {"username": "frank", "password": "", "role": "viewer"})
    assert response.status_code == 400
    # corp B has a single admin (charlie): removing him is refused
    charlie = client_for(world.charlie)
    admin_membership = Membership.objects.get(user=world.charlie, corp=world.corp_b)
    charlie.post(f"/settings/team/{admin_membership.pk}/remove/")
    assert Membership.objects.filter(pk=admin_membership.pk).exists()
    # alice can remove bob from corp A
    bob_membership = Membership.objects.get(user=world.bob, corp=world.corp_a)
    assert client.post(f"/settings/team/{bob_membership.pk}/remove/").status_code == 302
    assert not Membership.objects.filter(pk=bob_membership.pk).exists()
