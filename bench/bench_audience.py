"""Broadcast audience preview at a million follows: size per sender and who is left out, as the page runs it.

Reuses bench_customer_list's data (same database, same generator: 600,000 customers, 1,000,000 follows,
200 members, 30 tags), then adds what a broadcast preview also reads: a do-not-disturb tag and a receive
quota ledger in which --at-quota customers have used this period's allowance. Times, over many runs,
`audience_preview()` (one aggregate query) for:
  - two tags AND + one NOT, every member sending;
  - the same with 5 sending members (customers only those follow; the others counted "not a friend");
  - no filter at all (every customer of the corp);
  - two tags AND + one NOT, added through 3 channel codes.

    .venv/bin/python bench/bench_audience.py [--runs N] [--rebuild] [--json]
        [--database-url postgres://root@127.0.0.1:5432/scrm_bench_list]
        [--customers 600000] [--follows 1000000] [--members 200] [--at-quota 50000]

Small scale check: --database-url postgres://root@127.0.0.1:5432/scrm_bench_audience_small
    --customers 6000 --follows 10000 --members 20 --at-quota 500 --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.bench_customer_list import (  # noqa: E402
    BENCH_CORP_ID,
    DEFAULT_URL,
    build,
    ensure_database,
    machine,
    pick_tags,
    setup_django,
    summary,
)

TARGET_S = 1.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_LIST_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--customers", type=int, default=600_000)
    parser.add_argument("--follows", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--at-quota", type=int, default=50_000, help="customers at this period's allowance")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="drop and regenerate the data")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.customers <= args.follows <= 2 * args.customers:
        parser.error("--follows must be between --customers and twice --customers")
    return args


def prepare(corp: Any, ranked: list[int], at_quota: int) -> dict[str, Any]:
    """The broadcast side of the data: rules with a do-not-disturb tag, a full ledger for some customers,
    three channel codes whose states the generator used. Re-done every run (cheap)."""
    from django.db import connection
    from django.utils import timezone

    from scrm.acquisition.models import ChannelCode
    from scrm.campaigns.models import CampaignSettings
    from scrm.campaigns.quota import period

    s, _ = CampaignSettings.objects.get_or_create(corp=corp)
    s.quota_rule, s.dnd_tag_id = "1_per_day", ranked[-1]
    s.save()
    key, allowance = period(s.quota_rule, timezone.now())
    with connection.cursor() as cur:
        cur.execute("DELETE FROM campaigns_quotaledger WHERE corp_id = %s", [corp.pk])
        cur.execute(
            """INSERT INTO campaigns_quotaledger (corp_id, target, period, count)
               SELECT %s, external_userid, %s, %s FROM customers_customer
               WHERE corp_id = %s ORDER BY random() LIMIT %s""",
            [corp.pk, key, allowance, corp.pk, at_quota],
        )
        cur.execute("ANALYZE campaigns_quotaledger")
    codes = []
    for i in (10, 11, 12):  # states bench_customer_list gave its follows (channel-7 … channel-20)
        code, _ = ChannelCode.objects.get_or_create(
            corp=corp, state=f"channel-{i}", defaults={"name": f"渠道{i}"}
        )
        codes.append(code.pk)
    return {"codes": codes, "period": key}


def main() -> None:
    args = parse_args()

    def log(msg: str) -> None:
        if not args.json:
            print(msg, flush=True)

    ensure_database(args.database_url, recreate=args.rebuild)
    setup_django(args.database_url)
    from scrm.campaigns import selectors
    from scrm.customers.models import Follow
    from scrm.tenancy.models import Corp

    corp = Corp.objects.filter(corp_id=BENCH_CORP_ID).first()
    if corp is not None and Follow.objects.filter(corp=corp).count() != args.follows:
        raise SystemExit("the benchmark database holds other sizes: run again with --rebuild")
    if corp is None:
        log(f"building {args.customers:,} customers / {args.follows:,} follows in {args.database_url} …")
        build(args, log)
        corp = Corp.objects.get(corp_id=BENCH_CORP_ID)
    ranked = pick_tags(corp.pk)["ranked"]
    extra = prepare(corp, ranked, args.at_quota)
    senders = list(corp.members.order_by("pk").values_list("pk", flat=True)[:5])
    base = {"tags_all": [ranked[1], ranked[3]], "tags_none": [ranked[0]]}
    scenarios: dict[str, dict[str, Any]] = {
        "two_tags_and_one_not": base,
        "two_tags_and_one_not_5_senders": {**base, "members": senders},
        "no_filter": {},
        "two_tags_and_one_not_3_channels": {**base, "codes": extra["codes"]},
    }
    results: dict[str, Any] = {}
    load_before = os.getloadavg()
    for name, params in scenarios.items():
        audience = selectors.Audience.from_params(params)
        preview = selectors.audience_preview(corp=corp, audience=audience)
        for _ in range(args.warmup):
            selectors.audience_preview(corp=corp, audience=audience)
        timings = []
        for _ in range(args.runs):
            started = time.perf_counter()
            selectors.audience_preview(corp=corp, audience=audience)
            timings.append(time.perf_counter() - started)
        stats = summary(timings)
        results[name] = {
            "recipients": preview.total,
            "senders": len(preview.senders),
            "excluded": preview.excluded,
            **stats,
            "within_target": stats["p95_ms"] <= TARGET_S * 1000,
        }
        log(
            f"{name:34} recipients {preview.total:>7,}  excluded {preview.excluded}  "
            + "  ".join(f"{k} {v}" for k, v in stats.items())
        )
    out = {
        "benchmark": "audience_preview",
        "target_ms": TARGET_S * 1000,
        "data": {"follows": args.follows, "customers": args.customers, "at_quota": args.at_quota},
        "results": results,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "machine": machine(),
    }
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(
            f"machine: {out['machine']}; load before {out['load_avg_before']} after {out['load_avg_after']}"
        )


if __name__ == "__main__":
    main()
