"""Callback endpoint under load, and the events lane keeping up.

Starts the product as in production (gunicorn, DEBUG off) on a scratch database, the `events` and
`realtime` Celery workers, and the WeCom sandbox with the demo corp (so follow-up reads get answers). A
load generator in this process sends encrypted callbacks open-loop at a fixed rate, 10% of them repeat
deliveries of earlier ones (as WeCom's retries would be). Then it waits for the inbox to drain.

    .venv/bin/python bench/bench_callbacks.py [--rate 300] [--seconds 60] [--runs 3] [--json]

Reports per run: achieved rate, answer latency p50/p95/p99, errors, rows stored vs unique events
(exactly once), and how long after the load stopped the last event was applied (drain).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import aiohttp  # noqa: E402
import psycopg2  # noqa: E402
import redis  # noqa: E402

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
from wecom.crypto import CallbackCrypto  # noqa: E402
from wecom.sandbox import demo  # noqa: E402

WEB_PORT, SANDBOX_PORT = 8811, 8911
REDIS_URL = BENCH_REDIS_URL

EVENT = """<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>
<CreateTime>{t}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>
<ChangeType><![CDATA[{change}]]></ChangeType><UserID><![CDATA[{user}]]></UserID>
<ExternalUserID><![CDATA[{ext}]]></ExternalUserID>{extra}</xml>"""
MEMBERS = [m[0] for m in demo.MEMBERS]


def _events(n_unique: int, seed: int) -> list[str]:
    """A realistic mix: adds (a third with a WelcomeCode, for the realtime lane), edits, deletions."""
    rng = random.Random(seed)
    now = int(time.time())
    out = []
    for i in range(n_unique):
        roll = rng.random()
        ext = f"wmBENCH{seed:02d}{i:08d}"
        if roll < 0.6:
            change = "add_external_contact"
            extra = "<State><![CDATA[store_qr]]></State>"
            if rng.random() < 0.33:
                extra += f"<WelcomeCode><![CDATA[WC{seed}{i}]]></WelcomeCode>"
        elif roll < 0.8:
            change, extra = "edit_external_contact", ""
        else:
            change, extra = "del_follow_user", ""
        out.append(
            EVENT.format(
                corp=demo.CORP_ID,
                t=now + i // 1000,
                change=change,
                user=rng.choice(MEMBERS),
                ext=ext,
                extra=extra,
            )
        )
    return out


async def _load(rate: float, seconds: float, bodies: list[tuple[str, bytes]]) -> dict[str, Any]:
    url = f"http://127.0.0.1:{WEB_PORT}/wecom/callback/{demo.CORP_ID}/"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    total = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=5)  # WeCom gives up after 5 s
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int) -> None:
            query, body = bodies[i]
            start = time.perf_counter()
            try:
                async with session.post(
                    f"{url}?{query}", data=body, headers={"Content-Type": "text/xml"}
                ) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
            except (aiohttp.ClientError, TimeoutError):
                statuses[0] = statuses.get(0, 0) + 1
            latencies.append((time.perf_counter() - start) * 1000)

        t0 = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    return {"sent": total, "elapsed_s": elapsed, "latencies": latencies, "statuses": statuses}


def _workers(args: argparse.Namespace, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """The events and realtime lanes, as scripts/dev runs them (none with --no-workers: endpoint only)."""
    if args.no_workers:
        return []
    celery = str(Path(PY).parent / "celery")
    lanes = [("events", args.events_concurrency), ("realtime", 1)]
    # One box plays every role here: the workers run at a lower CPU priority so that answering WeCom
    # (5-s deadline) never waits behind applying events, which may lag and catch up (production puts
    # web and workers on machines of their own).
    return [
        subprocess.Popen(
            [
                "nice",
                "-n",
                str(args.worker_nice),
                celery,
                "-A",
                "tasks",
                "worker",
                "-Q",
                lane,
                "-c",
                str(c),
                "-n",
                f"{lane}@bench",
                "-l",
                "WARNING",
            ],
            cwd=REPO_ROOT,
            env=env,
        )
        for lane, c in lanes
    ]


def run_once(args: argparse.Namespace, run: int) -> dict[str, Any]:
    db_url = scratch_database("scrm_bench_callbacks")
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = production_env(db_url=db_url, redis_url=REDIS_URL)
    sandbox_base = f"http://127.0.0.1:{SANDBOX_PORT}"
    subprocess.run(
        [PY, "manage.py", "seed_demo", "--sandbox", sandbox_base],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    procs = [
        start_sandbox(port=SANDBOX_PORT, env=env),
        start_web(port=WEB_PORT, env=env, workers=args.web_workers, production_conf=True),
        *_workers(args, env),
    ]
    try:
        wait_http(f"http://127.0.0.1:{WEB_PORT}/healthz")
        wait_http(f"{sandbox_base}/sandbox/health")
        total = int(args.rate * args.seconds)
        n_unique = total - total // 10
        crypto = CallbackCrypto(demo.TOKEN, demo.ENCODING_AES_KEY, demo.CORP_ID)
        plaintexts = _events(n_unique, seed=run)
        rng = random.Random(run)
        built: list[tuple[str, bytes]] = []
        unique_iter = iter(plaintexts)
        for i in range(total):
            if i % 10 == 9:  # a repeat delivery of an earlier callback
                built.append(built[rng.randrange(len(built))])
                continue
            query, body = crypto.build_callback(
                next(unique_iter), agent_id=demo.AGENT_ID, timestamp=str(int(time.time()))
            )
            built.append((urlencode(query), body))
        result = asyncio.run(_load(args.rate, args.seconds, built))
        load_end = time.time()
        conn = psycopg2.connect(db_url.replace("postgres://", "postgresql://"))
        conn.autocommit = True
        drained_at = None
        with conn.cursor() as cur:
            while time.time() - load_end < args.drain_timeout:
                cur.execute(
                    "SELECT count(*), count(*) FILTER (WHERE status = 'done') FROM callbacks_inboxevent"
                )
                stored, done = cur.fetchone() or (0, 0)
                if stored == n_unique and (done == stored or args.no_workers):
                    drained_at = time.time()
                    break
                time.sleep(0.25)
            cur.execute(
                "SELECT count(*), count(DISTINCT digest), count(*) FILTER (WHERE status = 'done')"
                " FROM callbacks_inboxevent"
            )
            stored, distinct, done = cur.fetchone() or (0, 0, 0)
        conn.close()
        lat = result["latencies"]
        return {
            "rate_target": args.rate,
            "rate_achieved": round(result["sent"] / result["elapsed_s"], 1),
            "sent": result["sent"],
            "unique_events": n_unique,
            "stored": stored,
            "stored_distinct": distinct,
            "applied": done,
            "errors": sum(v for k, v in result["statuses"].items() if k != 200),
            "p50_ms": round(percentile(lat, 50), 1),
            "p95_ms": round(percentile(lat, 95), 1),
            "p99_ms": round(percentile(lat, 99), 1),
            "drain_s": None if drained_at is None else round(drained_at - load_end, 1),
        }
    finally:
        stop_processes(procs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--drain-timeout", type=float, default=180)
    parser.add_argument("--events-concurrency", type=int, default=2)
    parser.add_argument(
        "--worker-nice", type=int, default=10, help="CPU priority of the workers (0: same as web)"
    )
    parser.add_argument("--no-workers", action="store_true", help="measure the endpoint alone")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = [run_once(args, i) for i in range(args.runs)]
    summary = {
        "benchmark": "callbacks",
        "machine": machine(),
        "command": "python bench/bench_callbacks.py " + " ".join(sys.argv[1:]),
        "runs": runs,
        "median": {
            key: statistics.median([r[key] for r in runs if r[key] is not None] or [float("nan")])
            for key in ("rate_achieved", "p50_ms", "p95_ms", "p99_ms", "drain_s", "errors")
        },
        "exactly_once": all(r["stored"] == r["stored_distinct"] == r["unique_events"] for r in runs),
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return
    print(f"machine: {summary['machine']}")
    for i, r in enumerate(runs, 1):
        print(f"run {i}: {r}")
    print(f"median: {summary['median']}  exactly once: {summary['exactly_once']}")


if __name__ == "__main__":
    main()
