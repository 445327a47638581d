"""Receive quota of corp mass messages (Doc 92135, 群发规则): per customer and per group, by calendar
period in Asia/Shanghai. The rule is a per-corp setting."""

from __future__ import annotations

import calendar
from datetime import datetime

from .clock import SHANGHAI

RULES = ("days_of_month", "7_per_week", "1_per_day")


def period(rule: str, ts: float) -> tuple[str, int]:
    """(period key, how many mass messages one customer/group may receive in it)."""
    d = datetime.fromtimestamp(ts, SHANGHAI)
    if rule == "days_of_month":
        return f"{d.year}-{d.month:02d}", calendar.monthrange(d.year, d.month)[1]
    if rule == "7_per_week":
        iso = d.isocalendar()
        return f"{iso.year}-W{iso.week:02d}", 7
    if rule == "1_per_day":
        return d.date().isoformat(), 1
    raise ValueError(f"unknown quota rule {rule!r}; known: {RULES}")
