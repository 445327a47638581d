"""Bulk workers killed (SIGKILL, the whole process) while two broadcasts to the same customers create their
templates at once, and WeCom's answers lost after a template was made (`Rig.lost_answers`): every chunk
ends with at most one template, every template WeCom holds is one of our chunks, and with one mass message
a day allowed nobody is pushed over the receive quota."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal

import pytest

from tests.conftest import World
from tests.faults.conftest import Rig, Scale, wait_for

campaigns = pytest.importorskip("scrm.campaigns.services")
pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_worker_killed_mid_broadcasts_creates_each_template_once_within_quota(
    rig: Rig, scale: Scale, world: World
) -> None:
    from scrm.campaigns.models import Broadcast, SendChunk
    from scrm.sync.services import full_sync_execute, full_sync_start
    from tasks.campaigns import send_broadcast

    corp = rig.corp
    rig.sb.seed(
        corp.corp_id,
        members=scale.members,
        customers=scale.seed_customers // 3,
        follows=scale.seed_customers // 3,
        tag_groups=1,
        groups=0,
        seed=12,
    )
    run, _ = full_sync_start(corp=corp)
    full_sync_execute(run_id=run.pk)
    # Members confirm at once; results can be read right after creation.
    rig.sb.settings(corp.corp_id, confirm_delay=0.0, distribute_seconds=0.0)
    # WeCom takes a second and a half to create a template: the worker dies with one in flight.
    rig.sb.limits(corp.corp_id, api="externalcontact/add_msg_template", latency_ms=1500)
    rig.lost_answers("externalcontact/add_msg_template")

    # One mass message per customer per day, in WeCom and in our settings; two broadcasts to everyone
    # submitted together, sent by two processes at once: the second may reach nobody.
    rig.sb.settings(corp.corp_id, quota_rule="1_per_day")
    campaigns.settings_save(
        corp=corp,
        quota_rule="1_per_day",
        churn_threshold=Decimal("100"),
        approval_required=True,
        dnd_tag=None,
    )
    broadcasts = []
    for name in ("双十一", "双十二"):
        draft = campaigns.broadcast_save(
            corp=corp,
            broadcast=None,
            user=world.bob,
            name=name,
            chat_type="single",
            text=f"{name}优惠，回复 1 了解详情",
            audience={},
            scheduled_at=None,
        )
        broadcasts.append(
            campaigns.broadcast_submit(corp=corp, broadcast=draft, user=world.alice, is_admin=True)
        )
    worker = rig.app.start_worker("bulk-1", "bulk", concurrency=2)
    for b in broadcasts:
        send_broadcast.apply_async(args=(b.pk,), queue="bulk")
    ours = SendChunk.objects.filter(broadcast__in=broadcasts)
    for round_ in range(scale.rounds):
        created = ours.filter(status=SendChunk.Status.CREATED).count()
        wait_for(
            lambda created=created: (
                ours.filter(status=SendChunk.Status.CALLING).exists()
                or ours.filter(status=SendChunk.Status.CREATED).count() > created
            ),
            timeout=60,
            what=f"a chunk being created\n{rig.app.logs()}",
        )
        time.sleep(0.8)  # the request is at WeCom now
        rig.kill(worker, "bulk")
        worker = rig.app.start_worker(f"bulk-{round_ + 2}", "bulk", concurrency=2)
    sending = [Broadcast.Status.SCHEDULED, Broadcast.Status.SENDING]
    wait_for(
        lambda: not Broadcast.objects.filter(pk__in=[b.pk for b in broadcasts], status__in=sending).exists(),
        timeout=scale.drain,
        what=f"the redelivered sends to finish\n{rig.app.logs()}",
    )
    rig.no_faults()

    chunks = list(ours)
    for b in broadcasts:
        b.refresh_from_db()
        assert b.status in (Broadcast.Status.SENT, Broadcast.Status.DONE), (b.status, rig.app.logs())
    assert chunks and {c.status for c in chunks} <= {SendChunk.Status.CREATED, SendChunk.Status.SKIPPED}
    made = [c for c in chunks if c.status == SendChunk.Status.CREATED]
    report = rig.assert_invariants()
    assert report.facts["templates"] == len(made) == report.facts["our_template_rows"]
    assert max(c.tries for c in chunks) >= 2  # a chunk was taken over from the killed worker
    # Everyone got one of the two, nobody both (the sandbox counts it as over_quota otherwise).
    reached = Counter(x for c in made for x in c.targets)
    assert reached and set(reached.values()) == {1}
