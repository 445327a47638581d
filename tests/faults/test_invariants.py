"""The checker itself: each invariant finds the violation it is there for, in the sandbox's audit or in our
tables, and is quiet when nothing is wrong."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.utils import timezone

from scrm.callbacks.models import InboxEvent, InboxStatus
from tests.conftest import World
from tests.faults.conftest import link_corp
from tests.faults.invariants import Checker, our_msgids
from wecom.sandbox.testing import SandboxServer

pytestmark = [pytest.mark.faults, pytest.mark.django_db]


@pytest.fixture
def linked(world: World, sandbox: SandboxServer) -> Any:
    link_corp(sandbox, world.corp_a, "")
    sandbox.seed(world.corp_a.corp_id, members=3, customers=6, follows=6, tag_groups=1, groups=0, seed=5)
    return world.corp_a


def names(report: Any) -> list[str]:
    return [v.invariant for v in report.violations]


def test_a_chunk_sent_as_two_templates_is_found(linked: Any, sandbox: SandboxServer) -> None:
    token = sandbox.token(linked.corp_id, linked.secret)
    customers = sandbox.data(linked.corp_id, "customers")
    sender = customers[0]["follows"][0]["userid"]
    chunk = [c["external_userid"] for c in customers if sender in {f["userid"] for f in c["follows"]}]
    body = {"chat_type": "single", "sender": sender, "external_userid": chunk, "text": {"content": "双十一"}}
    path = "externalcontact/add_msg_template"
    assert sandbox.api("POST", path, token, body)["errcode"] == 0
    checker = Checker(sandbox, linked, templates_ours=False)
    assert checker.check("no_template_created_twice").ok
    if our_msgids(linked) is not None:  # the broadcasts app keeps msgids: this template is none of ours
        found = Checker(sandbox, linked).check("no_template_created_twice").violations
        assert [v.detail for v in found] == ["1 templates WeCom created that we never recorded"]
    assert sandbox.api("POST", path, token, body)["errcode"] == 0  # a retry after a lost answer
    assert names(checker.check("no_template_created_twice")) == ["no_template_created_twice"]


def test_a_customer_asked_for_twice_is_found(linked: Any, sandbox: SandboxServer) -> None:
    token = sandbox.token(linked.corp_id, linked.secret)
    members = [m["userid"] for m in sandbox.data(linked.corp_id, "members")]
    customer = sandbox.data(linked.corp_id, "customers")[0]
    handover = customer["follows"][0]["userid"]
    takeover = next(m for m in members if m not in {f["userid"] for f in customer["follows"]})
    body = {
        "handover_userid": handover,
        "takeover_userid": takeover,
        "external_userid": [customer["external_userid"]],
    }
    first = sandbox.api("POST", "externalcontact/transfer_customer", token, body)
    assert first["customer"][0]["errcode"] == 0
    checker = Checker(sandbox, linked)
    assert checker.check("no_transfer_requested_twice").ok
    again = sandbox.api("POST", "externalcontact/transfer_customer", token, body)
    assert again["customer"][0]["errcode"] == 40129  # WeCom refuses it, the request was still a duplicate
    assert names(checker.check("no_transfer_requested_twice")) == ["no_transfer_requested_twice"]


def test_lost_and_unapplied_events_and_diverged_state_are_found(linked: Any, sandbox: SandboxServer) -> None:
    stored = "<xml>stored</xml>"
    InboxEvent.objects.create(
        corp=linked,
        digest=hashlib.sha256(stored.encode()).hexdigest(),
        kind="change_external_contact.add_external_contact",
        lane="events",
        payload=stored,
        event_time=1,
        received_at=timezone.now(),
        status=InboxStatus.QUEUED,
    )
    lost = hashlib.sha256(b"<xml>acknowledged, never stored</xml>").hexdigest()
    report = Checker(sandbox, linked, acked={lost}).check("no_event_lost", "state_converged")
    found = [str(v) for v in report.violations]
    assert any("queued" in v for v in found) and any(
        "1 acknowledged callbacks not in the inbox" in v for v in found
    )
    # Nothing synced: every follow WeCom has is missing on our side.
    assert names(report).count("state_converged") == report.facts["follows"] == 6


def test_a_quiet_corp_passes_every_invariant(linked: Any, sandbox: SandboxServer) -> None:
    from scrm.sync.services import full_sync_execute, full_sync_start

    run, _ = full_sync_start(corp=linked)
    full_sync_execute(run_id=run.pk)
    report = Checker(sandbox, linked, acked=set()).check()
    assert report.ok, report
    assert len(report.checked) == 6


def test_a_second_welcome_attempt_for_one_add_is_found(linked: Any, sandbox: SandboxServer) -> None:
    from scrm.acquisition.models import WelcomeAttempt

    now = timezone.now()
    for n in range(2):  # the same customer's add, claimed twice (two inbox rows for one event)
        xml = f"<xml>add {n}</xml>"
        event = InboxEvent.objects.create(
            corp=linked,
            digest=hashlib.sha256(xml.encode()).hexdigest(),
            kind="change_external_contact.add_external_contact",
            lane="realtime",
            payload=xml,
            event_time=1,
            received_at=now,
            status=InboxStatus.DONE,
        )
        WelcomeAttempt.objects.create(
            corp=linked,
            inbox_event=event,
            userid="zhangsan",
            external_userid="wmDUPLICATE",
            event_time=1,
            received_at=now,
            lease_until=now,
            status=WelcomeAttempt.Status.SENT,
        )
    found = [v.detail for v in Checker(sandbox, linked).check("no_duplicate_welcome").violations]
    assert "2 attempts say sent, WeCom saw 0" in found
    assert "('zhangsan', 'wmDUPLICATE'): 2 welcome attempts for 0 adds" in found
