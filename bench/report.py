"""The benchmark report: runs every benchmark in bench/ and rewrites the table in BENCHMARKS.md.

    scripts/bench                      # every benchmark at the issue's sizes (~35-40 min), then BENCHMARKS.md
    scripts/bench --only sync,welcome  # some of them; printed only (add --write to merge into the table)
    scripts/bench --quick              # small sizes, a few minutes: checks the command; never writes
    scripts/bench --list               # the benchmarks, their commands and estimated durations

Each benchmark runs as a subprocess with `--json`, in its own process group and with a time limit. A
benchmark that fails (exit status, time limit, no JSON) is a "failed" row and the others still run; the
command exits non-zero at the end if any failed. Targets that are missed are shown as such but do not
change the exit status. The raw JSON goes to bench/results/latest.json (bench/results/quick.json for
--quick), and the table with the machine it ran on goes between the markers in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # runnable as a plain script from a fresh clone
    sys.path.insert(0, str(REPO_ROOT))

from bench.common import BENCH_REDIS_URL, PY  # noqa: E402

BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
RESULTS_DIR = REPO_ROOT / "bench" / "results"
LOG_DIR = REPO_ROOT / ".run" / "bench"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
# A quick run keeps the 1M-follow database of the full run untouched.
QUICK_LIST_DB = "postgres://root@127.0.0.1:5432/scrm_bench_list_quick"
FULL_LIST_DB = "postgres://root@127.0.0.1:5432/scrm_bench_list"  # bench_customer_list's default
LIST_BUILD_S = 120
LIST_BENCHES = ("customer_list", "audience")  # share the 1M-follow database; the first to run builds it

Json = dict[str, Any]


# -- what each benchmark is checked against -------------------------------------------------------------


def dig(data: Json, *path: str | int) -> Any:
    """data[path[0]][path[1]]…, None when a key is missing or the value is not a number-like leaf."""
    cur: Any = data
    for key in path:
        in_list = isinstance(cur, list) and isinstance(key, int) and -len(cur) <= key < len(cur)
        if in_list or (isinstance(cur, dict) and key in cur):
            cur = cur[key]
        else:
            return None
    if isinstance(cur, float) and math.isnan(cur):
        return None
    return cur


def num(value: Any, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = f"{value:,.{digits}f}" if isinstance(value, int | float) else str(value)
    return f"{text}{unit}"


def series(values: list[Any], unit: str = "", digits: int = 0) -> str:
    """The per-run figures behind a median, e.g. "runs 410 · 464 · 520 ms"."""
    shown = [num(v, "", digits) for v in values if v is not None]
    return f"runs {' · '.join(shown)}{unit}" if len(shown) > 1 else ""


@dataclass(frozen=True)
class Check:
    what: str
    target: str  # as the issue states it; "—" for a figure reported without a target
    value: Callable[[Json], Any]
    show: Callable[[Any], str]
    ok: Callable[[Any], bool] | None = None  # None: informational (unless ok_whole)
    detail: Callable[[Json], str] = lambda _r: ""
    ok_whole: Callable[[Json], bool] | None = None  # a verdict that needs the whole result


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    full: list[str]
    quick: list[str]
    estimate_s: tuple[int, int]  # (full, quick) wall seconds on the reference machine
    ports: tuple[int, ...] = ()  # fixed ports the benchmark listens on (checked free before it starts)
    checks: list[Check] = field(default_factory=list)

    def argv(self, quick: bool) -> list[str]:
        return [f"bench/{self.script}", *(self.quick if quick else self.full), "--json"]

    def timeout_s(self, quick: bool) -> int:
        return max(300, 3 * self.estimate_s[1]) if quick else 2 * self.estimate_s[0] + 300


def ms(v: Any) -> str:
    return num(v, " ms", 1 if isinstance(v, float) and v < 100 else 0)


def runs_of(key: str, unit: str = "", digits: int = 0) -> Callable[[Json], str]:
    return lambda r: series([x.get(key) for x in r.get("runs", [])], unit, digits)


def sync_runs(kind: str) -> Callable[[Json], str]:
    return lambda r: series(dig(r, kind, "seconds_all") or [], " s", 1)


def worst_p95(r: Json) -> tuple[str, float] | None:
    scenarios = r.get("results") or {}
    worst = max(scenarios.items(), key=lambda kv: kv[1].get("p95_ms", 0), default=None)
    return (worst[0], worst[1]["p95_ms"]) if worst else None


def callbacks_sustained(r: Json) -> bool:
    """300/s sustained: the open-loop generator achieved the rate (within 3%: it counts the time the last
    answers took), no errors, and every unique event stored exactly once."""
    runs = r.get("runs") or []
    achieved = dig(r, "median", "rate_achieved")
    return (
        achieved is not None
        and achieved >= 0.97 * 300
        and all(x.get("errors") == 0 for x in runs)
        and bool(r.get("exactly_once"))
    )


BENCHMARKS: list[Bench] = [
    Bench(
        "callback_parse",
        "bench_callback_parse.py",
        ["--seconds", "3", "--runs", "5"],
        ["--seconds", "0.5", "--runs", "2"],
        (35, 5),
        checks=[
            Check(
                "verify + decrypt + parse one add_external_contact callback, one core",
                "—",
                lambda r: r.get("median_callbacks_per_s"),
                lambda v: num(v, " callbacks/s"),
                detail=lambda r: (
                    f"{num(r.get('per_call_us'), ' µs', 0)} each: "
                    f"{num(r.get('verify_decrypt_us'), ' µs', 0)} verify+decrypt, "
                    f"{num(r.get('parse_us'), ' µs', 0)} parse"
                ),
            )
        ],
    ),
    Bench(
        "sandbox",
        "bench_sandbox.py",
        ["--runs", "5"],
        ["--runs", "1", "--duration", "1", "--deliveries", "500", "--members", "50", "--follows", "5000"],
        (90, 15),
        checks=[
            Check(
                "sandbox ceiling: API calls/s, mixed, one core",
                "≥ 2,000/s",
                lambda r: dig(r, "api", "median_calls_per_s"),
                lambda v: num(v, "/s"),
                lambda v: v >= 2000,
                lambda r: series([x.get("calls_per_s") for x in dig(r, "api", "runs") or []]),
            ),
            Check(
                "sandbox ceiling: callback deliveries/s, one core",
                "≥ 500/s",
                lambda r: dig(r, "callbacks", "median_deliveries_per_s"),
                lambda v: num(v, "/s"),
                lambda v: v >= 500,
                lambda r: series([x.get("deliveries_per_s") for x in dig(r, "callbacks", "runs") or []]),
            ),
        ],
    ),
    Bench(
        "gate",
        "bench_gate.py",
        [],
        ["--runs", "20"],
        (20, 8),
        checks=[
            Check(
                "sensitive-word gate on a 1,300-character welcome (warm), p95",
                "—",
                lambda r: dig(r, "results", "gate_welcome_warm", "p95_ms"),
                ms,
                detail=lambda r: (
                    f"after a list change {ms(dig(r, 'results', 'gate_after_list_change', 'p95_ms'))}; "
                    f"highlight 4,000 chars {ms(dig(r, 'results', 'highlight_4000_chars', 'p95_ms'))}; "
                    f"worst pattern over 20,000 chars "
                    f"{ms(dig(r, 'results', 'worst_pattern_20000_chars', 'p95_ms'))}"
                ),
            )
        ],
    ),
    Bench(
        "customer_list",
        "bench_customer_list.py",
        ["--runs", "200"],
        [
            "--database-url",
            QUICK_LIST_DB,
            "--customers",
            "6000",
            "--follows",
            "10000",
            "--members",
            "20",
            "--runs",
            "5",
            "--warmup",
            "1",
        ],
        (250, 10),  # 120 s of it builds the 1M-follow database, when it is not there yet
        checks=[
            Check(
                "customer list at 1M follows, 2 tags AND + 1 excluded (server time), p95",
                "≤ 200 ms",
                lambda r: dig(r, "results", "two_tags_and_one_not", "p95_ms"),
                ms,
                lambda v: v <= 200,
                lambda r: (
                    f"{num(dig(r, 'results', 'two_tags_and_one_not', 'matched_customers'))} matches; "
                    f"derived columns wrong in a sample of 500: "
                    f"{num(dig(r, 'data', 'derived_columns_mismatches_in_sample_of_500'))}; "
                    f"whole view p95 {ms(dig(r, 'results', 'view_two_tags_and_one_not', 'p95_ms'))}; "
                    f"no filter p95 {ms(dig(r, 'results', 'no_filter', 'p95_ms'))}"
                ),
            )
        ],
    ),
    Bench(
        "audience",
        "bench_audience.py",
        [],  # the same database and sizes as customer_list: its 1M follows are built once
        [
            "--database-url",
            QUICK_LIST_DB,
            "--customers",
            "6000",
            "--follows",
            "10000",
            "--members",
            "20",
            "--at-quota",
            "500",
            "--runs",
            "5",
            "--warmup",
            "1",
        ],
        (120, 5),
        checks=[
            Check(
                "broadcast audience preview at 1M follows, p95 of the slowest of 4 scenarios",
                "≤ 1 s",
                lambda r: (worst_p95(r) or (None, None))[1],
                ms,
                lambda v: v <= 1000,
                lambda r: (
                    f"slowest: {(worst_p95(r) or ('n/a', 0))[0]}; 2 tags AND + 1 NOT "
                    f"{num(dig(r, 'results', 'two_tags_and_one_not', 'recipients'))} recipients, "
                    f"p95 {ms(dig(r, 'results', 'two_tags_and_one_not', 'p95_ms'))}"
                ),
            )
        ],
    ),
    Bench(
        "sync",
        "bench_sync.py",
        ["--customers", "100000", "--members", "200", "--groups", "2000", "--runs", "3", "--crash"],
        ["--customers", "2000", "--members", "20", "--groups", "40", "--runs", "1"],
        (450, 15),
        ports=(8913,),
        checks=[
            Check(
                "full sync, 100k customers / 200 members / 2,000 groups, first (empty tables)",
                "≤ 120 s",
                lambda r: dig(r, "fresh", "seconds_median"),
                lambda v: num(v, " s", 1),
                lambda v: v <= 120,
                sync_runs("fresh"),
            ),
            Check(
                "full sync, repeat (everything held)",
                "≤ 120 s",
                lambda r: dig(r, "resync", "seconds_median"),
                lambda v: num(v, " s", 1),
                lambda v: v <= 120,
                sync_runs("resync"),
            ),
            Check(
                "full sync, worker peak RSS (max of runs)",
                "≤ 400 MB",
                lambda r: max(
                    (
                        x
                        for x in (dig(r, "fresh", "peak_rss_mb_max"), dig(r, "resync", "peak_rss_mb_max"))
                        if x is not None
                    ),
                    default=None,
                ),
                lambda v: num(v, " MB"),
                lambda v: v <= 400,
            ),
            Check(
                "full sync, tables match the sandbox after every run",
                "yes",
                lambda r: r.get("all_match_sandbox"),
                lambda v: num(v),
                lambda v: v is True,
            ),
            Check(
                "full sync, worker killed (SIGKILL) mid-run: resumed from its checkpoint",
                "done, tables match",
                lambda r: (
                    None
                    if not r.get("crash")
                    else (dig(r, "crash", "status") == "done" and dig(r, "crash", "check", "matches_sandbox"))
                ),
                lambda v: num(v),
                lambda v: v is True,
                lambda r: (
                    f"{num(dig(r, 'crash', 'seconds_from_kill_to_done'), ' s', 1)} from the kill to done "
                    "(90-s lease included)"
                    if r.get("crash")
                    else "not run (no --crash)"
                ),
            ),
        ],
    ),
    Bench(
        "callbacks",
        "bench_callbacks.py",
        ["--rate", "300", "--seconds", "60", "--runs", "3"],
        ["--rate", "50", "--seconds", "5", "--runs", "1", "--drain-timeout", "60"],
        (480, 20),
        ports=(8811, 8911),
        checks=[
            Check(
                "callback endpoint: 300/s offered for 60 s, achieved (0 errors, each event stored once)",
                "≥ 300/s sustained",
                lambda r: dig(r, "median", "rate_achieved"),
                lambda v: num(v, "/s", 1),
                detail=runs_of("rate_achieved", "/s", 1),
                ok_whole=callbacks_sustained,
            ),
            Check(
                "callback endpoint: answer p99",
                "≤ 100 ms",
                lambda r: dig(r, "median", "p99_ms"),
                ms,
                lambda v: v <= 100,
                runs_of("p99_ms", " ms"),
            ),
            Check(
                "events lane: backlog drained after the load stops",
                "≤ 60 s",
                lambda r: dig(r, "median", "drain_s"),
                lambda v: num(v, " s", 1),
                lambda v: v <= 60,
                runs_of("drain_s", " s", 1),
            ),
        ],
    ),
    Bench(
        "welcome",
        "bench_welcome.py",
        ["--rate", "50", "--seconds", "60", "--runs", "3"],
        ["--rate", "5", "--seconds", "8", "--runs", "1", "--bulk-customers", "1000"],
        (300, 35),
        ports=(8812, 8912),
        checks=[
            Check(
                "welcome, callback → send_welcome_msg accepted, 50 adds/s with the bulk lane busy, p99",
                "≤ 1 s",
                lambda r: dig(r, "median", "p99_ms"),
                ms,
                lambda v: v <= 1000,
                runs_of("p99_ms", " ms"),
            ),
            Check(
                "welcome codes expired (sandbox audit) + 45009 answers",
                "0",
                lambda r: (
                    None
                    if dig(r, "median", "expired_codes_audit") is None
                    else max(x["expired_codes_audit"] + x["errcode_45009"] for x in r.get("runs", []))
                ),
                lambda v: num(v),
                lambda v: v == 0,
                lambda r: f"adds (median) {num(dig(r, 'median', 'adds'))}",
            ),
        ],
    ),
    Bench(
        "broadcast",
        "bench_broadcast.py",
        ["--customers", "100000", "--rate", "50", "--seconds", "40", "--runs", "1"],
        ["--customers", "2000", "--rate", "5", "--seconds", "10", "--runs", "1"],
        (180, 40),
        ports=(8813, 8913),
        checks=[
            Check(
                "broadcast to 100k customers, 50 welcome adds/s alongside: submit → every template created",
                "≤ 30 s",
                lambda r: dig(r, "median", "seconds_to_all_templates"),
                lambda v: num(v, " s", 1),
                lambda v: v <= 30,
                lambda r: "; ".join(
                    f"{num(x.get('recipients'))} recipients, {num(x.get('templates_in_sandbox'))} templates "
                    f"for {num(x.get('chunks'))} chunks, over quota {num(x.get('over_quota_audit'))}"
                    for x in r.get("runs", [])
                ),
            ),
            Check(
                "broadcast: bulk worker RSS growth while sending",
                "flat (≤ 50 MiB)",
                lambda r: dig(r, "median", "bulk_rss_growth_mib"),
                lambda v: num(v, " MiB", 1),
                lambda v: v <= 50,
                lambda r: (
                    series([x.get("bulk_rss_peak_mib") for x in r.get("runs", [])], " MiB peak", 1)
                    or f"peak {num(dig(r, 'runs', 0, 'bulk_rss_peak_mib'), ' MiB', 1)}"
                ),
            ),
            Check(
                "broadcast: welcome p99 while the broadcast was being created",
                "≤ 1 s",
                lambda r: dig(r, "median", "welcome_p99_during_send_ms"),
                ms,
                lambda v: v <= 1000,
                lambda r: f"whole load p99 {ms(dig(r, 'median', 'welcome_p99_ms'))}",
            ),
        ],
    ),
    Bench(
        "rotation",
        "bench_rotation.py",
        ["--joins", "10000", "--groups", "60", "--runs", "1"],
        ["--joins", "200", "--groups", "12", "--capacity", "20", "--rate", "20", "--runs", "1"],
        (240, 25),
        ports=(8812, 8912),
        checks=[
            Check(
                "group-code rotation, 10,000 joins over 60 groups: callback → update_join_way accepted, p95",
                "≤ 1 s",
                lambda r: dig(r, "median", "reaction_p95_ms"),
                ms,
                lambda v: v <= 1000,
                lambda r: (
                    f"max {ms(dig(r, 'median', 'reaction_max_ms'))}; "
                    f"rotations {num(dig(r, 'runs', 0, 'rotations', 'rotate'))}"
                ),
            ),
            Check(
                "group-code rotation: joins refused because every group was full (sandbox audit)",
                "0",
                lambda r: dig(r, "median", "capacity_findings"),
                lambda v: num(v),
                lambda v: v == 0,
                lambda r: f"joins {num(dig(r, 'median', 'joins'))}",
            ),
        ],
    ),
]


BY_NAME = {b.name: b for b in BENCHMARKS}


# -- the machine -------------------------------------------------------------------------------------------


def _run_text(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20, cwd=REPO_ROOT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def describe_machine() -> Json:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = next(
        (
            int(x.split()[1])
            for x in Path("/proc/meminfo").read_text().splitlines()
            if x.startswith("MemTotal")
        ),
        0,
    )
    os_name = platform.system()
    with_release = Path("/etc/os-release")
    if with_release.exists():
        for line in with_release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    server = os.environ.get("BENCH_DATABASE_SERVER", "postgres://root@127.0.0.1:5432")
    pg = _run_text(["psql", f"{server}/postgres", "-tAc", "SHOW server_version"])
    try:
        import redis

        redis_version = str(redis.Redis.from_url(BENCH_REDIS_URL).info("server")["redis_version"])
    except Exception:  # described as unreachable; the benchmarks fail on their own
        redis_version = "unreachable"
    commit = _run_text(["git", "rev-parse", "--short", "HEAD"])
    dirty = bool(_run_text(["git", "status", "--porcelain", "--untracked-files=no"]))
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": f"{os_name}, Linux {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "postgres": pg.split()[0] if pg else "unknown",
        "redis": redis_version,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "commit": (commit + (" with uncommitted changes" if dirty else "")) or "unknown",
    }


def list_database_ready() -> bool:
    """Whether the 1M-follow database of the customer list and audience benchmarks is already built."""
    url = os.environ.get("BENCH_LIST_DATABASE_URL", FULL_LIST_DB)
    count = _run_text(["psql", url, "-tAc", "SELECT count(*) FROM customers_follow"])
    return count == "1000000"


# -- running -------------------------------------------------------------------------------------------


def port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def parse_json_output(text: str) -> Json:
    """The benchmark's JSON object: its whole stdout, or the last line-starting object in it (servers the
    benchmark starts may print to the same stdout)."""
    text = text.strip()
    try:
        out = json.loads(text)
        if isinstance(out, dict):
            return out
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    starts = [i for i in range(len(text)) if text[i] == "{" and (i == 0 or text[i - 1] == "\n")]
    for start in reversed(starts):
        try:
            obj, _end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    raise ValueError("no JSON object in the benchmark's output")


def tail(path: Path, lines: int = 12) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_one(bench: Bench, *, quick: bool, rebuild: bool) -> Json:
    argv = bench.argv(quick)
    if rebuild and bench.name in LIST_BENCHES:
        argv.insert(1, "--rebuild")
    command = shlex.join([".venv/bin/python", *argv])
    started = time.time()
    entry: Json = {"command": command, "started_at": _iso(started)}
    busy = [p for p in bench.ports if port_busy(p)]
    if busy:
        return {**entry, "status": "failed", "error": f"port {busy[0]} in use (another benchmark running?)"}
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    out_path, err_path = LOG_DIR / f"{bench.name}.out", LOG_DIR / f"{bench.name}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    timeout = bench.timeout_s(quick)
    with out_path.open("wb") as out, err_path.open("wb") as err:
        # A process group of its own: on a time limit, the benchmark and every server and worker it
        # started are stopped together, and nothing else.
        proc = subprocess.Popen(
            [PY, *argv], cwd=REPO_ROOT, env=env, stdout=out, stderr=err, start_new_session=True
        )
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
            _stop_group(proc)
        except KeyboardInterrupt:
            _stop_group(proc)
            raise
    entry["seconds"] = round(time.time() - started, 1)
    entry["log"] = str(err_path.relative_to(REPO_ROOT))
    if code is None:
        return {**entry, "status": "failed", "error": f"time limit of {timeout} s reached"}
    _stop_group(proc)  # anything the benchmark left running
    if code != 0:
        last = tail(err_path, 3).splitlines()
        reason = last[-1] if last else ""
        return {**entry, "status": "failed", "error": f"exit status {code}: {reason}"[:300]}
    try:
        result = parse_json_output(out_path.read_text(errors="replace"))
    except ValueError as exc:
        return {**entry, "status": "failed", "error": str(exc)}
    return {**entry, "status": "ok", "result": clean(result)}


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + wait
        while time.time() < deadline:
            proc.poll()  # reap the leader: an unreaped zombie keeps the group alive
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def clean(value: Any) -> Any:
    """NaN → None, so that results.json is strict JSON."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


