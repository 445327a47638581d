"""Callback throughput on ONE core: verify the signature, decrypt, and parse a realistic event.

What the callback path costs per delivery (the view verifies + decrypts; the worker parses), measured
on an add_external_contact callback as WeCom sends it (tests/fixtures/wecom/…add_external_contact.xml).

    .venv/bin/python bench/bench_callback_parse.py [--seconds N] [--runs K] [--cpu C] [--json]

Prints the median callbacks/s over K runs and the per-call time, split into verify+decrypt and parse,
plus one line describing the machine. --json prints one JSON object instead (for the benchmark report).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # runnable as a plain script from a fresh clone
    sys.path.insert(0, str(REPO_ROOT))

from wecom.crypto import CallbackCrypto  # noqa: E402
from wecom.events import AddExternalContact, parse_event  # noqa: E402

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "wecom" / "change_external_contact.add_external_contact.xml"
# The official doc example's credentials (vectors.json); any valid Token/EncodingAESKey costs the same.
TOKEN = "QDG6eK"  # noqa: S105 (published example, not a secret)
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "ww4f2a9c1d7e3b8605"
# Distinct deliveries (each with its own random prefix, nonce and signature), cycled through.
DISTINCT_CALLBACKS = 256
BATCH = 64


def pin_to_one_cpu(cpu: int | None) -> int:
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[0] if cpu is None else cpu
    if chosen not in allowed:
        raise SystemExit(f"CPU {chosen} is not available to this process (allowed: {allowed})")
    os.sched_setaffinity(0, {chosen})
    return chosen


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": model,
        "logical_cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "pycryptodome": version("pycryptodome"),
        "defusedxml": version("defusedxml"),
    }


def rate(fn: Callable[[int], object], seconds: float) -> float:
    """Calls per second of fn over about ``seconds`` (fn(i) is one call; timed in batches)."""
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline:
        for i in range(calls, calls + BATCH):
            fn(i)
        calls += BATCH
        now = time.perf_counter()
    return calls / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each run (default 3)")
    parser.add_argument("--runs", type=int, default=5, help="runs; the median is reported (default 5)")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: first allowed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()
    if args.runs < 1 or args.seconds <= 0:
        parser.error("--runs must be >= 1 and --seconds > 0")

    cpu = pin_to_one_cpu(args.cpu)
    plaintext = FIXTURE.read_text(encoding="utf-8")
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
    callbacks = [
        crypto.build_callback(plaintext, agent_id=1000002, nonce=str(1_372_623_149 + i))
        for i in range(DISTINCT_CALLBACKS)
    ]
    deliveries = [(q["msg_signature"], q["timestamp"], q["nonce"], body) for q, body in callbacks]
    inner = [crypto.decrypt(*delivery) for delivery in deliveries]
    # A benchmark of the wrong thing is worse than none: check the path end to end first.
    event = parse_event(inner[0])
    assert isinstance(event, AddExternalContact) and event.welcome_code, "fixture did not parse as expected"

    def full(i: int) -> object:
        return parse_event(crypto.decrypt(*deliveries[i % DISTINCT_CALLBACKS]))

    def decrypt_only(i: int) -> object:
        return crypto.decrypt(*deliveries[i % DISTINCT_CALLBACKS])

    def parse_only(i: int) -> object:
        return parse_event(inner[i % DISTINCT_CALLBACKS])

    rate(full, min(0.5, args.seconds))  # warm-up
    runs = [rate(full, args.seconds) for _ in range(args.runs)]
    stage_seconds = max(0.2, args.seconds / 3)
    decrypt_rates = [rate(decrypt_only, stage_seconds) for _ in range(args.runs)]
    parse_rates = [rate(parse_only, stage_seconds) for _ in range(args.runs)]

    median = statistics.median(runs)
    result = {
        "benchmark": "callback_verify_decrypt_parse",
        "payload": (
            f"{FIXTURE.name} ({len(callbacks[0][1])}-byte POST body, {len(plaintext.encode())}-byte event)"
        ),
        "cpu_pinned": cpu,
        "seconds_per_run": args.seconds,
        "runs": len(runs),
        "callbacks_per_s_runs": [round(r, 1) for r in runs],
        "median_callbacks_per_s": round(median, 1),
        "per_call_us": round(1e6 / median, 2),
        "verify_decrypt_us": round(1e6 / statistics.median(decrypt_rates), 2),
        "parse_us": round(1e6 / statistics.median(parse_rates), 2),
        "machine": machine(),
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    m = result["machine"]
    print(
        f"machine: {m['cpu_model']}, {m['logical_cores']} logical cores (pinned to CPU {cpu}), "
        f"{m['python']}, pycryptodome {m['pycryptodome']}, defusedxml {m['defusedxml']}"
    )
    print(f"payload: {result['payload']}")
    print(f"runs ({args.seconds:g} s each): " + ", ".join(f"{r:,.0f}" for r in runs) + " callbacks/s")
    print(
        f"median: {median:,.0f} callbacks/s on one core = {result['per_call_us']} µs per callback "
        f"(verify+decrypt {result['verify_decrypt_us']} µs, parse {result['parse_us']} µs)"
    )


if __name__ == "__main__":
    main()
