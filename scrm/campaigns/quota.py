"""The receive quota of corp mass messages (Doc 92135, 群发规则) and its ledger.

Each customer (and each group) may receive, per calendar period in Asia/Shanghai, at most: as many as the
month has days, or 7 per ISO week, or 1 per day, as the admin chose in the WeCom console. Counting is done
here, before WeCom is called: `quota_reserve` takes room for a chunk in one atomic statement.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import connection

SHANGHAI = ZoneInfo("Asia/Shanghai")


def period(rule: str, at: datetime) -> tuple[str, int]:
    """(period key, how many corp mass messages one customer or group may receive in it)."""
    d = at.astimezone(SHANGHAI)
    if rule == "days_of_month":
        return f"{d.year}-{d.month:02d}", calendar.monthrange(d.year, d.month)[1]
    if rule == "7_per_week":
        iso = d.isocalendar()
        return f"{iso.year}-W{iso.week:02d}", 7
    if rule == "1_per_day":
        return d.date().isoformat(), 1
    raise ValueError(f"unknown quota rule {rule!r}")


# One statement: a row per target is created at 1 or incremented while under the allowance; the row lock
# ON CONFLICT takes serialises concurrent chunks, and the WHERE is re-checked on the latest row version, so
# two broadcasts racing for a customer's last slot never both get it. Sorted, so locks are taken in one
# order (no deadlock between chunks sharing customers). RETURNING names the targets granted.
_RESERVE = """
INSERT INTO campaigns_quotaledger AS q (corp_id, target, period, count)
SELECT %s, t, %s, 1 FROM unnest(%s::varchar[]) AS t ORDER BY t
ON CONFLICT (corp_id, target, period) DO UPDATE SET count = q.count + 1 WHERE q.count < %s
RETURNING q.target
"""
_RELEASE = """
UPDATE campaigns_quotaledger SET count = count - 1
WHERE corp_id = %s AND period = %s AND target = ANY(%s::varchar[]) AND count > 0
"""


def quota_reserve(*, corp_pk: int, period_key: str, allowance: int, targets: Sequence[str]) -> list[str]:
    """Counts one message for every target still under its allowance; returns those (the others are over
    quota and must not be sent to). Call inside the transaction that records the reservation."""
    if not targets or allowance <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_RESERVE, [corp_pk, period_key, sorted(set(targets)), allowance])
        granted = {row[0] for row in cursor.fetchall()}
    return [t for t in targets if t in granted]


def quota_release(*, corp_pk: int, period_key: str, targets: Sequence[str]) -> None:
    """Gives back what a refused call (or WeCom's fail_list) did not use."""
    if not targets:
        return
    with connection.cursor() as cursor:
        cursor.execute(_RELEASE, [corp_pk, period_key, sorted(set(targets))])