# -- the table -----------------------------------------------------------------------------------------


def evaluate(bench: Bench, entry: Json, *, quick: bool = False) -> list[dict[str, str]]:
    """One row per check. A figure the benchmark did not produce misses its target, except in a quick
    run, whose smaller options may leave parts out (the sync's crash run)."""
    rows = []
    for check in bench.checks:
        row = {
            "benchmark": bench.name,
            "what": check.what,
            "target": check.target,
            "command": entry["command"],
        }
        if entry.get("status") != "ok":
            rows.append({**row, "result": "**failed**: " + str(entry.get("error", "")), "verdict": "failed"})
            continue
        result = entry["result"]
        try:
            value = check.value(result)
            detail = check.detail(result)
        except (KeyError, TypeError, ValueError, IndexError):
            value, detail = None, ""
        shown = check.show(value) if value is not None else "n/a"
        if check.ok_whole is not None:
            verdict = "met" if check.ok_whole(result) else "missed"
        elif check.ok is None:
            verdict = "—"
        elif value is None:
            verdict = "—" if quick else "missed"
        else:
            verdict = "met" if check.ok(value) else "missed"
        result_text = f"**{shown}**" + (f" ({detail})" if detail else "")
        rows.append({**row, "result": result_text, "verdict": verdict})
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(report: Json, results: str) -> str:
    m = report["machine"]
    load = " / ".join(f"{x:.2f}" for x in m["load_avg_at_start"])
    lines = [
        f"Report command: `{report['report_command']}` — ran {report['started_at']} → "
        f"{report['finished_at']} ({_minutes(report['seconds'])}). Raw results: "
        f"[{results}]({results}).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM; {m['os']}; {m['python']}; "
        f"PostgreSQL {m['postgres']}; Redis {m['redis']}; load average at start {load} (1 / 5 / 15 min); "
        f"commit {m['commit']}. Every process a benchmark starts (servers, workers, Postgres, the load "
        "generator) shares these cores.",
    ]
    if report.get("quick"):
        lines += [
            "",
            "**Quick run**: small sizes to check the command; the figures say nothing about the targets.",
        ]
    if report.get("partial"):
        lines += ["", f"Rows re-run since: {report['partial']}."]
    lines += [
        "",
        "| benchmark | what | target | result (median of runs) | target met | command |",
        "|---|---|---|---|---|---|",
    ]
    mark = {"met": "✅ met", "missed": "❌ missed", "failed": "❌ failed", "—": "—"}
    for bench in BENCHMARKS:
        entry = report["benchmarks"].get(bench.name)
        if entry is None:
            continue
        for row in evaluate(bench, entry, quick=bool(report.get("quick"))):
            lines.append(
                "| "
                + " | ".join(
                    _cell(x)
                    for x in (
                        row["benchmark"],
                        row["what"],
                        row["target"],
                        row["result"],
                        mark[row["verdict"]],
                        f"`{row['command']}`",
                    )
                )
                + " |"
            )
    return "\n".join(lines)


