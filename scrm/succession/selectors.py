"""Reads for succession pages and the API: leavers, handovers with their progress, items, duplicates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from scrm.customers.models import Customer, Follow, FollowStatus, Member
from scrm.groups.models import CustomerGroup
from scrm.succession.models import OPEN, DedupDecision, Handover, HandoverItem, ItemStatus
from scrm.tenancy.models import Corp


def leavers(*, corp: Corp) -> QuerySet[Member]:
    """Members who left, with their customers and groups still waiting for a successor."""
    open_items = HandoverItem.objects.filter(corp=corp, handover__member=OuterRef("pk"), status__in=OPEN)
    groups = (
        CustomerGroup.objects.filter(corp=corp, owner_userid=OuterRef("userid"), status="active")
        .order_by()
        .values("owner_userid")
        .annotate(n=Count("id"))
        .values("n")
    )
    return (
        Member.objects.filter(corp=corp, status=Member.Status.RESIGNED)
        .annotate(
            customers_left=Count("follows", filter=Q(follows__status=FollowStatus.ACTIVE)),
            groups_left=Coalesce(Subquery(groups), 0),
            in_progress=Exists(open_items),
        )
        .filter(Q(customers_left__gt=0) | Q(groups_left__gt=0) | Q(in_progress=True))
        .order_by("-left_at", "userid")
    )


def successor_choices(*, corp: Corp) -> QuerySet[Member]:
    return Member.objects.filter(
        corp=corp, status=Member.Status.ACTIVE, has_contact_permission=True
    ).order_by("name", "userid")


def handover_list(*, corp: Corp) -> QuerySet[Handover]:
    return Handover.objects.filter(corp=corp).select_related("member").order_by("-created_at", "-id")


def handover_get(*, corp: Corp, pk: int) -> Handover:
    return Handover.objects.select_related("member").get(corp=corp, pk=pk)


@dataclass(frozen=True)
class Progress:
    customers: dict[str, int]
    groups: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.customers.values()) + sum(self.groups.values())

    @property
    def open(self) -> int:
        return sum(n for d in (self.customers, self.groups) for s, n in d.items() if s in OPEN)

    @property
    def done(self) -> int:
        return self.customers.get(ItemStatus.DONE, 0) + self.groups.get(ItemStatus.DONE, 0)


def handover_progress(*, corp: Corp, handover: Handover) -> Progress:
    counts: dict[str, dict[str, int]] = {"customer": {}, "group": {}}
    for target, status, n in (
        HandoverItem.objects.filter(corp=corp, handover=handover)
        .values_list("target", "status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[target][status] = n
    return Progress(customers=counts["customer"], groups=counts["group"])


def handovers_progress(*, corp: Corp, handovers: list[Handover]) -> dict[int, Progress]:
    rows: dict[int, dict[str, dict[str, int]]] = {h.pk: {"customer": {}, "group": {}} for h in handovers}
    for handover_id, target, status, n in (
        HandoverItem.objects.filter(corp=corp, handover__in=handovers)
        .values_list("handover_id", "target", "status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        rows[handover_id][target][status] = n
    return {pk: Progress(customers=r["customer"], groups=r["group"]) for pk, r in rows.items()}


def handover_items(
    *, corp: Corp, handover: Handover, target: str | None = None, status: str | None = None
) -> QuerySet[HandoverItem]:
    qs = HandoverItem.objects.filter(corp=corp, handover=handover).select_related(
        "customer", "group", "takeover"
    )
    if target:
        qs = qs.filter(target=target)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("target", "pk")


def member_names(*, corp: Corp, pks: list[int]) -> dict[int, str]:
    return {m.pk: str(m) for m in Member.objects.filter(corp=corp, pk__in=pks)}


@dataclass(frozen=True)
class DuplicateRow:
    customer: Customer
    members: list[Member]
    decision: DedupDecision | None

    @property
    def to_delete(self) -> list[Member]:
        """Under "keep one", the members who still have to delete the customer in their WeCom client."""
        if self.decision is None or self.decision.decision != DedupDecision.Decision.KEEP_ONE:
            return []
        return [m for m in self.members if m.pk != self.decision.keep_member_id]


def duplicates(*, corp: Corp, decided: str = "all") -> QuerySet[Customer]:
    """Customers followed by several members now (the customers app's report), with our decisions."""
    qs = Customer.objects.filter(corp=corp, active_follows__gt=1)
    has = Exists(DedupDecision.objects.filter(corp=corp, customer=OuterRef("pk")))
    if decided == "open":
        qs = qs.filter(~has)
    elif decided == "decided":
        qs = qs.filter(has)
    return qs.order_by("-active_follows", "-first_added_at", "pk")


def duplicate_rows(*, corp: Corp, customers: list[Customer]) -> list[DuplicateRow]:
    ids = [c.pk for c in customers]
    by_customer: dict[int, list[Member]] = {pk: [] for pk in ids}
    for f in (
        Follow.objects.filter(corp=corp, customer_id__in=ids, status=FollowStatus.ACTIVE)
        .select_related("member")
        .order_by("added_at", "pk")
    ):
        by_customer[f.customer_id].append(f.member)
    decisions = {
        d.customer_id: d
        for d in DedupDecision.objects.filter(corp=corp, customer_id__in=ids).select_related("keep_member")
    }
    return [DuplicateRow(c, by_customer[c.pk], decisions.get(c.pk)) for c in customers]


def dedup_summary(*, corp: Corp) -> dict[str, Any]:
    total = Customer.objects.filter(corp=corp, active_follows__gt=1).count()
    decided = DedupDecision.objects.filter(corp=corp, customer__active_follows__gt=1)
    return {
        "total": total,
        "keep_one": decided.filter(decision=DedupDecision.Decision.KEEP_ONE).count(),
        "keep_all": decided.filter(decision=DedupDecision.Decision.KEEP_ALL).count(),
    }
