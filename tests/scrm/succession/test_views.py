"""Succession pages and API: the wizard, progress, de-duplication decisions, and tenancy isolation."""

from __future__ import annotations

import pytest
from django.test import Client

from scrm.customers.models import Customer, Follow, Member
from scrm.succession import services
from scrm.succession.models import DedupDecision, Handover, HandoverItem
from tests.conftest import World

pytestmark = pytest.mark.django_db


def _leaver_with_customers(world: World, n: int = 3) -> tuple[Member, Member]:
    corp = world.corp_a
    leaver = Member.objects.create(corp=corp, userid="leaver", name="离职者", status="resigned")
    heir = Member.objects.create(corp=corp, userid="heir", name="接替者")
    for i in range(n):
        c = Customer.objects.create(corp=corp, external_userid=f"wmC{i}", name=f"客户{i}")
        Follow.objects.create(corp=corp, customer=c, member=leaver)
    return leaver, heir


def test_wizard_previews_then_starts(world: World, alice_client: Client) -> None:
    leaver, heir = _leaver_with_customers(world)
    page = alice_client.get("/succession/")
    assert page.status_code == 200 and b"leaver" in page.content
    url = f"/succession/new/resigned/?member={leaver.pk}"
    form = {"member": leaver.pk, "rule": "member", "takeover": heir.pk, "include_customers": "on"}
    preview = alice_client.post(url, {**form, "action": "preview"})
    assert preview.status_code == 200
    assert b'data-testid="preview-result"' in preview.content
    assert not Handover.objects.exists()
    done = alice_client.post(url, {**form, "action": "confirm"})
    handover = Handover.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/succession/{handover.pk}/"
    assert HandoverItem.objects.filter(handover=handover, status="pending").count() == 3
    detail = alice_client.get(f"/succession/{handover.pk}/?status=pending")
    assert detail.status_code == 200 and b"handover-chart" in detail.content
    api = alice_client.get(f"/api/v1/succession/handovers/{handover.pk}/").json()
    assert api["counts"]["customers"] == {"pending": 3}
    items = alice_client.get(f"/api/v1/succession/handovers/{handover.pk}/items/?status=pending").json()
    assert len(items["results"]) == 3
    assert alice_client.get(f"/api/v1/succession/handovers/{handover.pk}/items/?status=x").status_code == 400


def test_wizard_validates(world: World, alice_client: Client) -> None:
    leaver, _heir = _leaver_with_customers(world)
    url = f"/succession/new/resigned/?member={leaver.pk}"
    page = alice_client.post(
        url, {"member": leaver.pk, "rule": "member", "include_customers": "on", "action": "confirm"}
    )
    assert page.status_code == 200 and "Choose the member who takes over" in page.content.decode()
    page = alice_client.post(
        url, {"member": leaver.pk, "rule": "same_department", "include_customers": "on", "action": "preview"}
    )
    assert "department" in page.content.decode()
    assert not Handover.objects.exists()


def test_other_corps_and_non_admins_are_kept_out(
    world: World, alice_client: Client, charlie_client: Client, bob_client: Client
) -> None:
    leaver, heir = _leaver_with_customers(world)
    handover = services.handover_create(
        corp=world.corp_a, kind="resigned", member=leaver, rule="member", takeover=heir
    )
    assert charlie_client.get(f"/succession/{handover.pk}/").status_code == 404
    assert charlie_client.post(f"/succession/{handover.pk}/cancel/").status_code == 404
    assert charlie_client.get(f"/succession/new/resigned/?member={leaver.pk}").status_code == 404
    assert b"leaver" not in charlie_client.get("/succession/").content
    assert charlie_client.get("/api/v1/succession/handovers/").json()["results"] == []
    assert charlie_client.get(f"/api/v1/succession/handovers/{handover.pk}/").status_code == 404
    assert bob_client.get("/succession/").status_code == 403
    assert bob_client.get("/api/v1/succession/handovers/").status_code == 403
    # A member of another corp cannot be named as successor.
    other = Member.objects.create(corp=world.corp_b, userid="spy")
    page = alice_client.post(
        f"/succession/new/resigned/?member={leaver.pk}",
        {
            "member": leaver.pk,
            "rule": "member",
            "takeover": other.pk,
            "include_customers": "on",
            "action": "confirm",
        },
    )
    assert page.status_code == 200 and Handover.objects.count() == 1
    assert charlie_client.get("/api/v1/succession/handovers/").status_code == 200
    assert alice_client.post(f"/succession/{handover.pk}/cancel/").status_code == 302
    assert HandoverItem.objects.filter(handover=handover, status="cancelled").count() == 3


def test_dedup_decisions(world: World, alice_client: Client, charlie_client: Client) -> None:
    corp = world.corp_a
    a = Member.objects.create(corp=corp, userid="a")
    b = Member.objects.create(corp=corp, userid="b")
    outsider = Member.objects.create(corp=corp, userid="c")
    c = Customer.objects.create(corp=corp, external_userid="wmDup", name="双跟进", active_follows=2)
    Follow.objects.create(corp=corp, customer=c, member=a)
    Follow.objects.create(corp=corp, customer=c, member=b)
    url = f"/succession/duplicates/{c.pk}/decide/"
    alice_client.post(url, {"decision": "keep_one", "keep_member": outsider.pk})
    assert not DedupDecision.objects.exists()  # not one of the followers
    alice_client.post(url, {"decision": "keep_all", "note": ""})
    assert not DedupDecision.objects.exists()  # a reason is required
    alice_client.post(url, {"decision": "keep_one", "keep_member": a.pk})
    page = alice_client.get("/succession/duplicates/").content.decode()
    assert "Still to delete the customer in WeCom" in page and "wmDup" in page
    alice_client.post(url, {"decision": "keep_all", "note": "两位都在服务"})
    assert DedupDecision.objects.get().decision == "keep_all"
    assert charlie_client.post(url, {"decision": "keep_all", "note": "x"}).status_code == 404
    assert "wmDup" not in charlie_client.get("/succession/duplicates/").content.decode()