def write_markdown(table: str) -> None:
    text = BENCHMARKS_MD.read_text()
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _old, tail_text = rest.split(END, 1)
        text = head + block + tail_text
    else:  # after the title and the first paragraph
        title, _sep, body = text.partition("\n\n")
        text = f"{title}\n\n{block}\n\n{body}"
    BENCHMARKS_MD.write_text(text)


# -- main ----------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="comma-separated benchmark names (see --list)")
    parser.add_argument("--quick", action="store_true", help="small sizes; checks the command; never writes")
    parser.add_argument("--write", action="store_true", help="with --only: merge the rows into the table")
    parser.add_argument("--no-write", action="store_true", help="full run, but leave BENCHMARKS.md alone")
    parser.add_argument(
        "--rebuild", action="store_true", help="regenerate the 1M-follow database (otherwise reused)"
    )
    parser.add_argument("--list", action="store_true", help="print the benchmarks and exit")
    args = parser.parse_args()

    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    if args.quick and args.write:
        parser.error("--quick results are never written to BENCHMARKS.md")
    selected = [b for b in BENCHMARKS if not names or b.name in names]
    # audience reuses customer_list's database; run in the listed order.
    write = not args.quick and not args.no_write and (not names or args.write)

    reuse_list_db = not args.quick and not args.rebuild and list_database_ready()

    def estimate(b: Bench) -> int:
        if args.quick:
            return b.estimate_s[1]
        return b.estimate_s[0] - (LIST_BUILD_S if b.name == "customer_list" and reuse_list_db else 0)

    if args.list:
        for b in selected:
            print(
                f"{b.name:15} ~{_minutes(estimate(b)):>7}  .venv/bin/python {shlex.join(b.argv(args.quick))}"
            )
        return 0

    total = sum(estimate(b) for b in selected)
    mode = "quick (small sizes, not written)" if args.quick else ("full" + ("" if write else ", not written"))
    print(f"benchmark report, {mode}: {len(selected)} benchmarks, estimated wall time ~{_minutes(total)}")
    print("  " + ", ".join(f"{b.name} ~{_minutes(estimate(b))}" for b in selected), flush=True)
    machine = describe_machine()
    print(
        f"  machine: {machine['cpu']}, {machine['cores']} cores, "
        f"load average {machine['load_avg_at_start']}, "
        f"Redis database {BENCH_REDIS_URL}",
        flush=True,
    )
    started = time.time()
    entries: dict[str, Json] = {}
    remaining = total
    rebuild_list = args.rebuild
    for bench in selected:
        print(f"\n==> {bench.name} (~{_minutes(estimate(bench))}, ~{_minutes(remaining)} left)", flush=True)
        print(f"    .venv/bin/python {shlex.join(bench.argv(args.quick))}", flush=True)
        entry = run_one(bench, quick=args.quick, rebuild=rebuild_list)
        if bench.name in LIST_BENCHES and entry["status"] == "failed" and "other sizes" in entry["error"]:
            print("    the database holds other sizes: rebuilding it", flush=True)
            entry = run_one(bench, quick=args.quick, rebuild=True)
        if bench.name in LIST_BENCHES:
            rebuild_list = False  # built (or found) once; the other one reuses it
        entries[bench.name] = entry
        remaining -= estimate(bench)
        if entry["status"] == "ok":
            print(f"    ok in {entry['seconds']} s", flush=True)
        else:
            print(f"    FAILED ({entry.get('seconds', 0)} s): {entry['error']}", flush=True)
            if entry.get("log"):
                print(
                    "    last lines of " + entry["log"] + ":\n" + tail(REPO_ROOT / entry["log"]), flush=True
                )
        for row in evaluate(bench, entry, quick=args.quick):
            print(f"    {row['verdict']:>6}  {row['what']}: {row['result']} (target {row['target']})")

    finished = time.time()
    argv = ["scripts/bench", *sys.argv[1:]]
    report: Json = {
        "report_command": shlex.join(argv),
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "seconds": round(finished - started),
        "quick": args.quick,
        "machine": machine,
        "benchmarks": entries,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    # latest.json always matches the table in BENCHMARKS.md; other runs keep theirs beside it (git-ignored).
    results_path = RESULTS_DIR / (
        "latest.json" if write else "quick.json" if args.quick else "unwritten.json"
    )
    if names and write and results_path.exists():
        # --only --write: these rows replace theirs in the last full report; the rest stay as they were.
        previous = json.loads(results_path.read_text())
        previous["benchmarks"].update(entries)
        rerun = f"{', '.join(names)} on {report['started_at']} (`{report['report_command']}`)"
        previous["partial"] = "; ".join(x for x in (previous.get("partial"), rerun) if x)
        report = previous
    results_path.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    shown = os.path.relpath(results_path, REPO_ROOT)
    table = render(report, shown)
    print("\n" + table + "\n")
    if write:
        write_markdown(table)
        print(f"wrote the table to {BENCHMARKS_MD.name} and the raw results to {shown}")
    else:
        print(f"raw results in {shown}; BENCHMARKS.md not written")
    rows = [r for b in selected for r in evaluate(b, entries[b.name], quick=args.quick)]
    counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in ("met", "missed", "failed")}
    failed = [b.name for b in selected if entries[b.name]["status"] != "ok"]
    print(
        f"{counts['met']} targets met, {counts['missed']} missed; "
        f"{len(failed)} benchmark(s) failed{': ' + ', '.join(failed) if failed else ''}; "
        f"took {_minutes(finished - started)} (estimated {_minutes(total)})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
