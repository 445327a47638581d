"""REST API v1 for customers and members: shape, the shared filter, cursor pagination, token auth, corps."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from scrm.customers.models import FollowStatus
from tests.conftest import World, client_for
from tests.scrm.customers.test_views import Seed, seed_customers


@pytest.fixture
def seeded(world: World) -> Seed:
    return seed_customers(world)


def ids(client: Client, query: str = "") -> list[str]:
    response = client.get("/api/v1/customers/" + (f"?{query}" if query else ""))
    assert response.status_code == 200, response.content
    return [row["external_userid"] for row in response.json()["results"]]


def all_pages(client: Client, url: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    next_url: str | None = url
    pages = 0
    while next_url:
        body = client.get(next_url).json()
        rows += body["results"]
        next_url = body["next"]
        pages += 1
        assert pages < 50
    return rows


@pytest.mark.django_db
def test_customer_list_shape(world: World, seeded: Seed) -> None:
    body = client_for(world.victor).get("/api/v1/customers/").json()
    assert set(body) == {"next", "previous", "results"}
    by_id = {row["external_userid"]: row for row in body["results"]}
    assert set(by_id) == {"wmZHANG", "wmLISI", "wmWANGWU", "wmEVE"}
    zhang = by_id["wmZHANG"]
    assert zhang["name"] == "张三" and zhang["active_follows"] == 2 and zhang["type"] == 1
    assert {m["userid"] for m in zhang["members"]} == {"lilei", "hanmm"}
    assert {t["name"] for t in zhang["tags"]} == {"VIP", "北京", "上海"}
    assert {t["tag_id"] for t in zhang["tags"]} == {"t-vip", "t-bj", "t-sh"}
    assert zhang["first_added_at"].startswith("2026-01-05T")


@pytest.mark.django_db
def test_customer_list_uses_the_dashboard_filter(world: World, seeded: Seed) -> None:
    client = client_for(world.alice)
    t = {name: tag.pk for name, tag in seeded.tags.items()}
    assert ids(client, f"tags_all={t['VIP']}&tags_all={t['北京']}") == ["wmZHANG"]
    assert ids(client, f"tags_all={t['北京']},{t['普通']}&tags_none={t['VIP']}") == ["wmWANGWU"]
    assert set(ids(client, f"tags_any={t['上海']}")) == {"wmZHANG", "wmLISI"}
    assert ids(client, f"members={seeded.members['wang'].pk}") == ["wmEVE"]
    assert ids(client, "added_from=2026-02-10&added_to=2026-02-10") == ["wmLISI"]
    assert ids(client, "status=lost") == ["wmZHAOLIU"]
    assert ids(client, f"status={FollowStatus.DELETED_BY_CUSTOMER}") == ["wmZHAOLIU"]
    assert ids(client, "q=老客户") == ["wmLISI"]
    response = client.get("/api/v1/customers/?added_from=tomorrow")
    assert response.status_code == 400 and "added_from" in response.json()["detail"]


@pytest.mark.django_db
def test_cursor_pagination_walks_every_customer_once(world: World, seeded: Seed) -> None:
    client = client_for(world.alice)
    first = client.get("/api/v1/customers/?status=all&page_size=2").json()
    assert len(first["results"]) == 2 and first["next"] and first["previous"] is None
    rows = all_pages(client, "/api/v1/customers/?status=all&page_size=2")
    assert len(rows) == 5 and len({r["id"] for r in rows}) == 5
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)  # newest first


@pytest.mark.django_db
def test_customer_detail_has_follows_groups_and_timeline(world: World, seeded: Seed) -> None:
    customer = seeded.customers["c1"]
    body = client_for(world.alice).get(f"/api/v1/customers/{customer.pk}/").json()
    assert body["external_userid"] == "wmZHANG" and body["gender"] == 2 and body["unionid"] == ""
    follows = {f["member"]["userid"]: f for f in body["follows"]}
    assert set(follows) == {"lilei", "hanmm"}
    lilei = follows["lilei"]
    assert lilei["status"] == "active" and lilei["state"] == "ch-spring"
    assert {t["name"] for t in lilei["tags"]} == {"VIP", "北京"}
    assert body["groups"] == []
    kinds = [e["kind"] for e in body["timeline"]]
    assert kinds == ["edited", "added"]  # newest first
    assert body["timeline"][1]["data"] == {"state": "ch-spring"}
    assert body["timeline"][0]["member"]["userid"] == "lilei"
    timeline = client_for(world.alice).get(f"/api/v1/customers/{customer.pk}/timeline/?page_size=1").json()
    assert [e["kind"] for e in timeline["results"]] == ["edited"] and timeline["next"]


@pytest.mark.django_db
def test_duplicates_and_members(world: World, seeded: Seed) -> None:
    client = client_for(world.alice)
    dup = client.get("/api/v1/customers/duplicates/").json()["results"]
    assert [r["external_userid"] for r in dup] == ["wmZHANG"]
    members = {m["userid"]: m for m in all_pages(client, "/api/v1/members/?page_size=2")}
    assert {k: m["live_customers"] for k, m in members.items()} == {"lilei": 2, "hanmm": 2, "wang": 1}
    assert members["lilei"]["name"] == "李雷"


@pytest.mark.django_db
def test_token_authentication(world: World, seeded: Seed) -> None:
    token = Token.objects.create(user=world.victor)
    client = Client()
    response = client.get("/api/v1/customers/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    assert {r["external_userid"] for r in response.json()["results"]} >= {"wmZHANG"}
    # DRF answers 403 rather than 401 when session auth is listed first (it sends no WWW-Authenticate).
    assert client.get("/api/v1/customers/", HTTP_AUTHORIZATION="Token not-a-token").status_code in (401, 403)
    assert Client().get("/api/v1/customers/").status_code in (401, 403)


@pytest.mark.django_db
def test_api_is_corp_scoped(world: World, seeded: Seed) -> None:
    charlie = client_for(world.charlie)
    assert ids(charlie, "status=all") == ["wmBETA"]
    assert charlie.get(f"/api/v1/customers/{seeded.customers['c1'].pk}/").status_code == 404
    assert charlie.get(f"/api/v1/customers/{seeded.customers['c1'].pk}/timeline/").status_code == 404
    assert charlie.get("/api/v1/customers/duplicates/").json()["results"] == []
    assert [m["userid"] for m in charlie.get("/api/v1/members/").json()["results"]] == ["bmember"]
    # A token of charlie's is charlie's corp too.
    token = Token.objects.create(user=world.charlie)
    response = Client().get(
        f"/api/v1/customers/{seeded.customers['c1'].pk}/", HTTP_AUTHORIZATION=f"Token {token.key}"
    )
    assert response.status_code == 404


@pytest.mark.django_db
def test_openapi_schema_lists_the_endpoints(world: World) -> None:
    response = client_for(world.alice).get("/api/schema/")
    assert response.status_code == 200
    text = response.content.decode()
    for path in (
        "/api/v1/customers/",
        "/api/v1/customers/{customer_pk}/",
        "/api/v1/customers/{customer_pk}/timeline/",
        "/api/v1/customers/duplicates/",
        "/api/v1/members/",
        "/api/v1/groups/",
        "/api/v1/groups/{group_pk}/",
        "/api/v1/inbox/",
        "/api/v1/inbox/{event_pk}/replay/",
    ):
        assert f"{path}:" in text, path
