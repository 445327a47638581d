"""A 100k-recipient broadcast while customers keep arriving: time from "send" to every template created in
WeCom, the bulk worker's memory, and the welcome lane's latency meanwhile.

The stack as in production (bench_welcome's pieces: gunicorn with DEBUG off on a scratch database, the
`realtime`, `events` and `bulk` Celery workers, the sandbox's demo corp delivering callbacks). The demo
corp is seeded with --customers customers and synced by the product's full sync (not timed). Then, at the
same time:
  - welcome load: customers scan a channel code at --rate per second for --seconds (real callbacks with
    WelcomeCodes, as bench_welcome drives them);
  - one broadcast to every customer, submitted by an admin (approved at once): dispatch, planning into
    chunks (≤10,000 customers per sender), quota reservation and one add_msg_template per chunk, all in
    the bulk lane through the shared rate limiter.

    .venv/bin/python bench/bench_broadcast.py [--customers 100000] [--rate 20] [--seconds 40] [--runs 1]

Reports: seconds from submit to the last template created (Broadcast.created_in_wecom_at − submitted_at),
templates in the sandbox vs chunks, recipients, the sandbox audit's over_quota, the bulk worker's RSS
(baseline before the send, peak while sending, sampled from /proc every 0.2 s), and welcome latency
p50/p95/p99 for adds received while the broadcast was being created and for the whole load.
Targets: ≤30 s to all templates, RSS flat, welcome p99 ≤1 s. Small check: --customers 2000 --rate 5
--seconds 10.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import psycopg2  # noqa: E402
import redis  # noqa: E402

from bench import bench_welcome  # noqa: E402
from bench.bench_welcome import SETUP, START_SYNC, _celery, _control, _shell  # noqa: E402
from bench.common import (  # noqa: E402
    BENCH_REDIS_URL,
    PY,
    machine,
    percentile,
    production_env,
    scratch_database,
    start_sandbox,
    start_web,
    stop_processes,
    wait_http,
)
from wecom.sandbox import demo  # noqa: E402

WEB_PORT, SANDBOX_PORT = 8813, 8913
REDIS_URL = BENCH_REDIS_URL
bench_welcome.SANDBOX_PORT = SANDBOX_PORT  # _control talks to this benchmark's sandbox

SUBMIT = """
from scrm.campaigns import services
from scrm.tenancy.models import Corp
from wecom.sandbox import demo
corp = Corp.objects.get(corp_id=demo.CORP_ID)
b = services.broadcast_save(corp=corp, broadcast=None, user=None, name="bench", chat_type="single",
                            text="双十一会员日：全场满 199 减 30。", audience={}, scheduled_at=None)
b = services.broadcast_submit(corp=corp, broadcast=b, user=None, is_admin=True)
print(b.pk)
"""


def _rss_kib(pid: int) -> int:
    """VmRSS of a process and its children (the Celery pool)."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def _sample(pid: int, stop: threading.Event, out: list[tuple[float, int]]) -> None:
    while not stop.is_set():
        out.append((time.time(), _rss_kib(pid)))
        time.sleep(0.2)


