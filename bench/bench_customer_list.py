"""Customer list at a million follows: "has tags A and B, not C", as the dashboard runs it.

Builds (once) a separate database with 600,000 customers, 1,000,000 follows, 200 members and 30 tags in
5 groups (popular tags common, the long tail rare), with Customer.tag_ids / member_ids / active_follows /
first_added_at derived from the follows exactly as customers_recompute derives them (checked on a sample).
Then times, over many runs, the server side of the customer list page for the filter
"two tags AND, one excluded": the selector, the page count, the 25-row page and its member / tag names —
and the whole view rendered through Django's test client.

    .venv/bin/python bench/bench_customer_list.py [--runs N] [--rebuild] [--json]
        [--database-url postgres://root@127.0.0.1:5432/scrm_bench_list]
        [--customers 600000] [--follows 1000000] [--members 200]

Prints p50 / p95 / max per scenario, the rows each filter matches, the query plan's shape, the machine and
its load. --json prints one JSON object instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # runnable as a plain script from a fresh clone
    sys.path.insert(0, str(REPO_ROOT))

DEFAULT_URL = "postgres://root@127.0.0.1:5432/scrm_bench_list"
BENCH_CORP_ID = "wwbenchlist000001"
PAGE_SIZE = 25  # scrm.customers.views.PAGE_SIZE
TAG_GROUPS, TAGS_PER_GROUP = 5, 6
# Tag of popularity rank k (1 = most used) sits on a follow with probability 0.4 / k^0.7: the first tag on
# ~40% of follows, the 10th on ~8%, the 30th on ~4%; about 2.9 tags per follow on average.
TAG_P0, TAG_DECAY = 0.4, 0.7


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_LIST_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--customers", type=int, default=600_000)
    parser.add_argument("--follows", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--runs", type=int, default=200, help="timed runs per scenario (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    parser.add_argument("--rebuild", action="store_true", help="drop and regenerate the data")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()
    if not args.customers <= args.follows <= 2 * args.customers:
        parser.error("--follows must be between --customers and twice --customers")
    return args


def ensure_database(url: str, *, recreate: bool) -> None:
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if not name.startswith("scrm_bench"):
        raise SystemExit(f"refusing {name!r}: the benchmark database's name must start with scrm_bench")
    conn = [
        "-h",
        parsed.hostname or "127.0.0.1",
        "-p",
        str(parsed.port or 5432),
        "-U",
        parsed.username or "root",
    ]
    if recreate:
        subprocess.run(["dropdb", *conn, "--if-exists", name], check=True)
    exists = subprocess.run(
        ["psql", *conn, "-d", "postgres", "-tAc", "SELECT datname FROM pg_database"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    if name not in exists:
        subprocess.run(["createdb", *conn, name], check=True)


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scrm.settings")
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "600")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


# -- data ---------------------------------------------------------------------------------------------


def build(args: argparse.Namespace, log: Callable[[str], None]) -> None:
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from scrm.customers.models import Tag
    from scrm.tenancy.models import Corp, Membership, Role

    with transaction.atomic():
        corp = Corp.objects.create(
            name="Bench corp",
            corp_id=BENCH_CORP_ID,
            agent_id=1,
            secret="bench",  # noqa: S106 (a throwaway database)
            callback_token="bench",  # noqa: S106
            encoding_aes_key="a" * 43,
        )
        user, _ = User.objects.get_or_create(username="bench-viewer")
        Membership.objects.get_or_create(user=user, corp=corp, defaults={"role": Role.VIEWER})
    c = corp.pk
    n_customers, n_follows, n_members = args.customers, args.follows, args.members
    second = n_follows - n_customers  # customers 1..second have a second member

    def tag_array() -> str:
        """One random draw per tag and follow, as a sorted bigint[] (a correlated unnest() subquery per
        row would be 50x slower). Only integers and floats of ours are formatted into the SQL."""
        ranked = list(Tag.objects.filter(corp=corp).order_by("-order").values_list("pk", flat=True))
        draws = sorted((pk, TAG_P0 / (rank**TAG_DECAY)) for rank, pk in enumerate(ranked, start=1))
        cases = ", ".join(f"CASE WHEN random() < {p:.5f} THEN {int(pk)} END" for pk, p in draws)
        return f"array_remove(ARRAY[{cases}]::bigint[], NULL)"

    # Parameters are computed when each step runs: the follows need the tag pks inserted just before.
    steps: list[tuple[str, str, Callable[[], list[Any]]]] = [
        (
            "members",
            """INSERT INTO customers_member (corp_id, userid, name, departments, status,
                   has_contact_permission, updated_at)
               SELECT %s, 'member' || i, '成员' || i, '[]', 'active', true, now()
               FROM generate_series(1, %s) i""",
            lambda: [c, n_members],
        ),
        (
            "tag groups",
            """INSERT INTO customers_taggroup (corp_id, group_id, name, "order", created_by_us, deleted)
               SELECT %s, 'g' || g, '标签组' || g, 100 - g, false, false FROM generate_series(1, %s) g""",
            lambda: [c, TAG_GROUPS],
        ),
        (
            "tags",
            """INSERT INTO customers_tag (corp_id, group_id, tag_id, name, "order", created_by_us, deleted)
               SELECT %s, tg.id, 't' || k, '标签' || k, 100 - k, false, false
               FROM generate_series(1, %s) k
               JOIN customers_taggroup tg ON tg.corp_id = %s AND tg.group_id = 'g' || (1 + (k - 1) %% %s)""",
            lambda: [c, TAG_GROUPS * TAGS_PER_GROUP, c, TAG_GROUPS],
        ),
        (
            "customers",
            """INSERT INTO customers_customer (corp_id, external_userid, name, avatar, type, gender,
                   corp_name, corp_full_name, unionid, tag_ids, member_ids, active_follows, created_at,
                   updated_at)
               SELECT %s, 'wm' || lpad(i::text, 10, '0'),
                   (ARRAY['张','王','李','赵','刘','陈','杨','黄','周','吴'])[1 + i %% 10]
                     || (ARRAY['伟','芳','娜','敏','静','丽','强','磊','洋','艳'])[1 + (i / 10) %% 10]
                     || CASE WHEN i %% 3 = 0 THEN '' ELSE i::text END,
                   '', 1 + (i %% 7 = 0)::int, i %% 3, '', '', '', '{}', '{}', 0, now(), now()
               FROM generate_series(1, %s) i""",
            lambda: [c, n_customers],
        ),
        (
            "follows",
            """WITH cust AS (
                   SELECT id, row_number() OVER (ORDER BY id) AS i FROM customers_customer WHERE corp_id = %s
               ), mem AS (
                   SELECT id, row_number() OVER (ORDER BY id) - 1 AS j
                   FROM customers_member WHERE corp_id = %s
               ), pairs AS (
                   SELECT cust.id AS customer_id, cust.i, (cust.i * 7) %% %s AS j, 1 AS nth FROM cust
                   UNION ALL
                   SELECT cust.id, cust.i, (cust.i * 7 + 1 + (cust.i * 13) %% (%s - 1)) %% %s, 2 FROM cust
                   WHERE cust.i <= %s
               ), rows AS (
                   SELECT p.*, mem.id AS member_id, random() AS r_status, random() AS r_state,
                       now() - (random() * interval '730 days') AS added
                   FROM pairs p JOIN mem ON mem.j = p.j
               )
               INSERT INTO customers_follow (corp_id, customer_id, member_id, remark, description,
                   remark_mobiles, add_way, state, oper_userid, added_at, status, status_changed_at,
                   last_event_time, tag_ids, updated_at)
               SELECT %s, customer_id, member_id,
                   CASE WHEN i %% 5 = 0 THEN '老客户' || i WHEN i %% 5 = 1 THEN 'VIP ' || i ELSE '' END,
                   '', '[]', 1,
                   CASE WHEN r_state < 0.3 THEN '' ELSE 'channel-' || (1 + floor(r_state * 20)::int) END,
                   '', added,
                   CASE WHEN r_status < 0.08 THEN 'deleted_by_customer'
                        WHEN r_status < 0.11 THEN 'deleted_by_member' ELSE 'active' END,
                   CASE WHEN r_status < 0.11 THEN added + (random() * (now() - added)) ELSE added END,
                   0,
                   {tag_array},
                   now()
               FROM rows""",
            lambda: [c, c, n_members, n_members, n_members, second, c],
        ),
        (
            "derived customer columns",
            # The same derivation as customers_recompute, set-based for 600k customers at once.
            """WITH agg AS (
                   SELECT f.customer_id,
                       COALESCE(array_agg(DISTINCT f.member_id ORDER BY f.member_id)
                                FILTER (WHERE f.status = 'active'), '{}') AS member_ids,
                       count(*) FILTER (WHERE f.status = 'active') AS active_follows,
                       min(f.added_at) AS first_added_at
                   FROM customers_follow f WHERE f.corp_id = %s GROUP BY f.customer_id
               ), tags AS (
                   SELECT f.customer_id, array_agg(DISTINCT t ORDER BY t) AS tag_ids
                   FROM customers_follow f, unnest(f.tag_ids) AS t
                   WHERE f.corp_id = %s AND f.status = 'active' GROUP BY f.customer_id
               )
               UPDATE customers_customer c SET member_ids = agg.member_ids,
                   active_follows = agg.active_follows, first_added_at = agg.first_added_at,
                   tag_ids = COALESCE(tags.tag_ids, '{}')
               FROM agg LEFT JOIN tags ON tags.customer_id = agg.customer_id
               WHERE c.id = agg.customer_id""",
            lambda: [c, c],
        ),
    ]
    with connection.cursor() as cur:
        for label, sql, params in steps:
            started = time.perf_counter()
            cur.execute(sql.replace("{tag_array}", tag_array()) if "{tag_array}" in sql else sql, params())
            log(f"  {label}: {cur.rowcount:,} rows in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        cur.execute("VACUUM ANALYZE customers_customer")
        cur.execute("VACUUM ANALYZE customers_follow")
        log(f"  vacuum analyze: {time.perf_counter() - started:.1f} s")


def check_derived(corp_pk: int, sample: int = 500) -> int:
    """Re-derives a random sample with the real customers_recompute; returns how many rows changed."""
    from django.db import connection, transaction

    from scrm.customers.models import Customer
    from scrm.customers.services import customers_recompute

    ids = list(Customer.objects.filter(corp_id=corp_pk).order_by("?").values_list("pk", flat=True)[:sample])
    fields = ("tag_ids", "member_ids", "active_follows")
    before = {
        r["pk"]: tuple(r[f] for f in fields)
        for r in Customer.objects.filter(pk__in=ids).values("pk", *fields)
    }
    with transaction.atomic():
        customers_recompute(customer_ids=ids)
        after = {
            r["pk"]: tuple(r[f] for f in fields)
            for r in Customer.objects.filter(pk__in=ids).values("pk", *fields)
        }
        transaction.set_rollback(True)
    connection.close()
    return sum(1 for pk in ids if before[pk] != after[pk])


# -- measuring ----------------------------------------------------------------------------------------


def pick_tags(corp_pk: int) -> dict[str, list[int]]:
    """Tag pks by popularity rank (1 = most used)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """SELECT t, count(*) FROM customers_customer, unnest(tag_ids) t
               WHERE corp_id = %s AND active_follows > 0 GROUP BY t ORDER BY count(*) DESC""",
            [corp_pk],
        )
        ranked = [row[0] for row in cur.fetchall()]
    return {"ranked": ranked}


