"""Workers killed with SIGKILL mid-task, the whole process and its pool at once: nothing is acknowledged and
nothing cleans up. The broker hands the task out again once its visibility timeout lapses (an hour in
production, played at once by procs.redeliver_unacked), a fresh worker takes it, and the leases and
claims in our tables make the second run continue the first rather than repeat it."""

from __future__ import annotations

import pytest

from scrm.acquisition import services as acquisition
from scrm.acquisition.models import WelcomeAttempt
from scrm.customers.models import Follow
from scrm.sync.models import SyncRun
from scrm.sync.services import full_sync_execute, full_sync_start
from tests.faults.conftest import Rig, Scale, seed_members, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_worker_killed_mid_sync_resumes_without_duplicates(rig: Rig, scale: Scale) -> None:
    corp = rig.corp
    seeded = rig.sb.seed(
        corp.corp_id,
        members=scale.members * 2,
        customers=scale.seed_customers,
        follows=scale.seed_follows,
        tag_groups=2,
        groups=3,
        group_size=5,
        seed=11,
    )
    # WeCom answers each page in a quarter of a second: the run lasts long enough to be killed inside.
    rig.sb.limits(corp.corp_id, api="externalcontact/batch/get_by_user", latency_ms=250)
    worker = rig.app.start_worker("bulk-1", "bulk", concurrency=1)
    run, _ = full_sync_start(corp=corp)
    for round_ in range(scale.rounds):
        seen = SyncRun.objects.get(pk=run.pk).follows_seen
        # Killed while it writes follows: a checkpoint behind it, pages still to come.
        wait_for(
            lambda seen=seen: SyncRun.objects.filter(pk=run.pk, follows_seen__gt=seen).exists(),
            timeout=60,
            what=f"the sync to make progress\n{rig.app.logs()}",
        )
        rig.kill(worker, "bulk")
        killed = SyncRun.objects.get(pk=run.pk)
        assert killed.status == SyncRun.Status.RUNNING and killed.follows_seen < seeded["follows"]
        worker = rig.app.start_worker(f"bulk-{round_ + 2}", "bulk", concurrency=1)
    wait_for(
        lambda: SyncRun.objects.filter(pk=run.pk).exclude(status__in=SyncRun.ACTIVE).exists(),
        timeout=scale.drain,
        what=f"the redelivered sync to finish\n{rig.app.logs()}",
    )
    run.refresh_from_db()
    assert run.status == SyncRun.Status.DONE, (run.error_code, rig.app.logs())
    # Every follow written once, none lost and none counted twice across the crashes.
    assert (run.follows_seen, run.follows_lost) == (seeded["follows"], 0)
    assert Follow.objects.filter(corp=corp).count() == seeded["follows"]
    rig.assert_invariants()


def test_worker_killed_mid_welcome_never_welcomes_twice(rig: Rig, scale: Scale) -> None:
    seed_members(rig, scale.members)
    run, _ = full_sync_start(corp=rig.corp)
    full_sync_execute(run_id=run.pk)
    acquisition.script_save(corp=rig.corp, script=None, name="默认", text="你好，欢迎", is_default=True)
    # WeCom takes a second to answer a welcome: the worker dies with calls in flight.
    rig.sb.limits(rig.corp.corp_id, api="externalcontact/send_welcome_msg", latency_ms=1000)
    rig.app.start_worker("events", "events,bulk", concurrency=2)
    realtime = rig.app.start_worker("realtime-1", "realtime", concurrency=2)
    for round_ in range(scale.rounds):
        before = WelcomeAttempt.objects.filter(corp=rig.corp).count()
        for _ in range(max(4, scale.customers // scale.rounds)):
            rig.world("scan")
        wait_for(
            lambda before=before: WelcomeAttempt.objects.filter(corp=rig.corp).count() > before,
            timeout=30,
            what=f"welcomes being sent\n{rig.app.logs()}",
        )
        rig.kill(realtime, "realtime")
        realtime = rig.app.start_worker(f"realtime-{round_ + 2}", "realtime", concurrency=2)
    rig.settle(timeout=scale.drain)

    report = rig.assert_invariants()
    attempts = WelcomeAttempt.objects.filter(corp=rig.corp)
    assert not attempts.filter(status=WelcomeAttempt.Status.CLAIMED).exists()
    assert attempts.filter(tries__gt=1).exists()  # some claim was taken over after the kill
    assert report.facts["welcomes_sent"] > 0
