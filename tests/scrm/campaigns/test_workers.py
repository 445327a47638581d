"""With a real Celery worker killed (SIGKILL) while add_msg_template is in flight: every chunk ends with
exactly one template in WeCom, and nobody is in two templates."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from scrm.campaigns.models import Broadcast, SendChunk
from tests.scrm.acquisition.conftest import wait_for
from tests.scrm.campaigns.conftest import Camp, bulk_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_worker_killed_mid_send_creates_each_template_once(camp: Camp, tmp_path: Path) -> None:
    from tasks.campaigns import send_broadcast

    camp.seed(members=2, customers=30, follows=30, tag_groups=1, seed=12)
    b = camp.approved()
    # WeCom takes 2.5 s to answer: long enough to kill the worker while the first call is in flight.
    camp.sb.limits(camp.corp.corp_id, api="externalcontact/add_msg_template", latency_ms=2500)
    with bulk_worker(tmp_path=tmp_path) as w:
        send_broadcast.apply_async(args=(b.pk,), queue="bulk")
        wait_for(
            lambda: SendChunk.objects.filter(broadcast=b, status=SendChunk.Status.CALLING).exists(),
            timeout=30,
            what=f"a chunk to be claimed\n{w.output()}",
        )
        time.sleep(0.8)  # the request is at WeCom now
        (child,) = w.pool_pids()
        os.kill(child, signal.SIGKILL)
        wait_for(
            lambda: Broadcast.objects.filter(pk=b.pk, status=Broadcast.Status.SENT).exists(),
            timeout=60,
            what=f"the redelivered task to finish\n{w.output()}",
        )
    chunks = list(SendChunk.objects.filter(broadcast=b).order_by("seq"))
    assert {c.status for c in chunks} == {SendChunk.Status.CREATED}
    # The redelivered task took the lapsed chunk over and looked it up in WeCom before calling again.
    # (The sandbox drops a request whose client died during its latency, so the lookup finds nothing
    # and the chunk is created once by the second try; test_send covers a template that did land.)
    assert max(c.tries for c in chunks) >= 2
    assert camp.calls("externalcontact/get_groupmsg_list_v2") >= 1
    records = camp.sb.control(
        "GET", "/sandbox/audit", corp=camp.corp.corp_id, kind="world", name="msg_template_created", limit=1000
    )["records"]
    assert len(records) == len(chunks)
    assert sorted(r["detail"]["msgid"] for r in records) == sorted(c.msgid for c in chunks)
    seen = Counter(x for r in records for targets in r["detail"]["recipients"].values() for x in targets)
    assert seen and max(seen.values()) == 1  # nobody is in two templates
    assert camp.findings()["over_quota"] == 0