def time_selector(corp: Any, params: dict[str, Any], page: int) -> tuple[float, int]:
    """Server time of the list's data work, as customer_list() in views.py does it: filter, count, one page
    of rows, their members and tags."""
    from django.core.paginator import Paginator

    from scrm.customers import selectors

    started = time.perf_counter()
    filters = selectors.CustomerFilter.from_params(params)
    paginator = Paginator(selectors.customer_list(corp=corp, filters=filters), PAGE_SIZE)
    page_obj = paginator.get_page(page)
    rows = selectors.customer_rows(corp=corp, customers=list(page_obj.object_list))
    elapsed = time.perf_counter() - started
    assert len(rows) == min(PAGE_SIZE, max(0, paginator.count - (page_obj.number - 1) * PAGE_SIZE))
    return elapsed, paginator.count


def other_pages(corp: Any) -> dict[str, Callable[[], object]]:
    from scrm.customers import selectors
    from scrm.dashboard import selectors as dashboard

    def overview() -> object:  # what dashboard.views.home reads, for the default 7-day period
        return dashboard.growth_overview(corp=corp, period="7d", trend_days=30)

    return {
        "overview_growth_selectors": overview,
        "members_page_live_counts": lambda: list(selectors.member_list(corp=corp)),
        "duplicates_page_1": lambda: (
            selectors.customer_duplicates(corp=corp).count(),
            selectors.customer_rows(
                corp=corp, customers=list(selectors.customer_duplicates(corp=corp)[:PAGE_SIZE])
            ),
        ),
    }


