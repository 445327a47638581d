"""A bulk worker killed (SIGKILL, the whole process) while it requests a leaver's customer transfers, and
WeCom's answers lost after the transfer started (`Rig.lost_answers`): every customer is requested once
(WeCom's transfers and our items agree), none twice from the same member."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django.utils import timezone

from tests.faults.conftest import Rig, Scale, wait_for

succession = pytest.importorskip("scrm.succession.services")
pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_worker_killed_mid_transfer_requests_each_customer_once(rig: Rig, scale: Scale) -> None:
    from scrm.customers.models import Member
    from scrm.customers.services import member_mark_left
    from scrm.succession.models import HandoverItem, ItemStatus, TransferBatch
    from scrm.sync.services import full_sync_execute, full_sync_start

    corp = rig.corp
    customers = scale.seed_customers  # more than one batch of 100
    rig.sb.seed(
        corp.corp_id, members=1, customers=customers, follows=customers, tag_groups=0, groups=0, seed=3
    )
    rig.sb.seed(corp.corp_id, members=1, customers=0, follows=0, tag_groups=0, contact_ways=0, seed=4)
    run, _ = full_sync_start(corp=corp)
    full_sync_execute(run_id=run.pk)
    leaver_userid = rig.data("members")[0]["userid"]
    rig.world("resign", userid=leaver_userid)
    leaver = member_mark_left(corp=corp, userid=leaver_userid, at=timezone.now())
    heir = Member.objects.filter(corp=corp).exclude(pk=leaver.pk).get()
    # WeCom takes a second and a half to answer: the worker dies with a batch in flight.
    rig.sb.limits(corp.corp_id, api="externalcontact/resigned/transfer_customer", latency_ms=1500)
    rig.lost_answers("externalcontact/resigned/transfer_customer")

    rig.app.start_worker("events", "events", concurrency=1)  # the leaver's delete_user callback, among others
    worker = rig.app.start_worker("bulk-1", "bulk", concurrency=1)
    handover = succession.handover_create(
        corp=corp, kind="resigned", member=leaver, rule="member", takeover=heir
    )
    for round_ in range(scale.rounds):
        answered = TransferBatch.objects.filter(handover=handover).exclude(status="claimed").count()
        wait_for(
            lambda answered=answered: (
                TransferBatch.objects.filter(handover=handover, status="claimed").exists()
                or TransferBatch.objects.filter(handover=handover).exclude(status="claimed").count()
                > answered
            ),
            timeout=60,
            what=f"a batch being requested\n{rig.app.logs()}",
        )
        time.sleep(0.8)  # the request is at WeCom now
        rig.kill(worker, "bulk")
        worker = rig.app.start_worker(f"bulk-{round_ + 2}", "bulk", concurrency=1)
    open_items = HandoverItem.objects.filter(
        handover=handover, status__in=[ItemStatus.PENDING, ItemStatus.REQUESTING]
    )
    wait_for(lambda: not open_items.exists(), timeout=scale.drain, what=f"every request\n{rig.app.logs()}")
    rig.no_faults()
    rig.settle(timeout=scale.drain)

    # (Not state_converged: the leaver's follows stay ours until the transfers complete in 24 hours.)
    report = rig.assert_invariants(
        "no_event_lost",
        "no_duplicate_welcome",
        "no_customer_over_quota",
        "no_template_created_twice",
        "no_transfer_requested_twice",
    )
    items = Counter(HandoverItem.objects.filter(handover=handover).values_list("status", flat=True))
    assert items == {ItemStatus.WAITING: customers}, items
    started = [t["external_userid"] for t in rig.data("transfers")]
    assert len(started) == len(set(started)) == customers  # WeCom holds one transfer per customer
    assert report.facts["transfer_requests"] >= 2
