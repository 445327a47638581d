"""Dashboard pages and the REST API of broadcasts, by role, and corp B kept out."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from scrm.campaigns import services
from scrm.campaigns.models import Broadcast, CampaignSettings
from scrm.customers.models import Member, Tag
from tests.conftest import World, client_for
from tests.scrm.campaigns.conftest import Camp

pytestmark = pytest.mark.django_db


def test_compose_preview_submit_approve(camp: Camp) -> None:
    camp.seed(members=3, customers=20, follows=25, tag_groups=2, seed=8)
    bob, alice = client_for(camp.world.bob), client_for(camp.world.alice)
    tag = Tag.objects.filter(corp=camp.corp).order_by("pk").first()
    assert tag is not None
    page = bob.get(reverse("campaigns:create"))
    assert page.status_code == 200
    too_long = bob.post(
        reverse("campaigns:create"),
        {"name": "x", "chat_type": "single", "text": "字" * 1400, "send_at": "now"},
    )
    assert too_long.status_code == 200 and "4000" in too_long.content.decode()
    response = bob.post(
        reverse("campaigns:create"),
        {
            "name": "会员日",
            "chat_type": "single",
            "text": "会员日快乐",
            "tags_any": [tag.pk],
            "send_at": "now",
        },
    )
    assert response.status_code == 302
    b = Broadcast.objects.get(corp=camp.corp, name="会员日")
    assert b.audience["tags_any"] == [tag.pk] and b.created_by == camp.world.bob
    detail = bob.get(reverse("campaigns:detail", args=[b.pk])).content.decode()
    assert 'data-testid="preview"' in detail and 'data-reason="quota"' in detail
    assert bob.post(reverse("campaigns:submit", args=[b.pk])).status_code == 302
    b.refresh_from_db()
    assert b.status == Broadcast.Status.PENDING
    assert bob.post(reverse("campaigns:approve", args=[b.pk])).status_code == 403  # operators don't approve
    assert alice.post(reverse("campaigns:approve", args=[b.pk])).status_code == 302
    b.refresh_from_db()
    assert b.status == Broadcast.Status.SCHEDULED
    services.broadcast_send(broadcast_id=b.pk)
    report = alice.get(reverse("campaigns:detail", args=[b.pk])).content.decode()
    assert 'data-testid="report"' in report and 'data-testid="progress"' in report
    assert alice.get(reverse("campaigns:list")).status_code == 200


def test_settings_page_admin_only(world: World, alice_client: Client, bob_client: Client) -> None:
    assert bob_client.get(reverse("campaigns:settings")).status_code == 403
    assert alice_client.get(reverse("campaigns:settings")).status_code == 200
    bad = alice_client.post(
        reverse("campaigns:settings"), {"quota_rule": "1_per_day", "churn_threshold": "0"}
    )
    assert (
        bad.status_code == 200
        and not CampaignSettings.objects.filter(corp=world.corp_a, quota_rule="1_per_day").exists()
    )
    ok = alice_client.post(
        reverse("campaigns:settings"),
        {"quota_rule": "7_per_week", "churn_threshold": "2.5", "approval_required": ""},
    )
    assert ok.status_code == 302
    s = CampaignSettings.objects.get(corp=world.corp_a)
    assert s.quota_rule == "7_per_week" and str(s.churn_threshold) == "2.50" and not s.approval_required


def test_charlie_sees_nothing_of_corp_a(world: World, charlie_client: Client) -> None:
    b = Broadcast.objects.create(corp=world.corp_a, name="甲的群发", text="secret")
    for name in ("detail", "edit", "submit", "approve", "cancel", "remind"):
        url = reverse(f"campaigns:{name}", args=[b.pk])
        assert charlie_client.get(url).status_code in (404, 405)
        assert charlie_client.post(url).status_code == 404
    assert "甲的群发" not in charlie_client.get(reverse("campaigns:list")).content.decode()
    api = charlie_client.get("/api/v1/broadcasts/").json()
    assert api["results"] == []
    assert charlie_client.get(f"/api/v1/broadcasts/{b.pk}/").status_code == 404
    assert charlie_client.get(f"/api/v1/broadcasts/{b.pk}/preview/").status_code == 404


def test_api_list_detail_preview(camp: Camp) -> None:
    camp.seed(members=2, customers=12, follows=12, tag_groups=1, seed=1)
    member = Member.objects.filter(corp=camp.corp).order_by("userid").first()
    assert member is not None
    b = camp.broadcast(members=[member.pk])
    client = client_for(camp.world.victor)
    listed = client.get("/api/v1/broadcasts/").json()["results"]
    assert [row["id"] for row in listed] == [b.pk]
    preview = client.get(f"/api/v1/broadcasts/{b.pk}/preview/").json()
    assert preview["senders"][0]["userid"] == member.userid
    assert preview["total"] == preview["senders"][0]["count"] > 0
    detail = client.get(f"/api/v1/broadcasts/{b.pk}/").json()
    assert detail["status"] == "draft" and detail["progress"]["chunks_total"] == 0
