"""Callbacks delivered four times and out of order while WeCom answers -1, 45033 and timeouts on one call in
ten: every acknowledged event is applied once, each new customer welcomed at most once, and our follows
and tags end up as WeCom's."""

from __future__ import annotations

import random

import pytest

from scrm.acquisition import services as acquisition
from scrm.sync.services import full_sync_execute, full_sync_start
from tests.faults.conftest import LONG, Rig, Scale, seed_members

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# One call in ten fails. The short run leaves out 45009: it closes the API for the rest of its minute
# (our breaker, by design), which a short test would spend waiting; the long run includes it.
FAULT_KINDS = {"busy": 4, "concurrent": 3, "timeout": 1, **({"freq": 1} if LONG else {})}


def traffic(rig: Rig, scale: Scale, rng: random.Random) -> None:
    """New customers (each add carries a welcome code), then members and customers editing tags and
    deleting each other, interleaved."""
    for _ in range(scale.customers):
        rig.world("scan")
    actions = ["edit_external_contact"] * 3 + ["del_follow_user", "del_external_contact", "scan"]
    for _ in range(scale.edits):
        rig.world(rng.choice(actions))


def test_callbacks_four_times_out_of_order_under_sandbox_faults(rig: Rig, scale: Scale) -> None:
    seed_members(rig, scale.members)
    run, _ = full_sync_start(corp=rig.corp)  # the tags and members, as onboarding imports them
    full_sync_execute(run_id=run.pk)
    acquisition.script_save(corp=rig.corp, script=None, name="默认", text="你好，欢迎", is_default=True)
    rig.app.start_worker("lanes", "realtime,events,bulk", concurrency=3)

    rig.front.deliveries, rig.front.jitter = 4, 0.5
    rig.faults(rate=0.1, kinds=FAULT_KINDS, timeout_s=11.0)
    traffic(rig, scale, random.Random(9))
    rig.settle(timeout=scale.drain)
    rig.no_faults()
    rig.settle(timeout=scale.drain)  # follow-ups still backing off when the faults stopped

    report = rig.assert_invariants()
    # The storm really happened: every event came four times, some overtook others, WeCom failed calls.
    callbacks = rig.sb.findings(rig.corp.corp_id)["summary"]["callbacks"]
    # (Two events with the same plaintext, e.g. two edits of one follow in one second, are one row.)
    assert len(rig.front.acked) == report.facts["inbox_rows"] > 0
    assert callbacks["attempts"] >= 4 * callbacks["ok"] >= 4 * len(rig.front.acked)
    assert rig.front.reordered > 0
    assert rig.sb.findings(rig.corp.corp_id)["summary"]["api_errors"] > 0
    assert report.facts["welcomes_sent"] > 0
