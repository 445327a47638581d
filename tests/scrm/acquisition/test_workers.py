"""With real Celery workers: a worker killed mid-send still gives exactly one welcome, and concurrent scans
delivered by the sandbox to a live server never push a member over a cap (the sandbox's own audit)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from scrm.acquisition import caps, services
from scrm.acquisition.models import ChannelAdd, ChannelCode, WelcomeAttempt
from scrm.callbacks.models import InboxEvent
from tests.scrm.acquisition.conftest import Acq, wait_for, workers

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_worker_killed_mid_send_gives_exactly_one_welcome(acq: Acq, tmp_path: Path) -> None:
    from tasks.welcome import send_welcome

    (m,) = acq.members(1)
    services.script_save(corp=acq.corp, script=None, name="默认", text="你好", is_default=True)
    code = services.code_create(
        corp=acq.corp, name="杀进程", seats=[services.SeatInput(member=m)], per_minute_cap=10, per_day_cap=100
    )
    # WeCom takes 2.5 s to answer: long enough to kill the worker while the call is in flight.
    acq.sb.limits(acq.corp.corp_id, api="externalcontact/send_welcome_msg", latency_ms=2500)
    with workers("realtime", concurrency=1, tmp_path=tmp_path) as w:
        event_id = acq.store(acq.scan(config_id=code.config_id))
        send_welcome.apply_async(args=(event_id,), queue="realtime")
        wait_for(lambda: WelcomeAttempt.objects.filter(inbox_event_id=event_id).exists(), what="the claim")
        time.sleep(0.8)  # the request is at WeCom now
        (child,) = w.pool_pids()
        os.kill(child, signal.SIGKILL)
        attempt = wait_for(
            lambda: WelcomeAttempt.objects.filter(inbox_event_id=event_id).exclude(status="claimed").first(),
            timeout=25,
            what=f"the redelivered task to finish\n{w.output()}",
        )
    assert attempt.tries == 2  # the redelivery took over the lapsed claim
    assert attempt.status in (WelcomeAttempt.Status.SENT, WelcomeAttempt.Status.ALREADY_SENT)
    assert len(acq.welcomes()) == 1  # WeCom delivered one welcome
    codes = [c for c in acq.data("welcome_codes") if c["used_at"] is not None]
    assert len(codes) == 1
    assert acq.sb.findings(acq.corp.corp_id)["summary"]["late_welcome"] == 0


def _scan_driver(
    acq: Acq, config_id: str, *, start_in: float, seconds: float, rate: float, stats: Counter[str]
) -> None:
    """Customers scanning at `rate` a second. While the code waits for confirmation (paused), WeCom would
    only queue friend requests, which the sandbox does not model: those scans are counted, not made."""
    time.sleep(start_in)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        way = next(w for w in acq.data("contact_ways") if w["config_id"] == config_id)
        if not way["skip_verify"]:
            stats["waiting_for_confirmation"] += 1
        else:
            acq.world("scan", config_id=config_id)
            stats["scanned"] += 1
        time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - started)))


@override_settings(WECOM_CALLBACK_REPLAY_WINDOW=0)
def test_caps_hold_under_concurrent_scans(acq: Acq, live_server: Any, tmp_path: Path) -> None:
    corp = acq.corp
    acq.sb.register_corp(
        corp.corp_id,
        secret=corp.secret,
        agent_id=corp.agent_id,
        callback_url=f"{live_server.url}/wecom/callback/{corp.corp_id}/",
        token=corp.callback_token,
        encoding_aes_key=corp.encoding_aes_key,
    )
    a, b, z = acq.members(3)
    services.script_save(corp=corp, script=None, name="默认", text="你好", is_default=True)
    per_minute, per_day = 8, 12
    code = services.code_create(
        corp=corp,
        name="压测",
        seats=[
            services.SeatInput(member=a),
            services.SeatInput(member=b),
            services.SeatInput(member=z, backup=True),
        ],
        per_minute_cap=per_minute,
        per_day_cap=per_day,
    )
    stats: Counter[str] = Counter()
    with workers("realtime,events", concurrency=3, tmp_path=tmp_path) as w:
        # Three streams of customers, interleaved: one scan a second in all, for 18 s.
        threads = [
            threading.Thread(
                target=_scan_driver,
                args=(acq, code.config_id),
                kwargs={"start_in": float(i), "seconds": 18, "rate": 1 / 3, "stats": stats},
            )
            for i in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        acq.sb.wait_deliveries(timeout=20)
        wait_for(
            lambda: not InboxEvent.objects.filter(corp=corp).exclude(status="done").exists(),
            timeout=60,
            what=f"the inbox to drain\n{w.output()}",
        )
        wait_for(
            lambda: ChannelAdd.objects.filter(code=code).count() == stats["scanned"],
            timeout=30,
            what="every add's follow-up",
        )

    records = acq.sb.control(
        "GET", "/sandbox/audit", corp=corp.corp_id, kind="world", name="add_external_contact", limit=100000
    )
    adds = [r["detail"] for r in records["records"] if r["detail"]["state"] == code.state]
    # More customers than one member may take in a minute: the members had to take turns.
    assert len(adds) == stats["scanned"] > per_minute
    per_member_minute = Counter((d["userid"], caps.minute_of(d["event_time"])) for d in adds)
    per_member_day = Counter((d["userid"], caps.day_of(d["event_time"])) for d in adds)
    assert max(per_member_minute.values()) <= per_minute, per_member_minute
    assert max(per_member_day.values()) <= per_day, per_member_day
    assert z.userid in {d["userid"] for d in adds}  # the backup took over at some point
    assert not ChannelAdd.objects.filter(code=code, over_cap=True).exists()
    assert acq.sb.findings(corp.corp_id)["summary"]["late_welcome"] == 0
    assert WelcomeAttempt.objects.filter(code=code, status="sent").count() == len(adds)
    assert ChannelCode.objects.get(pk=code.pk).routing_changed_at is not None
