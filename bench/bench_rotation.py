"""Group-code rotation under load: people join a group code's join way in the sandbox while the product
(gunicorn, DEBUG off, a real events worker) applies the callbacks and swaps full groups out.

Starts the product on a scratch database, the `events` Celery worker and the WeCom sandbox with the demo
corp delivering callbacks. A pool of --groups groups (each with its owner) is created in the sandbox and
synced, and a group code over all of them is created through the product. Then --joins people scan the
join way at --rate per second (sandbox world action join_group, each a real callback).

    .venv/bin/python bench/bench_rotation.py [--joins 10000] [--groups 60] [--rate 50] [--runs 1] [--json]

Reports: joins made and refused, rotations, p50/p95/max of callback receipt → update_join_way accepted
for the rotations an event triggered (Rotation.latency_ms; the target is ≤1 s), the rotation's own part
(event applied → update_join_way accepted, Rotation.decide_ms), the margins used, and the
sandbox audit's `capacity` findings (joins refused because every group on the way was full; target 0).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import psycopg2  # noqa: E402
import redis  # noqa: E402

from bench.bench_welcome import _celery, _control, _shell  # noqa: E402
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

WEB_PORT, SANDBOX_PORT = 8812, 8912  # the same ports as bench_welcome (its _control talks to 8912)
REDIS_URL = BENCH_REDIS_URL

SETUP = """
from scrm.groupcodes.services import code_create
from scrm.groups.models import CustomerGroup
from scrm.sync.services import group_refresh
from scrm.tenancy.models import Corp
from wecom.sandbox import demo
corp = Corp.objects.get(corp_id=demo.CORP_ID)
chat_ids = {chat_ids!r}
for c in chat_ids:
    group_refresh(corp=corp, chat_id=c)
groups = [CustomerGroup.objects.get(corp=corp, chat_id=c) for c in chat_ids]
code = code_create(corp=corp, name="bench", groups=groups, capacity={capacity})
print(code.config_id)
"""


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    db_url = scratch_database("scrm_bench_rotation")
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
    procs = [
        start_sandbox(port=SANDBOX_PORT, env=env, callback_url=callback),
        start_web(port=WEB_PORT, env=env, workers=args.web_workers),
        _celery("events", args.events_concurrency, env),
    ]
    try:
        wait_http(f"http://127.0.0.1:{WEB_PORT}/healthz")
        wait_http(f"{sandbox_base}/sandbox/health")
        corp = f"/sandbox/corps/{demo.CORP_ID}"
        if args.capacity != 200:
            _control("POST", f"{corp}/settings", {"qr_capacity": args.capacity})
        owner = demo.MEMBERS[0][0]
        chat_ids = [
            _control(
                "POST", f"{corp}/world/create_group", {"owner": owner, "name": f"池{i + 1}", "deliver": False}
            )["chat_id"]
            for i in range(args.groups)
        ]
        config_id = _shell(SETUP.format(chat_ids=chat_ids, capacity=args.capacity), env)
        started = time.time()
        made = refused = 0
        batch = max(1, int(args.rate // 10))
        while made + refused < args.joins:
            t0 = time.time()
            n = min(batch, args.joins - made - refused)
            out = _control(
                "POST", f"{corp}/world/join_group", {"config_id": config_id, "count": n, "results": False}
            )
            made += int(out.get("count", n) if n > 1 else 1)
            refused += int(out.get("errors", 0) if n > 1 else 0)
            time.sleep(max(0.0, n / args.rate - (time.time() - t0)))
        load_seconds = time.time() - started
        _control("POST", "/sandbox/deliveries/wait", {"timeout": 120})
        conn = psycopg2.connect(db_url.replace("postgres://", "postgresql://"))
        conn.autocommit = True
        with conn.cursor() as cur:
            deadline = time.time() + args.drain_timeout
            while time.time() < deadline:
                cur.execute("SELECT count(*) FROM callbacks_inboxevent WHERE status <> 'done'")
                (pending,) = cur.fetchone() or (0,)
                if not pending:
                    break
                time.sleep(0.5)
            cur.execute("SELECT latency_ms, margin, decide_ms FROM groupcodes_rotation WHERE kind = 'rotate'")
            rows = cur.fetchall()
            cur.execute("SELECT kind, count(*) FROM groupcodes_rotation GROUP BY kind")
            kinds = dict(cur.fetchall())
        conn.close()
        latencies = [float(r[0]) for r in rows if r[0] is not None]
        decisions = [float(r[2]) for r in rows if r[2] is not None]
        findings = _control("GET", f"/sandbox/audit/findings?corp={demo.CORP_ID}")["summary"]
        return {
            "joins": made,
            "refused": refused,
            "rotations": kinds,
            "reaction_p50_ms": round(percentile(latencies, 50), 1),
            "reaction_p95_ms": round(percentile(latencies, 95), 1),
            "reaction_max_ms": max(latencies) if latencies else None,
            "decide_p50_ms": round(percentile(decisions, 50), 1),
            "decide_max_ms": max(decisions) if decisions else None,
            "margin_max": max((int(r[1]) for r in rows), default=None),
            "capacity_findings": findings.get("capacity", 0),
            "load_seconds": round(load_seconds, 1),
            "pending_after_drain": pending,
        }
    finally:
        stop_processes(procs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=60)
    parser.add_argument("--capacity", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50, help="joins per second")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--events-concurrency", type=int, default=2)
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    runs = [run_once(args) for _ in range(args.runs)]
    summary = {
        "benchmark": "rotation",
        "machine": {**machine(), "load_avg_1m_before": load_before},
        "command": "python bench/bench_rotation.py " + " ".join(sys.argv[1:]),
        "runs": runs,
        "median": {
            k: statistics.median([r[k] for r in runs if r[k] is not None] or [float("nan")])
            for k in ("joins", "reaction_p50_ms", "reaction_p95_ms", "reaction_max_ms", "capacity_findings")
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
