"""The sync's button, progress bar, history page and API: roles, htmx polling, and corp isolation."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from scrm.sync.models import SyncRun
from scrm.tenancy.models import Corp
from tests.conftest import World, client_for

pytestmark = pytest.mark.django_db

SECRET_DETAIL = "CORP-A-ONLY-DETAIL"


def running(corp: Corp, **fields: object) -> SyncRun:
    values: dict[str, object] = {
        "status": SyncRun.Status.RUNNING,
        "phase": SyncRun.Phase.CUSTOMERS,
        "started_at": timezone.now(),
        "members_total": 200,
        "members_seen": 200,
        "chunk": 1,
        "follows_seen": 61_000,
        "customers_seen": 50_500,
        "follows_estimate": 120_000,
    }
    values.update(fields)
    return SyncRun.objects.create(corp=corp, **values)


def failed(corp: Corp) -> SyncRun:
    return SyncRun.objects.create(
        corp=corp,
        status=SyncRun.Status.FAILED,
        phase=SyncRun.Phase.TAGS,
        error_code=40001,
        error_key="40001",
        error_detail=SECRET_DETAIL,
        finished_at=timezone.now(),
    )


def test_admins_see_the_button_on_the_overview_and_corp_settings(world: World) -> None:
    alice = client_for(world.alice)
    for url in ("/", "/settings/corp/"):
        page = alice.get(url).content.decode()
        assert 'data-testid="sync-panel"' in page, url
        assert 'data-testid="sync-start"' in page and 'action="/sync/start/"' in page, url
    # Viewers see the progress on the overview, without the button.
    page = client_for(world.victor).get("/").content.decode()
    assert 'data-testid="sync-panel"' in page and 'data-testid="sync-start"' not in page


def test_the_button_starts_one_sync_for_the_current_corp(world: World) -> None:
    alice = client_for(world.alice)
    response = alice.post("/sync/start/", {"next": "/settings/corp/"})
    assert response.status_code == 302 and response["Location"] == "/settings/corp/"
    run = SyncRun.objects.get()
    assert (run.corp, run.requested_by, run.trigger, run.status) == (
        world.corp_a,
        world.alice,
        SyncRun.Trigger.MANUAL,
        SyncRun.Status.QUEUED,
    )
    # Pressing again does not start a second one; an outside "next" is not followed.
    response = alice.post("/sync/start/", {"next": "https://evil.example/"})
    assert response["Location"] == "/sync/"
    assert SyncRun.objects.count() == 1
    # From htmx, the answer is the progress block itself, polling while the run is active.
    partial = alice.post("/sync/start/", {"next": "/"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="sync-progress"' in partial and 'hx-trigger="every 2s"' in partial
    assert "disabled" in partial and "<html" not in partial


def test_only_admins_may_start(world: World) -> None:
    for user in (world.bob, world.victor):
        assert client_for(user).post("/sync/start/").status_code == 403
        assert client_for(user).post("/api/v1/sync/start/").status_code == 403
    assert not SyncRun.objects.exists()


def test_the_progress_block_polls_while_running_and_stops_when_done(world: World) -> None:
    victor = client_for(world.victor)
    run = running(world.corp_a)
    html = victor.get("/sync/progress/?next=/").content.decode()
    assert 'hx-get="/sync/progress/?next=/"' in html and 'hx-trigger="every 2s"' in html
    # 5 + 75 × 61,000 / 120,000 (inside the second of two member chunks' share)
    assert 'data-testid="sync-percent">43%' in html
    assert 'data-testid="sync-customers">50500<' in html and 'data-testid="sync-follows">61000<' in html
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.DONE, phase=SyncRun.Phase.DONE, finished_at=timezone.now(), follows_lost=3
    )
    html = victor.get("/sync/progress/").content.decode()
    assert "hx-trigger" not in html
    assert 'data-testid="sync-percent">100%' in html and 'data-testid="sync-lost">3<' in html


def test_a_failure_is_shown_in_plain_language_with_its_errcode(world: World) -> None:
    failed(world.corp_a)
    zh = client_for(world.alice).get("/sync/progress/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "Secret" in zh and "(errcode 40001)" in zh and 'data-status="failed"' in zh
    en = client_for(world.alice).get("/sync/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "app secret is wrong" in en and "(errcode 40001)" in en
    api = client_for(world.victor).get("/api/v1/sync/", HTTP_ACCEPT_LANGUAGE="en").json()["run"]
    assert (api["status"], api["error_code"]) == ("failed", 40001)
    assert "app secret is wrong" in api["error"]


def test_history_lists_the_corps_runs(world: World) -> None:
    failed(world.corp_a)
    running(world.corp_a)
    html = client_for(world.victor).get("/sync/").content.decode()
    assert html.count("<tr data-run=") == 2
    assert 'data-testid="sync-start"' not in html  # viewers can't start one


def test_api_status_and_start(world: World) -> None:
    victor, alice = client_for(world.victor), client_for(world.alice)
    assert victor.get("/api/v1/sync/").json() == {"run": None}
    created = alice.post("/api/v1/sync/start/")
    assert created.status_code == 201 and created.json()["created"] is True
    again = alice.post("/api/v1/sync/start/")
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["run"]["id"] == created.json()["run"]["id"]
    status = victor.get("/api/v1/sync/").json()["run"]
    assert (status["status"], status["percent"], status["trigger"]) == ("queued", 0, "manual")
    assert Client().get("/api/v1/sync/").status_code in (401, 403)


def test_charlie_never_sees_or_starts_corp_a_syncs(world: World) -> None:
    a_run = failed(world.corp_a)
    running(world.corp_a, follows_seen=77_777, customers_seen=66_666)
    charlie = client_for(world.charlie)
    for url in ("/sync/", "/sync/progress/", "/api/v1/sync/", "/"):
        body = charlie.get(url).content.decode()
        for marker in (SECRET_DETAIL, "77777", "66666", "40001"):
            assert marker not in body, (url, marker)
    assert charlie.get("/api/v1/sync/").json() == {"run": None}
    assert charlie.post("/sync/start/").status_code == 302
    assert charlie.post("/api/v1/sync/start/").status_code == 200  # the one just started for corp B
    assert SyncRun.objects.filter(corp=world.corp_b).count() == 1
    assert SyncRun.objects.filter(corp=world.corp_a).count() == 2
    a_run.refresh_from_db()
    assert a_run.status == SyncRun.Status.FAILED