def _wait_sync(cur: Any, timeout: float) -> str:
    deadline = time.time() + timeout
    status = ""
    while time.time() < deadline:
        cur.execute("SELECT status FROM sync_syncrun ORDER BY id DESC LIMIT 1")
        row = cur.fetchone()
        status = row[0] if row else ""
        if status in ("done", "failed"):
            return status
        time.sleep(1.0)
    return status or "timeout"


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    db_url = scratch_database("scrm_bench_broadcast")
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = production_env(db_url=db_url, redis_url=REDIS_URL)
    sandbox_base = f"http://127.0.0.1:{SANDBOX_PORT}"
    callback = f"http://127.0.0.1:{WEB_PORT}/wecom/callback/{demo.CORP_ID}/"
    subprocess.run(
        [PY, "manage.py", "seed_demo", "--sandbox", sandbox_base],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    bulk = _celery("bulk", 1, env, nice=15)
    procs = [
        start_sandbox(port=SANDBOX_PORT, env=env, callback_url=callback),
        start_web(port=WEB_PORT, env=env, workers=args.web_workers),
        _celery("realtime", args.realtime_concurrency, env),
        _celery("events", args.events_concurrency, env, nice=10),
        bulk,
    ]
    stop = threading.Event()
    samples: list[tuple[float, int]] = []
    conn = psycopg2.connect(db_url.replace("postgres://", "postgresql://"))
    conn.autocommit = True
    try:
        wait_http(f"http://127.0.0.1:{WEB_PORT}/healthz")
        wait_http(f"{sandbox_base}/sandbox/health")
        _control("POST", f"/sandbox/corps/{demo.CORP_ID}/seed", {"customers": args.customers, "members": 0})
        _shell(SETUP, env)
        _shell(START_SYNC, env)
        with conn.cursor() as cur:
            sync_status = _wait_sync(cur, args.sync_timeout)
            cur.execute("SELECT count(*) FROM customers_customer WHERE active_follows > 0")
            (customers,) = cur.fetchone() or (0,)
        time.sleep(1.0)
        baseline = _rss_kib(bulk.pid)
        sampler = threading.Thread(target=_sample, args=(bulk.pid, stop, samples), daemon=True)
        sampler.start()
        _control(
            "POST",
            f"/sandbox/corps/{demo.CORP_ID}/traffic",
            {"rate_per_min": args.rate * 60, "duration": args.seconds, "mix": {"scan": 1.0}},
        )
        time.sleep(2.0)  # the welcome lane is busy before the broadcast starts
        broadcast_id = int(_shell(SUBMIT, env))
        with conn.cursor() as cur:
            deadline = time.time() + args.send_timeout
            row: tuple[Any, ...] | None = None
            while time.time() < deadline:
                cur.execute(
                    "SELECT status, submitted_at, created_in_wecom_at, chunks_total, planned"
                    " FROM campaigns_broadcast WHERE id = %s",
                    [broadcast_id],
                )
                row = cur.fetchone()
                if row and row[0] not in ("scheduled", "sending"):
                    break
                time.sleep(0.2)
            assert row is not None
            status, submitted_at, created_at, chunks_total, planned = row
            stop.set()
            cur.execute(
                "SELECT count(*), COALESCE(sum(cardinality(reserved) - cardinality(fail_list)), 0)"
                " FROM campaigns_sendchunk WHERE broadcast_id = %s AND status = 'created'",
                [broadcast_id],
            )
            created_chunks, recipients = cur.fetchone() or (0, 0)
            seconds = (created_at - submitted_at).total_seconds() if created_at and submitted_at else None
            while _control("GET", f"/sandbox/corps/{demo.CORP_ID}/traffic").get("running"):
                time.sleep(0.5)
            _control("POST", "/sandbox/deliveries/wait", {"timeout": 60})
            time.sleep(3.0)  # the last welcomes finish
            cur.execute("SELECT latency_ms FROM acquisition_welcomeattempt WHERE status = 'sent'")
            latencies = [float(r[0]) for r in cur.fetchall()]
            during: list[float] = []
            if submitted_at and created_at:
                cur.execute(
                    "SELECT latency_ms FROM acquisition_welcomeattempt WHERE status = 'sent'"
                    " AND received_at BETWEEN %s AND %s",
                    [submitted_at, created_at],
                )
                during = [float(r[0]) for r in cur.fetchall()]
        templates = _control("GET", f"/sandbox/corps/{demo.CORP_ID}/data/templates?limit=100000")["total"]
        findings = _control("GET", f"/sandbox/audit/findings?corp={demo.CORP_ID}")["summary"]
        window = [kib for t, kib in samples]
        return {
            "sync": sync_status,
            "customers": customers,
            "broadcast_status": status,
            "planned": planned,
            "recipients": int(recipients),
            "chunks": chunks_total,
            "chunks_created": created_chunks,
            "templates_in_sandbox": templates,
            "seconds_to_all_templates": round(seconds, 2) if seconds is not None else None,
            "over_quota_audit": findings["over_quota"],
            "bulk_rss_baseline_mib": round(baseline / 1024, 1),
            "bulk_rss_peak_mib": round(max(window, default=baseline) / 1024, 1),
            "bulk_rss_growth_mib": round((max(window, default=baseline) - baseline) / 1024, 1),
            "welcomes": len(latencies),
            "welcome_p50_ms": round(percentile(latencies, 50), 1),
            "welcome_p99_ms": round(percentile(latencies, 99), 1),
            "welcomes_during_send": len(during),
            "welcome_p99_during_send_ms": round(percentile(during, 99), 1) if during else None,
            "expired_codes_audit": findings["late_welcome"],
            "errcode_45009": findings["errcode_45009"],
        }
    finally:
        stop.set()
        conn.close()
        stop_processes(procs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=20, help="new customers per second (welcome load)")
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--realtime-concurrency", type=int, default=4)
    parser.add_argument("--events-concurrency", type=int, default=2)
    parser.add_argument("--sync-timeout", type=float, default=900)
    parser.add_argument("--send-timeout", type=float, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    runs = [run_once(args) for _ in range(args.runs)]
    keys = ("seconds_to_all_templates", "bulk_rss_growth_mib", "welcome_p99_ms", "welcome_p99_during_send_ms")
    summary = {
        "benchmark": "broadcast",
        "machine": {**machine(), "load_avg_1m_before": load_before},
        "command": "python bench/bench_broadcast.py " + " ".join(sys.argv[1:]),
        "runs": runs,
        "median": {
            k: statistics.median([r[k] for r in runs if r[k] is not None] or [float("nan")]) for k in keys
        },
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return
    print(f"machine: {summary['machine']}")
    for i, r in enumerate(runs, 1):
        print(f"run {i}: {r}")
    print(f"median: {summary['median']}")


if __name__ == "__main__":
    main()
