"""Reads for customers: one filter object shared by the list page, CSV export, bulk tagging and the API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Exists, OuterRef, Q, QuerySet

from scrm.customers.models import Customer, Follow, FollowStatus
from scrm.tenancy.models import Corp

SHANGHAI = ZoneInfo("Asia/Shanghai")
ORDERINGS = {
    "-added": ("-first_added_at", "-id"),
    "added": ("first_added_at", "id"),
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
}
STATUSES = {"active", "lost", *FollowStatus.values}


class FilterError(ValueError):
    """A filter parameter that can't be understood; the message is shown to the operator."""


def _ints(raw: str | list[str] | None) -> tuple[int, ...]:
    if not raw:
        return ()
    parts = raw if isinstance(raw, list) else raw.split(",")
    try:
        return tuple(sorted({int(p) for part in parts for p in str(part).split(",") if p.strip()}))
    except ValueError as exc:
        raise FilterError("tag and member ids must be numbers") from exc


def _date(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise FilterError(f"{name} must be a date like 2026-11-21") from exc


@dataclass(frozen=True)
class CustomerFilter:
    q: str = ""
    tags_all: tuple[int, ...] = ()  # has every one (AND)
    tags_any: tuple[int, ...] = ()  # has at least one (OR)
    tags_none: tuple[int, ...] = ()  # has none (NOT)
    members: tuple[int, ...] = ()  # followed by any of these members
    added_from: date | None = None  # first added on or after, Asia/Shanghai calendar
    added_to: date | None = None  # first added on or before
    status: str = "active"  # "active": a live follow; "lost": none left; or a follow status
    order: str = "-added"
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, str | list[str]]) -> CustomerFilter:
        def one(key: str) -> str:
            value = params.get(key, "")
            return (value[-1] if isinstance(value, list) and value else str(value or "")).strip()

        def many(key: str) -> list[str]:
            value = params.get(key)
            if value is None:
                return []
            return value if isinstance(value, list) else [value]

        status = one("status") or "active"
        if status not in STATUSES and status != "all":
            raise FilterError(f"unknown status {status!r}")
        order = one("order") or "-added"
        if order not in ORDERINGS:
            raise FilterError(f"unknown order {order!r}")
        added_from, added_to = _date(one("added_from"), "added_from"), _date(one("added_to"), "added_to")
        if added_from and added_to and added_from > added_to:
            raise FilterError("added_from is after added_to")
        return cls(
            q=one("q")[:100],
            tags_all=_ints(many("tags_all")),
            tags_any=_ints(many("tags_any")),
            tags_none=_ints(many("tags_none")),
            members=_ints(many("members")),
            added_from=added_from,
            added_to=added_to,
            status=status,
            order=order,
        )


def customer_list(*, corp: Corp, filters: CustomerFilter) -> QuerySet[Customer]:
    qs = Customer.objects.filter(corp=corp)
    if filters.tags_all:
        qs = qs.filter(tag_ids__contains=list(filters.tags_all))
    if filters.tags_any:
        qs = qs.filter(tag_ids__overlap=list(filters.tags_any))
    if filters.tags_none:
        qs = qs.exclude(tag_ids__overlap=list(filters.tags_none))
    if filters.members:
        qs = qs.filter(member_ids__overlap=list(filters.members))
    if filters.added_from:
        qs = qs.filter(first_added_at__gte=datetime.combine(filters.added_from, time.min, SHANGHAI))
    if filters.added_to:
        qs = qs.filter(
            first_added_at__lt=datetime.combine(filters.added_to + timedelta(days=1), time.min, SHANGHAI)
        )
    if filters.status == "active":
        qs = qs.filter(active_follows__gt=0)
    elif filters.status == "lost":
        qs = qs.filter(active_follows=0)
    elif filters.status != "all":
        qs = qs.filter(Exists(Follow.objects.filter(customer=OuterRef("pk"), status=filters.status)))
    if filters.q:
        by_remark = Follow.objects.filter(customer=OuterRef("pk"), remark__icontains=filters.q)
        qs = qs.filter(Q(name__icontains=filters.q) | Exists(by_remark))
    return qs.order_by(*ORDERINGS[filters.order])


def customer_duplicates(*, corp: Corp) -> QuerySet[Customer]:
    """Customers followed by more than one member (the de-duplication report)."""
    return Customer.objects.filter(corp=corp, active_follows__gt=1).order_by(
        "-active_follows", "-first_added_at"
    )
