"""The event inbox page and API: status and error per event, filters, and replay for admins only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import timezone

from scrm.callbacks.models import InboxEvent, InboxStatus
from scrm.tenancy.models import Corp
from tests.conftest import World, client_for


def event(corp: Corp, n: int, kind: str, status: str, error: str = "") -> InboxEvent:
    return InboxEvent.objects.create(
        corp=corp,
        digest=f"d{n}",
        kind=kind,
        lane="events",
        payload="<xml/>",
        event_time=1_700_000_000 + n,
        received_at=timezone.now(),
        status=status,
        attempts=5 if status == InboxStatus.FAILED else 1,
        last_error=error,
    )


@pytest.fixture
def events(world: World) -> dict[str, InboxEvent]:
    return {
        "done": event(world.corp_a, 1, "change_external_contact.add_external_contact", InboxStatus.DONE),
        "failed": event(
            world.corp_a,
            2,
            "change_external_chat.update",
            InboxStatus.FAILED,
            "IntegrityError: duplicate key value violates unique constraint",
        ),
        "beta": event(world.corp_b, 3, "change_contact.create_user", InboxStatus.FAILED, "BetaError: secret"),
    }


def rows(html: str) -> list[str]:
    return re.findall(r'data-event="(\d+)"', html)


@pytest.mark.django_db
def test_inbox_lists_status_and_error(world: World, events: dict[str, InboxEvent]) -> None:
    client = client_for(world.victor)
    html = client.get("/events/").content.decode()
    assert rows(html) == [str(events["failed"].pk), str(events["done"].pk)]  # newest first
    assert "IntegrityError: duplicate key value" in html
    assert "BetaError" not in html
    assert 'data-testid="replay"' not in html  # viewers can't replay
    failed = client.get("/events/?status=failed").content.decode()
    assert rows(failed) == [str(events["failed"].pk)]
    by_kind = client.get("/events/?kind=change_external_contact.add_external_contact").content.decode()
    assert rows(by_kind) == [str(events["done"].pk)]
    assert 'data-testid="replay"' in client_for(world.alice).get("/events/").content.decode()


@pytest.mark.django_db
def test_admin_replays_an_event(
    world: World, events: dict[str, InboxEvent], django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    enqueued: list[tuple[int, str]] = []

    def fake_enqueue(*, event_id: int, lane: str) -> bool:
        enqueued.append((event_id, lane))
        return True

    monkeypatch.setattr("scrm.callbacks.services.inbox_enqueue", fake_enqueue)
    failed = events["failed"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(world.alice).post(
            f"/events/{failed.pk}/replay/", {"next": "/events/?status=failed"}
        )
    assert response.status_code == 302 and response["Location"] == "/events/?status=failed"
    failed.refresh_from_db()
    assert failed.status in (InboxStatus.PENDING, InboxStatus.QUEUED) and failed.attempts == 0
    assert enqueued == [(failed.pk, "events")]


@pytest.mark.django_db
def test_replay_is_admin_only_and_corp_scoped(world: World, events: dict[str, InboxEvent]) -> None:
    failed = events["failed"]
    assert client_for(world.bob).post(f"/events/{failed.pk}/replay/").status_code == 403
    assert client_for(world.victor).post(f"/events/{failed.pk}/replay/").status_code == 403
    assert client_for(world.alice).get(f"/events/{failed.pk}/replay/").status_code == 405
    assert client_for(world.charlie).post(f"/events/{failed.pk}/replay/").status_code == 404
    assert client_for(world.alice).post("/events/x/replay/").status_code == 404
    # an unsafe next is ignored
    response = client_for(world.alice).post(f"/events/{failed.pk}/replay/", {"next": "https://evil.example/"})
    assert response["Location"] == "/events/"
    failed.refresh_from_db()
    events["beta"].refresh_from_db()
    assert events["beta"].status == InboxStatus.FAILED


@pytest.mark.django_db
def test_inbox_api_list_and_replay(world: World, events: dict[str, InboxEvent]) -> None:
    body = client_for(world.victor).get("/api/v1/inbox/?status=failed").json()
    assert [e["id"] for e in body["results"]] == [events["failed"].pk]
    assert (
        body["results"][0]["last_error"].startswith("IntegrityError") and "payload" not in body["results"][0]
    )
    failed = events["failed"]
    assert client_for(world.bob).post(f"/api/v1/inbox/{failed.pk}/replay/").status_code == 403
    assert client_for(world.charlie).post(f"/api/v1/inbox/{failed.pk}/replay/").status_code == 404
    response = client_for(world.alice).post(f"/api/v1/inbox/{failed.pk}/replay/")
    failed.refresh_from_db()
    assert failed.status in (InboxStatus.PENDING, InboxStatus.QUEUED) and failed.attempts == 0
    assert response.status_code == 202 and response.json() == {"id": failed.pk, "status": failed.status}
    charlie = client_for(world.charlie).get("/api/v1/inbox/").json()["results"]
    assert [e["id"] for e in charlie] == [events["beta"].pk]
