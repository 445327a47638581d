"""The sensitive-word gate: how long a check and a highlighted preview take, warm and after a list change.

Creates a scratch database with one corp holding --words of its own words and --patterns `*` patterns on
top of the built-in list, then times, in this process (as a web or worker process runs it):
  - content_gate on a welcome-sized text (~1,300 Chinese characters, WeCom's limit), the matcher warm;
  - the same right after the corp's list changed (version bump: the matcher is rebuilt from the database);
  - content_highlight of a 4,000-character broadcast with a dozen matches;
  - the worst pattern an admin may write ("a*a*a*b", gaps at their limit) over 20,000 characters of "a".

    .venv/bin/python bench/bench_gate.py [--runs 200] [--words 300] [--patterns 30] [--json]

Prints p50 / p95 / max in milliseconds per scenario, the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # runnable as a plain script from a fresh clone
    sys.path.insert(0, str(REPO_ROOT))

from bench.common import BENCH_REDIS_URL, machine, percentile, production_env, scratch_database  # noqa: E402

REDIS_URL = BENCH_REDIS_URL
WELCOME = "您好，欢迎关注我们的门店！本周末全场新品上市，欢迎到店体验，会员可享积分加倍。"


def timed(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    samples: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return {
        "p50_ms": round(percentile(samples, 50), 3),
        "p95_ms": round(percentile(samples, 95), 3),
        "max_ms": round(max(samples), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--words", type=int, default=300)
    parser.add_argument("--patterns", type=int, default=30)
    parser.add_argument("--database", default="scrm_bench_gate")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    db_url = scratch_database(args.database)
    os.environ.update(production_env(db_url=db_url, redis_url=REDIS_URL))
    import django

    django.setup()
    from scrm.compliance import services
    from scrm.compliance.matching import GAP, MAX_WILDCARDS
    from scrm.compliance.models import CorpWord
    from scrm.tenancy.models import Corp

    corp = Corp.objects.create(name="bench", corp_id="wwbenchgate00001", agent_id=1, secret="s" * 43)
    CorpWord.objects.bulk_create(
        [CorpWord(corp=corp, word=f"自定义词{i}号", key=f"自定义词{i}号") for i in range(args.words)]
        + [
            CorpWord(corp=corp, word=f"加{i}*微信", key=f"加{i}*微信", is_pattern=True)
            for i in range(args.patterns)
        ]
    )
    welcome = (WELCOME * 40)[:1300]
    broadcast = ((WELCOME + "诚心招代理，加我 私人 微信。自定义词7号！") * 60)[:4000]

    def bump() -> None:
        services._gate_invalidate(corp_pk=corp.pk)
        services.content_gate(corp=corp, texts=[welcome])

    services.content_gate(corp=corp, texts=[welcome])
    results = {
        "gate_welcome_warm": timed(lambda: services.content_gate(corp=corp, texts=[welcome]), args.runs),
        "gate_after_list_change": timed(bump, max(args.runs // 10, 5)),
        "highlight_4000_chars": timed(
            lambda: services.content_highlight(corp=corp, text=broadcast), args.runs
        ),
    }
    services.corp_word_add(corp=corp, word="a*" * MAX_WILDCARDS + "b")
    worst = "a" * 20_000 + "b"
    results["worst_pattern_20000_chars"] = timed(
        lambda: services.content_gate(corp=corp, texts=[worst]), max(args.runs // 20, 3)
    )
    matches = len(services.content_gate(corp=corp, texts=[broadcast]).matches)
    report = {
        "machine": machine(),
        "corp_words": args.words,
        "corp_patterns": args.patterns,
        "gap": GAP,
        "broadcast_matches": matches,
        "results": results,
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(f"machine: {report['machine']}")
    print(f"list: built-in + {args.words} words + {args.patterns} patterns; broadcast matches: {matches}")
    for name, r in results.items():
        print(f"{name:28s} p50 {r['p50_ms']:8.3f} ms  p95 {r['p95_ms']:8.3f} ms  max {r['max_ms']:8.3f} ms")


if __name__ == "__main__":
    main()