def explain(corp: Any, params: dict[str, Any]) -> list[str]:
    from scrm.customers import selectors

    qs = selectors.customer_list(corp=corp, filters=selectors.CustomerFilter.from_params(params))
    plan = qs[:PAGE_SIZE].explain(analyze=True)
    count_plan = qs.order_by().explain(analyze=True)
    return ["-- page:", *plan.splitlines()[:12], "-- count:", *count_plan.splitlines()[:10]]


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pct(p: float) -> float:
        k = (len(ordered) - 1) * p / 100
        lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)

    ms = 1000.0
    return {
        "p50_ms": round(pct(50) * ms, 1),
        "p95_ms": round(pct(95) * ms, 1),
        "max_ms": round(ordered[-1] * ms, 1),
        "mean_ms": round(statistics.fmean(ordered) * ms, 1),
    }


def machine() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    pg = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "postgres_client": pg,
    }


def main() -> None:
    args = parse_args()
    quiet = args.json

    def log(msg: str) -> None:
        if not quiet:
            print(msg, flush=True)

    ensure_database(args.database_url, recreate=args.rebuild)
    setup_django(args.database_url)
    from django.db import connection
    from django.test import Client

    from scrm.customers.models import Customer, Follow
    from scrm.tenancy.models import Corp

    corp = Corp.objects.filter(corp_id=BENCH_CORP_ID).first()
    if corp is not None and Follow.objects.filter(corp=corp).count() != args.follows:
        raise SystemExit("the benchmark database holds other sizes: run again with --rebuild")
    if corp is None:
        log(f"building {args.customers:,} customers / {args.follows:,} follows in {args.database_url} …")
        started = time.perf_counter()
        build(args, log)
        log(f"built in {time.perf_counter() - started:.0f} s")
        corp = Corp.objects.get(corp_id=BENCH_CORP_ID)
    with connection.cursor() as cur:
        cur.execute("SELECT version()")
        server_version = str(cur.fetchone()[0]).split(",")[0]
    mismatches = check_derived(corp.pk)
    counts = {
        "customers": Customer.objects.filter(corp=corp).count(),
        "follows": Follow.objects.filter(corp=corp).count(),
        "active_follows": Follow.objects.filter(corp=corp, status="active").count(),
        "members": corp.members.count(),
        "tags": corp.tags.count(),
        "derived_columns_mismatches_in_sample_of_500": mismatches,
    }
    ranked = pick_tags(corp.pk)["ranked"]
    # The benchmark's filter: two mid-popular tags AND, the most popular one excluded; plus a rare pair.
    scenarios = {
        "two_tags_and_one_not": {"tags_all": [ranked[1], ranked[3]], "tags_none": [ranked[0]]},
        "rare_tags_and_one_not": {"tags_all": [ranked[9], ranked[19]], "tags_none": [ranked[0]]},
        "two_tags_and_one_not_page_20": {"tags_all": [ranked[1], ranked[3]], "tags_none": [ranked[0]]},
        "no_filter": {},
    }
    pages = {"two_tags_and_one_not_page_20": 20}
    results: dict[str, Any] = {}
    load_before = os.getloadavg()
    for name, raw in scenarios.items():
        params = {k: ",".join(map(str, v)) for k, v in raw.items()}
        page = pages.get(name, 1)
        for _ in range(args.warmup):
            time_selector(corp, params, page)
        timings, matched = [], 0
        for _ in range(args.runs):
            elapsed, matched = time_selector(corp, params, page)
            timings.append(elapsed)
        results[name] = {"params": params, "page": page, "matched_customers": matched, **summary(timings)}
        log(f"{name:32} matched {matched:>7,}  " + "  ".join(f"{k} {v}" for k, v in summary(timings).items()))

    # Secondary figures on the same data: the other pages that aggregate over every follow.
    for name, fn in other_pages(corp).items():
        timings = []
        for i in range(2 + max(20, args.runs // 10)):
            started = time.perf_counter()
            fn()
            if i >= 2:
                timings.append(time.perf_counter() - started)
        results[name] = summary(timings)
        log(f"{name:32} " + "  ".join(f"{k} {v}" for k, v in summary(timings).items()))

    # The whole view (middleware, session, selector, template) through Django's test client.
    from django.contrib.auth.models import User

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(username="bench-viewer"))
    main_params = results["two_tags_and_one_not"]["params"]
    query = "&".join(f"{k}={v}" for k, v in main_params.items())
    view_timings = []
    for i in range(args.warmup + max(20, args.runs // 4)):
        started = time.perf_counter()
        response = client.get(f"/customers/?{query}")
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        if i >= args.warmup:
            view_timings.append(elapsed)
    results["view_two_tags_and_one_not"] = {"params": main_params, "page": 1, **summary(view_timings)}
    log(
        f"{'view (test client, full render)':32} "
        + "  ".join(f"{k} {v}" for k, v in summary(view_timings).items())
    )
    plan = explain(corp, main_params)
    out = {
        "benchmark": "customer_list_tags_and_not",
        "database": args.database_url,
        "postgres_server": server_version,
        "data": counts,
        "runs_per_scenario": args.runs,
        "results": results,
        "plan_two_tags_and_one_not": plan,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "machine": machine(),
    }
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return
    m = out["machine"]
    print(f"data: {counts}")
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM; Python {m['python']}")
    print(f"database: {server_version}")
    print(f"load average before {out['load_avg_before']}, after {out['load_avg_after']} (shared machine)")
    print("plan of the main scenario:")
    for line in plan:
        print("   " + line)


if __name__ == "__main__":
    main()
