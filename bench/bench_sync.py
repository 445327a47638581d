"""Full sync from the WeCom sandbox: seconds and the worker's peak memory.

Starts the sandbox (`python -m wecom.sandbox`) and seeds one corp (default 200 members, 100,000
customers, 2,000 groups of 30) — seeding is not timed — on a scratch database (`scrm_bench_sync`, the dev
database is untouched) and Redis database 12 (flushed). Each run starts a real Celery worker on the bulk
queue (solo pool, so the task runs in the worker process itself), enqueues the full sync the way the
dashboard button does, and reads the worker's peak RSS (VmHWM in /proc/<pid>/status) when the run is done.

Each run measures two syncs: "fresh" (empty tables, as at onboarding) and "resync" (everything already
held, as at night). Reported: seconds from the worker claiming the run to the run finished (and wall
time including worker start), peak RSS, calls and rows, and a check that our tables match the sandbox.

    .venv/bin/python bench/bench_sync.py [--customers 100000] [--members 200] [--groups 2000]
                                         [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import httpx  # noqa: E402
import redis  # noqa: E402

from bench.common import BENCH_REDIS_URL, PY, machine, production_env, scratch_database  # noqa: E402

SANDBOX_PORT = 8913
REDIS_URL = BENCH_REDIS_URL
DB_NAME = "scrm_bench_sync"
CORP_ID = "wwbenchsync000001"
SECRET = "bench-sync-secret-0123456789abcdef"  # noqa: S105  (sandbox-only app secret)
SYNC_TABLES = (
    "sync_syncrun",
    "groups_groupmember",
    "groups_customergroup",
    "customers_follow",
    "customers_customer",
    "customers_tag",
    "customers_taggroup",
    "customers_member",
)


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def start_sandbox(env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [PY, "-m", "wecom.sandbox", "--host", "127.0.0.1", "--port", str(SANDBOX_PORT), "--seed", "1"],
        cwd=REPO_ROOT,
        env={**env, "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{SANDBOX_PORT}/sandbox/corps", timeout=2)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the sandbox did not come up")


def seed_sandbox(args: argparse.Namespace) -> dict[str, Any]:
    control = httpx.Client(base_url=f"http://127.0.0.1:{SANDBOX_PORT}", timeout=600)
    control.post(
        "/sandbox/corps",
        json={"corp_id": CORP_ID, "name": "同步压测", "agent_id": 1000002, "secret": SECRET, "replace": True},
    ).raise_for_status()
    t0 = time.perf_counter()
    answer = control.post(
        f"/sandbox/corps/{CORP_ID}/seed",
        json={
            "members": args.members,
            "customers": args.customers,
            "groups": args.groups,
            "group_size": args.group_size,
            "tag_groups": 10,
            "seed": 5,
        },
    )
    answer.raise_for_status()
    seeded = dict(answer.json())
    seeded["seed_seconds"] = round(time.perf_counter() - t0, 2)
    return seeded


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)  # this process creates the corp and enqueues, on the scratch database
    import django

    django.setup()


def reset_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(SYNC_TABLES)} RESTART IDENTITY CASCADE")
        cursor.execute("VACUUM ANALYZE customers_follow")  # start each fresh run from the same state


def bench_corp() -> Any:
    from scrm.tenancy.models import Corp

    corp, _ = Corp.objects.update_or_create(
        corp_id=CORP_ID,
        defaults={
            "name": "同步压测",
            "agent_id": 1000002,
            "secret": SECRET,
            "callback_token": "BenchToken1",
            "encoding_aes_key": "a" * 43,
            "api_base": f"http://127.0.0.1:{SANDBOX_PORT}/cgi-bin/",
        },
    )
    return corp


class Worker:
    """A Celery worker on the bulk queue. Solo pool: the task runs in the worker process itself, so
    that process's VmHWM is the sync's peak memory. Prefork (one child): as deployed, for the crash run."""

    def __init__(self, env: dict[str, str], name: str, pool: str = "solo") -> None:
        self.proc = subprocess.Popen(
            [
                str(Path(PY).parent / "celery"),
                "-A",
                "tasks",
                "worker",
                "-Q",
                "bulk",
                "--pool",
                pool,
                "--concurrency",
                "1",
                "-n",
                f"{name}@bench",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "INFO",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.ready = threading.Event()
        self.tail: deque[str] = deque(maxlen=40)
        threading.Thread(target=self._drain, daemon=True).start()
        if not self.ready.wait(60):
            self.stop()
            raise SystemExit("the worker did not become ready:\n" + self.log())

    def _drain(self) -> None:  # keep reading: a full pipe would block the worker's logging
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.tail.append(line)
            if " ready." in line:  # "celery@… ready." once it consumes
                self.ready.set()

    def log(self) -> str:
        return "".join(self.tail)

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_sync() -> Any:
    """Enqueues a full sync as the dashboard button does (on commit, to the bulk queue)."""
    from django.db import transaction

    from scrm.sync.models import SyncRun
    from scrm.sync.services import full_sync_start

    with transaction.atomic():
        run, _ = full_sync_start(corp=bench_corp(), trigger=SyncRun.Trigger.MANUAL)
    return run


def wait_done(run: Any, worker: Worker, timeout: float, until: Any = None) -> None:
    from scrm.sync.models import SyncRun

    deadline = time.time() + timeout
    while True:
        run.refresh_from_db()
        if run.status in (SyncRun.Status.DONE, SyncRun.Status.FAILED) or (until is not None and until(run)):
            return
        if time.time() > deadline or worker.proc.poll() is not None:
            raise SystemExit(f"sync did not finish: {run.status}/{run.phase}\n" + worker.log())
        time.sleep(0.2)


def run_summary(run: Any) -> dict[str, Any]:
    assert run.started_at and run.finished_at
    return {
        "status": run.status,
        "error": run.error_detail,
        "seconds": round((run.finished_at - run.started_at).total_seconds(), 2),
        "members": run.members_seen,
        "customers": run.customers_seen,
        "follows": run.follows_seen,
        "groups": run.groups_seen,
        "follows_lost": run.follows_lost,
        "groups_dismissed": run.groups_dismissed,
        "load_avg_1m": os.getloadavg()[0],
    }


def one_sync(env: dict[str, str], kind: str, timeout: float) -> dict[str, Any]:
    """Starts a worker, enqueues a sync, waits for it, reads the worker's peak RSS."""
    worker = Worker(env, f"bulk-{kind}")
    try:
        rss_idle_kb = _status_kb(worker.proc.pid, "VmRSS")
        wall0 = time.perf_counter()
        run = start_sync()
        wait_done(run, worker, timeout)
        wall = time.perf_counter() - wall0
        peak_kb = _status_kb(worker.proc.pid, "VmHWM")
    finally:
        worker.stop()
    return {
        "kind": kind,
        **run_summary(run),
        "wall_seconds": round(wall, 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "idle_rss_mb": round(rss_idle_kb / 1024, 1),
    }


def crash_and_resume(env: dict[str, str], timeout: float, kill_at_follows: int) -> dict[str, Any]:
    """A prefork worker's child is killed (SIGKILL) mid-run: the parent gives the message back
    (acks_late + reject_on_worker_lost), a new child gets it, waits out the dead one's lease, and
    continues from the checkpoint."""
    worker = Worker(env, "bulk-crash", pool="prefork")
    try:
        run = start_sync()
        wait_done(run, worker, timeout, until=lambda r: r.follows_seen >= kill_at_follows)
        at_kill = run.follows_seen
        killed = worker.children()
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        t_kill = time.perf_counter()
        wait_done(run, worker, timeout)
        after_kill = time.perf_counter() - t_kill
    finally:
        worker.stop()
    return {
        "kind": "crash",
        **run_summary(run),
        "killed_child_pids": killed,
        "follows_committed_at_kill": at_kill,
        "seconds_from_kill_to_done": round(after_kill, 2),
    }


def check_tables(seeded: dict[str, Any]) -> dict[str, Any]:
    """Our tables against the sandbox's counts (the whole point of a sync)."""
    from scrm.customers.models import Customer, Follow, FollowStatus
    from scrm.groups.models import CustomerGroup, GroupMember

    ours = {
        "customers": Customer.objects.filter(active_follows__gt=0).count(),
        "follows": Follow.objects.filter(status=FollowStatus.ACTIVE).count(),
        "groups": CustomerGroup.objects.filter(status=CustomerGroup.Status.ACTIVE).count(),
        "group_members": GroupMember.objects.filter(is_active=True).count(),
    }
    ok = all(ours[k] == seeded[k] for k in ("customers", "follows", "groups"))
    return {**ours, "matches_sandbox": ok}


def summarise(results: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    rows = [r for r in results if r["kind"] == kind]
    if not rows:
        return {}
    return {
        "runs": len(rows),
        "seconds_median": statistics.median(r["seconds"] for r in rows),
        "seconds_all": [r["seconds"] for r in rows],
        "wall_seconds_median": statistics.median(r["wall_seconds"] for r in rows),
        "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in rows),
        "peak_rss_mb_max": max(r["peak_rss_mb"] for r in rows),
        "follows_per_second": round(rows[0]["follows"] / statistics.median(r["seconds"] for r in rows)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--group-size", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mode", choices=("both", "fresh", "resync"), default="both")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per sync")
    parser.add_argument(
        "--crash", action="store_true", help="also kill a worker mid-run and check the resumed run"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    def log(*parts: object) -> None:
        print(*parts, file=sys.stderr if args.json else sys.stdout, flush=True)

    db_url = scratch_database(DB_NAME)
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = production_env(db_url=db_url, redis_url=REDIS_URL)
    setup_django(env)
    sandbox = start_sandbox(env)
    try:
        seeded = seed_sandbox(args)
        log(f"seeded in {seeded['seed_seconds']} s (not timed): {seeded}")
        results: list[dict[str, Any]] = []
        checks: list[dict[str, Any]] = []
        kinds = ("fresh", "resync") if args.mode == "both" else (args.mode,)
        if args.mode == "resync":
            reset_tables()
            one_sync(env, "warmup", args.timeout)  # a resync needs the tables filled first
        for i in range(args.runs):
            for kind in kinds:
                if kind == "fresh":
                    reset_tables()
                result = one_sync(env, kind, args.timeout)
                results.append(result)
                checks.append(check_tables(seeded))
                log(f"run {i + 1} {kind}: {result} {checks[-1]}")
        crash: dict[str, Any] | None = None
        if args.crash:
            reset_tables()
            crash = crash_and_resume(env, args.timeout, kill_at_follows=seeded["follows"] // 3)
            crash["check"] = check_tables(seeded)
            log(f"crash and resume: {crash}")
    finally:
        sandbox.send_signal(signal.SIGTERM)
        sandbox.wait(30)
    report: dict[str, Any] = {
        "benchmark": "full sync from the sandbox",
        "machine": machine(),
        "params": vars(args),
        "seeded": seeded,
        "fresh": summarise(results, "fresh"),
        "resync": summarise(results, "resync"),
        "all_match_sandbox": all(c["matches_sandbox"] for c in checks),
        "crash": crash,
        "runs": results,
        "checks": checks,
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    print(f"machine: {report['machine']}")
    for kind in ("fresh", "resync"):
        s = report[kind]
        if s:
            print(
                f"{kind:>6}: median {s['seconds_median']:.1f} s (runs {s['seconds_all']}), "
                f"wall {s['wall_seconds_median']:.1f} s, peak RSS median {s['peak_rss_mb_median']} MB "
                f"(max {s['peak_rss_mb_max']} MB), {s['follows_per_second']} follows/s"
            )
    print(f"tables match the sandbox after every run: {report['all_match_sandbox']}")
    if crash:
        print(
            f"crash: worker child killed at {crash['follows_committed_at_kill']} follows; "
            f"run {crash['status']} {crash['seconds_from_kill_to_done']} s later (lease wait included), "
            f"follows {crash['follows']}, tables match: {crash['check']['matches_sandbox']}"
        )


if __name__ == "__main__":
    main()
