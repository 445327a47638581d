"""Writes for succession: planning a handover, requesting its batches, polling WeCom, applying outcomes.

Rules we enforce before calling WeCom (Doc 92125, 94081, 92127, 95703):
- customers and groups go ≤100 per call;
- group transfers: 300 a day per corp and API, counted on Asia/Shanghai days from our own requests;
  a handover's groups are spread over as many days as that takes;
- on-job transfers: each customer, and each group, at most twice in 90 days, counted from our own
  transfer history (every request WeCom accepted, whatever the customer then did);
- an item is requested once: its batch is claimed before the call, and a batch whose worker vanished is
  checked against WeCom (transfer_result / groupchat/get) instead of being sent again.
"""

from __future__ import annotations

import heapq
import logging
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.acquisition.caps import SHANGHAI
from scrm.core.wecom import wecom_client
from scrm.customers import services as customers
from scrm.customers.models import Customer, Follow, FollowStatus, Member
from scrm.groups.models import CustomerGroup
from scrm.succession.models import (
    OPEN,
    STARTED,
    Handover,
    HandoverItem,
    ItemStatus,
    TransferBatch,
)
from scrm.tenancy.models import Corp
from wecom.client import WeComClient
from wecom.errors import ConfigError, PermanentError, RateLimited, TransientError, WeComError

logger = logging.getLogger(__name__)

BATCH_SIZE = 100  # Doc 92125 / 94081 / 92127 / 95703: 1–100 per call
GROUPS_PER_DAY = 300  # Doc 92127 / 95703
GUARD_DAYS = 90  # Doc 92125 / 95703: twice per 90 days (on-job)
GUARD_TIMES = 2
# Longer than one call can take (rate-limit wait ≤30 s + HTTP timeout 10 s): a claim older than this
# belongs to a worker that is gone.
BATCH_LEASE = timedelta(minutes=2)
POLL_EVERY = timedelta(minutes=10)

S = ItemStatus
C, G = HandoverItem.Target.CUSTOMER, HandoverItem.Target.GROUP
# transfer_result status (Doc 94082) -> ours
RESULT_STATUS = {1: S.DONE, 2: S.WAITING, 3: S.REFUSED, 4: S.OVER_CAP}
FAIL_REASONS = {"customer_refused": S.REFUSED, "customer_limit_exceed": S.OVER_CAP}


def shanghai_day(at: datetime) -> date:
    return at.astimezone(SHANGHAI).date()


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


# -- planning -----------------------------------------------------------------------------------------


@dataclass
class PlannedItem:
    target: str
    pk: int  # Customer or CustomerGroup pk
    wecom_id: str
    takeover_id: int | None
    status: str = S.PENDING
    note: str = ""
    not_before: date | None = None


@dataclass
class Plan:
    kind: str
    member: Member
    rule: str
    candidates: list[Member]
    items: list[PlannedItem] = field(default_factory=list)

    def count(self, target: str, status: str | None = None) -> int:
        return sum(1 for i in self.items if i.target == target and (status is None or i.status == status))

    @property
    def per_takeover(self) -> list[tuple[Member, int, int]]:
        """(successor, customers, groups) for the items that will be requested."""
        by_id = {m.pk: m for m in self.candidates}
        n: Counter[tuple[int, str]] = Counter(
            (i.takeover_id, i.target) for i in self.items if i.status == S.PENDING and i.takeover_id
        )
        return [(m, n[(m.pk, C)], n[(m.pk, G)]) for m in by_id.values() if n[(m.pk, C)] or n[(m.pk, G)]]

    @property
    def group_days(self) -> list[tuple[date, int]]:
        days = Counter(i.not_before for i in self.items if i.target == G and i.status == S.PENDING)
        return sorted((d, n) for d, n in days.items() if d is not None)

    @property
    def calls(self) -> int:
        """WeCom calls the plan needs at least (≤100 items per call, per successor)."""
        n: Counter[tuple[int | None, str, date | None]] = Counter(
            (i.takeover_id, i.target, i.not_before) for i in self.items if i.status == S.PENDING
        )
        return sum(-(-v // BATCH_SIZE) for v in n.values())


def _successors(
    *, corp: Corp, member: Member, rule: str, takeover: Member | None, candidates: Sequence[Member]
) -> list[Member]:
    if rule == Handover.Rule.MEMBER:
        if takeover is None:
            raise ValidationError(_("Choose the member who takes over."), code="takeover")
        chosen = [takeover]
    elif rule == Handover.Rule.LEAST_LOADED:
        if not candidates:
            raise ValidationError(_("Choose at least one member to share the customers."), code="candidates")
        chosen = list(candidates)
    elif rule == Handover.Rule.SAME_DEPARTMENT:
        departments = {int(d) for d in member.departments or []}
        if not departments:
            raise ValidationError(
                _("We don't know %(member)s's department: choose a member or a set of members instead.")
                % {"member": member},
                code="department",
            )
        pool = Member.objects.filter(corp=corp, status=Member.Status.ACTIVE, has_contact_permission=True)
        if candidates:
            pool = pool.filter(pk__in=[c.pk for c in candidates])
        chosen = [
            m for m in pool.exclude(pk=member.pk) if departments & {int(d) for d in m.departments or []}
        ]
        if not chosen:
            raise ValidationError(
                _("No other member with customer-contact permission works in %(member)s's department.")
                % {"member": member},
                code="department",
            )
    else:
        raise ValidationError(_("Unknown rule."), code="rule")
    for m in chosen:
        if m.corp_id != corp.pk:
            raise ValidationError(_("Unknown member."), code="takeover")
        if m.pk == member.pk:
            raise ValidationError(_("A member cannot take over their own customers."), code="takeover")
        if m.status != Member.Status.ACTIVE or not m.has_contact_permission:
            raise ValidationError(
                _("%(member)s has left or has no customer-contact permission and cannot take over.")
                % {"member": m},
                code="takeover",
            )
    return chosen


def _guard_history(
    *, corp: Corp, target: str, wecom_ids: Sequence[str], now: datetime
) -> dict[str, list[datetime]]:
    """When each customer (or group) was moved on the job in the last 90 days, by our requests."""
    since = now - timedelta(days=GUARD_DAYS)
    rows = HandoverItem.objects.filter(
        corp=corp,
        target=target,
        wecom_id__in=list(wecom_ids),
        handover__kind=Handover.Kind.ONJOB,
        status__in=STARTED,
        requested_at__gte=since,
    ).values_list("wecom_id", "requested_at")
    out: dict[str, list[datetime]] = defaultdict(list)
    for wecom_id, at in rows:
        if at is not None:
            out[wecom_id].append(at)
    return out


def _guard_note(times: list[datetime]) -> str:
    free = sorted(times)[-GUARD_TIMES] + timedelta(days=GUARD_DAYS)
    return _("Moved twice in 90 days already; possible again from %(day)s.") % {
        "day": shanghai_day(free).isoformat()
    }


def _group_budget_used(*, corp: Corp, kind: str, days: Iterable[date]) -> Counter[date]:
    """Group transfers requested, or planned and not yet requested, per Asia/Shanghai day."""
    days = list(days)
    used: Counter[date] = Counter()
    base = HandoverItem.objects.filter(corp=corp, target=G, handover__kind=kind)
    for day, n in (
        base.filter(requested_day__in=days).values_list("requested_day").annotate(n=Count("id")).order_by()
    ):
        used[day] += n
    for day, n in (
        base.filter(status=S.PENDING, not_before__in=days)
        .values_list("not_before")
        .annotate(n=Count("id"))
        .order_by()
    ):
        used[day] += n
    return used


def _spread_groups(*, corp: Corp, kind: str, items: list[PlannedItem], now: datetime) -> None:
    """Gives each pending group item the first Asia/Shanghai day with room under 300 requests."""
    pending = [i for i in items if i.target == G and i.status == S.PENDING]
    if not pending:
        return
    first = shanghai_day(now)
    horizon = [first + timedelta(days=k) for k in range(len(pending) // GROUPS_PER_DAY + 400)]
    used = _group_budget_used(corp=corp, kind=kind, days=horizon)
    day_index = 0
    for item in pending:
        while used[horizon[day_index]] >= GROUPS_PER_DAY:
            day_index += 1
        item.not_before = horizon[day_index]
        used[horizon[day_index]] += 1


def handover_plan(
    *,
    corp: Corp,
    kind: str,
    member: Member,
    rule: str,
    takeover: Member | None = None,
    candidates: Sequence[Member] = (),
    include_customers: bool = True,
    include_groups: bool = True,
    customer_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> Plan:
    """Who takes over what, and what will be held back and why. Reads only: the preview shows it."""
    now = _now(now)
    if member.corp_id != corp.pk:
        raise ValidationError(_("Unknown member."), code="member")
    if kind == Handover.Kind.RESIGNED and member.status != Member.Status.RESIGNED:
        raise ValidationError(_("%(member)s has not left the company.") % {"member": member}, code="member")
    if kind == Handover.Kind.ONJOB and member.status != Member.Status.ACTIVE:
        raise ValidationError(
            _("%(member)s has left: use the leaver's hand-over instead.") % {"member": member}, code="member"
        )
    successors = _successors(corp=corp, member=member, rule=rule, takeover=takeover, candidates=candidates)
    plan = Plan(kind=kind, member=member, rule=rule, candidates=successors)
    succ_ids = [m.pk for m in successors]

    follows = Follow.objects.filter(corp=corp, member=member, status=FollowStatus.ACTIVE)
    if customer_ids is not None:
        follows = follows.filter(customer_id__in=list(customer_ids))
    cust = list(follows.order_by("customer_id").values_list("customer_id", "customer__external_userid"))
    groups = (
        list(
            CustomerGroup.objects.filter(
                corp=corp, owner_userid=member.userid, status=CustomerGroup.Status.ACTIVE
            )
            .order_by("pk")
            .values_list("pk", "chat_id")
        )
        if include_groups
        else []
    )
    if not include_customers:
        cust = []

    # Load: live customers (groups owned) now, plus what open handovers are already bringing them.
    load_c: Counter[int] = Counter(
        dict(
            Follow.objects.filter(member_id__in=succ_ids, status=FollowStatus.ACTIVE)
            .values_list("member_id")
            .annotate(n=Count("id"))
            .order_by()
        )
    )
    load_g: Counter[int] = Counter()
    owner_by_userid = {m.userid: m.pk for m in successors}
    for owner, n in (
        CustomerGroup.objects.filter(corp=corp, owner_userid__in=list(owner_by_userid), status="active")
        .values_list("owner_userid")
        .annotate(n=Count("id"))
        .order_by()
    ):
        load_g[owner_by_userid[owner]] += n
    for takeover_id, target, n in (
        HandoverItem.objects.filter(corp=corp, takeover_id__in=succ_ids, status__in=OPEN)
        .values_list("takeover_id", "target")
        .annotate(n=Count("id"))
        .order_by()
    ):
        (load_c if target == C else load_g)[takeover_id] += n

    already: dict[int, set[int]] = defaultdict(set)  # customer pk -> successors following them already
    for customer_id, member_id in Follow.objects.filter(
        corp=corp, member_id__in=succ_ids, status=FollowStatus.ACTIVE, customer_id__in=[c for c, _ext in cust]
    ).values_list("customer_id", "member_id"):
        already[customer_id].add(member_id)

    def busy(target: str, ids: list[str]) -> dict[str, int]:
        return dict(
            HandoverItem.objects.filter(
                corp=corp, target=target, wecom_id__in=ids, status__in=OPEN
            ).values_list("wecom_id", "handover_id")
        )

    for target, rows, load in ((C, cust, load_c), (G, groups, load_g)):
        ids = [w for _pk, w in rows]
        in_flight = busy(target, ids)
        history = (
            _guard_history(corp=corp, target=target, wecom_ids=ids, now=now)
            if kind == Handover.Kind.ONJOB
            else {}
        )
        heap = [(load[m.pk], m.pk) for m in successors]
        heapq.heapify(heap)
        for pk, wecom_id in rows:
            item = PlannedItem(target=target, pk=pk, wecom_id=wecom_id, takeover_id=None)
            plan.items.append(item)
            if wecom_id in in_flight:
                item.status = S.SKIPPED
                item.note = _("Already part of hand-over #%(n)s.") % {"n": in_flight[wecom_id]}
                continue
            if len(history.get(wecom_id, ())) >= GUARD_TIMES:
                item.status, item.note = S.GUARDED, _guard_note(history[wecom_id])
                continue
            taken: list[tuple[int, int]] = []
            chosen: int | None = None
            while heap:
                entry = heapq.heappop(heap)
                if target == C and entry[1] in already.get(pk, ()):
                    taken.append(entry)
                    continue
                chosen = entry[1]
                heapq.heappush(heap, (entry[0] + 1, entry[1]))
                break
            for entry in taken:
                heapq.heappush(heap, entry)
            if chosen is None:
                item.status = S.SKIPPED
                item.note = _("The successor already follows this customer.")
                continue
            item.takeover_id = chosen
    if kind in (Handover.Kind.RESIGNED, Handover.Kind.ONJOB):
        _spread_groups(corp=corp, kind=kind, items=plan.items, now=now)
    return plan


def _lock_group_budget(*, corp: Corp, kind: str) -> None:
    """Serialises whoever plans or spends one corp's daily group budget (transaction-scoped)."""
    key = zlib.crc32(f"succession-groups:{corp.pk}:{kind}".encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def handover_create(
    *,
    corp: Corp,
    kind: str,
    member: Member,
    rule: str,
    takeover: Member | None = None,
    candidates: Sequence[Member] = (),
    include_customers: bool = True,
    include_groups: bool = True,
    customer_ids: Sequence[int] | None = None,
    transfer_success_msg: str = "",
    user: Any = None,
    now: datetime | None = None,
) -> Handover:
    """Plans and stores a handover, then queues its first run."""
    now = _now(now)
    if kind == Handover.Kind.ONJOB and len(transfer_success_msg) > 200:  # Doc 92125
        raise ValidationError(_("The message to the customer is at most 200 characters."), code="msg")
    try:
        with transaction.atomic():
            _lock_group_budget(corp=corp, kind=kind)
            plan = handover_plan(
                corp=corp,
                kind=kind,
                member=member,
                rule=rule,
                takeover=takeover,
                candidates=candidates,
                include_customers=include_customers,
                include_groups=include_groups,
                customer_ids=customer_ids,
                now=now,
            )
            if not plan.items:
                raise ValidationError(
                    _("%(member)s has no customers or groups to hand over.") % {"member": member}
                )
            handover = Handover.objects.create(
                corp=corp,
                kind=kind,
                member=member,
                rule=rule,
                candidate_ids=[m.pk for m in plan.candidates],
                transfer_success_msg=transfer_success_msg if kind == Handover.Kind.ONJOB else "",
                created_by=user if user is not None and user.pk else None,
            )
            fallback = plan.candidates[0].pk
            HandoverItem.objects.bulk_create(
                [
                    HandoverItem(
                        corp=corp,
                        handover=handover,
                        target=i.target,
                        customer_id=i.pk if i.target == C else None,
                        group_id=i.pk if i.target == G else None,
                        wecom_id=i.wecom_id,
                        takeover_id=i.takeover_id or fallback,
                        status=i.status,
                        note=i.note[:300],
                        not_before=i.not_before,
                        finished_at=None if i.status == S.PENDING else now,
                    )
                    for i in plan.items
                ],
                batch_size=1000,
            )
            if not HandoverItem.objects.filter(handover=handover, status=S.PENDING).exists():
                Handover.objects.filter(pk=handover.pk).update(status=Handover.Status.DONE, finished_at=now)
            handover_id = handover.pk
            transaction.on_commit(lambda: enqueue_run(handover_id))
    except IntegrityError as exc:  # another handover took some of these customers a moment ago
        raise ValidationError(
            _("Some of these customers were just put into another hand-over. Look at the preview again."),
            code="conflict",
        ) from exc
    handover.refresh_from_db()
    return handover


def _send(task: str, *args: Any) -> None:
    from tasks.celery import app

    try:
        app.send_task(task, args=args, queue="bulk")
    except Exception as exc:  # the beat's tick sends it again within a minute
        logger.warning("%s not enqueued: %s", task, type(exc).__name__)


def enqueue_run(handover_id: int) -> None:
    _send("tasks.succession.run_handover", handover_id)


def enqueue_poll(handover_id: int) -> None:
    _send("tasks.succession.poll_handover", handover_id)


def handover_cancel(*, corp: Corp, handover: Handover, now: datetime | None = None) -> int:
    """Stops a handover: items not yet requested are cancelled; requested ones run their course."""
    now = _now(now)
    with transaction.atomic():
        n = HandoverItem.objects.filter(corp=corp, handover=handover, status=S.PENDING).update(
            status=S.CANCELLED, finished_at=now
        )
        _maybe_finish(handover_id=handover.pk, now=now, cancelled=True)
    return n


def handover_resume(*, corp: Corp, handover: Handover) -> None:
    """After an admin fixed the configuration problem that stopped the requests."""
    Handover.objects.filter(corp=corp, pk=handover.pk).update(stop_reason="")
    handover_id = handover.pk
    transaction.on_commit(lambda: enqueue_run(handover_id))


def _maybe_finish(*, handover_id: int, now: datetime, cancelled: bool = False) -> None:
    if HandoverItem.objects.filter(handover_id=handover_id, status__in=OPEN).exists():
        return
    status = Handover.Status.CANCELLED if cancelled else Handover.Status.DONE
    Handover.objects.filter(pk=handover_id, status=Handover.Status.RUNNING).update(
        status=status, finished_at=now
    )


# -- requesting ---------------------------------------------------------------------------------------


def _claim_batch(*, handover: Handover, now: datetime) -> TransferBatch | None:
    """Claims the next ≤100 pending items of one successor (customers first, then today's groups)."""
    today = shanghai_day(now)
    with transaction.atomic():
        pending = HandoverItem.objects.filter(handover=handover, status=S.PENDING)
        for target in (C, G):
            qs = pending.filter(target=target)
            limit = BATCH_SIZE
            if target == G:
                _lock_group_budget(corp=handover.corp, kind=handover.kind)
                qs = qs.filter(not_before__lte=today)
                spent = HandoverItem.objects.filter(
                    corp=handover.corp, target=G, handover__kind=handover.kind, requested_day=today
                ).count()
                limit = min(limit, GROUPS_PER_DAY - spent)
                if limit <= 0:
                    continue
            first = qs.order_by("pk").values_list("takeover_id", flat=True).first()
            if first is None:
                continue
            rows = list(
                qs.filter(takeover_id=first)
                .select_for_update(skip_locked=True)
                .order_by("pk")
                .values_list("pk", "wecom_id")[:limit]
            )
            if not rows:
                continue
            if handover.kind == Handover.Kind.ONJOB:
                rows = _apply_guard(handover=handover, target=target, rows=rows, now=now)
                if not rows:
                    continue
            batch = TransferBatch.objects.create(
                corp=handover.corp,
                handover=handover,
                target=target,
                takeover_id=first,
                size=len(rows),
                lease_until=now + BATCH_LEASE,
            )
            HandoverItem.objects.filter(pk__in=[pk for pk, _w in rows]).update(
                status=S.REQUESTING, batch=batch, requested_at=now, requested_day=today
            )
            return batch
    return None


def _apply_guard(
    *, handover: Handover, target: str, rows: list[tuple[int, str]], now: datetime
) -> list[tuple[int, str]]:
    """Re-checks the 90-day guard just before the call (another handover may have moved them since)."""
    history = _guard_history(corp=handover.corp, target=target, wecom_ids=[w for _pk, w in rows], now=now)
    keep = []
    for pk, wecom_id in rows:
        times = history.get(wecom_id, [])
        if len(times) >= GUARD_TIMES:
            HandoverItem.objects.filter(pk=pk).update(
                status=S.GUARDED, note=_guard_note(times), finished_at=now
            )
        else:
            keep.append((pk, wecom_id))
    return keep


def _batch_items(batch: TransferBatch) -> list[HandoverItem]:
    return list(
        HandoverItem.objects.filter(batch=batch, status=S.REQUESTING)
        .select_related("customer")
        .order_by("pk")
    )


def _call(*, client: WeComClient, handover: Handover, batch: TransferBatch, ids: list[str]) -> dict[str, int]:
    """One WeCom call for the batch; returns errcode per item that failed (the rest started / moved)."""
    takeover = batch.takeover.userid
    if batch.target == G:
        if handover.kind == Handover.Kind.RESIGNED:
            # Reference: Doc 92127 (分配离职成员的客户群)
            answer = client.transfer_groupchat(chat_id_list=ids, new_owner=takeover)
        else:
            # Reference: Doc 95703 (分配在职成员的客户群)
            answer = client.onjob_transfer_groupchat(chat_id_list=ids, new_owner=takeover)
        return {f["chat_id"]: int(f.get("errcode", 0)) for f in answer.get("failed_chat_list", [])}
    if handover.kind == Handover.Kind.RESIGNED:
        # Reference: Doc 94081 (分配离职成员的客户)
        result = client.resigned_transfer_customer(
            handover_userid=handover.member.userid, takeover_userid=takeover, external_userid=ids
        )
    else:
        # Reference: Doc 92125 (分配在职成员的客户)
        result = client.transfer_customer(
            handover_userid=handover.member.userid,
            takeover_userid=takeover,
            external_userid=ids,
            transfer_success_msg=handover.transfer_success_msg or None,
        )
    codes = {c["external_userid"]: int(c.get("errcode", 0)) for c in result.get("customer", [])}
    return {ext: code for ext, code in codes.items() if code}


def _record_answer(
    *, handover: Handover, batch: TransferBatch, failed: dict[str, int], now: datetime
) -> None:
    with transaction.atomic():
        if not TransferBatch.objects.filter(pk=batch.pk, status=TransferBatch.Status.CLAIMED).update(
            status=TransferBatch.Status.ANSWERED, answered_at=now
        ):
            return  # reconciled meanwhile by someone who found our claim lapsed
        items = HandoverItem.objects.filter(batch=batch, status=S.REQUESTING)
        for wecom_id, code in failed.items():
            items.filter(wecom_id=wecom_id).update(status=S.FAILED, errcode=code, finished_at=now)
        if batch.target == G:
            moved = list(items.exclude(wecom_id__in=list(failed)).values_list("wecom_id", flat=True))
            items.filter(wecom_id__in=moved).update(status=S.DONE, finished_at=now)
            # Our own call produces no callback (Doc 96361): the new owner is recorded here.
            CustomerGroup.objects.filter(corp=handover.corp, chat_id__in=moved).update(
                owner_userid=batch.takeover.userid
            )
        else:
            items.exclude(wecom_id__in=list(failed)).update(status=S.WAITING)


def _release(batch: TransferBatch, status: str = TransferBatch.Status.RELEASED, **fields: Any) -> None:
    with transaction.atomic():
        if TransferBatch.objects.filter(pk=batch.pk, status=TransferBatch.Status.CLAIMED).update(
            status=status, answered_at=timezone.now(), **fields
        ):
            HandoverItem.objects.filter(batch=batch, status=S.REQUESTING).update(
                status=S.PENDING, batch=None, requested_at=None, requested_day=None
            )


def _reconcile(*, client: WeComClient, handover: Handover, batch: TransferBatch, now: datetime) -> None:
    """A batch whose answer we never recorded: ask WeCom what happened instead of calling again."""
    items = _batch_items(batch)
    found: dict[str, str] = {}
    if batch.target == C:
        for status, ext in _results(client=client, handover=handover, takeover=batch.takeover.userid):
            found[ext] = status
    else:
        for item in items:
            # Reference: Doc 92122 (groupchat/get: owner)
            owner = client.get_groupchat(item.wecom_id).get("group_chat", {}).get("owner", "")
            if owner == batch.takeover.userid:
                found[item.wecom_id] = S.DONE
    with transaction.atomic():
        if not TransferBatch.objects.filter(pk=batch.pk, status=TransferBatch.Status.CLAIMED).update(
            status=TransferBatch.Status.RECONCILED, answered_at=now
        ):
            return
        for item in items:
            outcome = found.get(item.wecom_id)
            if outcome is None:  # WeCom never started it: it goes back to the queue
                HandoverItem.objects.filter(pk=item.pk, status=S.REQUESTING).update(
                    status=S.PENDING, batch=None, requested_at=None, requested_day=None
                )
            else:
                _set_outcome(item=item, handover=handover, status=outcome, now=now)


def _results(*, client: WeComClient, handover: Handover, takeover: str) -> Iterable[tuple[str, str]]:
    if handover.kind == Handover.Kind.RESIGNED:
        # Reference: Doc 94082 (查询离职客户接替状态)
        pages = client.iter_resigned_transfer_result(
            handover_userid=handover.member.userid, takeover_userid=takeover
        )
    else:
        # Reference: Doc 94088 (查询在职客户接替状态)
        pages = client.iter_transfer_result(handover_userid=handover.member.userid, takeover_userid=takeover)
    for page in pages:
        for row in page.get("customer", []):
            status = RESULT_STATUS.get(int(row.get("status", 0)))
            if status is not None:
                yield status, row["external_userid"]


def _set_outcome(*, item: HandoverItem, handover: Handover, status: str, now: datetime) -> bool:
    """Moves one requested item to what WeCom says; True when it changed. Done customers move follows."""
    if status == S.WAITING:
        return bool(HandoverItem.objects.filter(pk=item.pk, status=S.REQUESTING).update(status=S.WAITING))
    changed = HandoverItem.objects.filter(pk=item.pk, status__in=(S.REQUESTING, S.WAITING)).update(
        status=status, finished_at=now
    )
    if changed and status == S.DONE and item.target == C:
        _apply_takeover(item=item, handover=handover, now=now)
    return bool(changed)


def _apply_takeover(*, item: HandoverItem, handover: Handover, now: datetime) -> None:
    """The customer is the successor's now. On-job, WeCom tells the handover member's side itself
    (del_external_contact, Source DELETE_BY_TRANSFER); a leaver's side we mark here."""
    t = int(now.timestamp())
    takeover = Member.objects.only("userid").get(pk=item.takeover_id)
    customers.follow_apply_event(
        corp=handover.corp,
        userid=takeover.userid,
        external_userid=item.wecom_id,
        event_time=t,
        rank=customers.RANK_ADD,
        status=FollowStatus.ACTIVE,
        timeline_kind="transferred_in",
        timeline_data={"from": handover.member.userid, "handover": handover.pk},
    )
    if handover.kind == Handover.Kind.RESIGNED:
        customers.follow_apply_event(
            corp=handover.corp,
            userid=handover.member.userid,
            external_userid=item.wecom_id,
            event_time=t,
            rank=customers.RANK_DELETE,
            status=FollowStatus.TRANSFERRED,
            timeline_kind="transferred_away",
            timeline_data={"to": takeover.userid, "handover": handover.pk},
        )


def handover_run(*, handover_id: int, now: datetime | None = None, max_batches: int = 50) -> bool:
    """Requests what is due. True when more is due right now (the caller queues another run).

    Transient WeCom errors are raised after the batch is released (or, when WeCom may have acted on it,
    checked): the task retries later."""
    handover = Handover.objects.select_related("corp", "member").filter(pk=handover_id).first()
    if handover is None or handover.status != Handover.Status.RUNNING or handover.stop_reason:
        return False
    now = _now(now)
    client = wecom_client(corp=handover.corp, lane="bulk")
    for lapsed in TransferBatch.objects.select_related("takeover").filter(
        handover=handover, status=TransferBatch.Status.CLAIMED, lease_until__lt=now
    ):
        _reconcile(client=client, handover=handover, batch=lapsed, now=now)
    Handover.objects.filter(pk=handover.pk).update(last_run_at=now)
    sent = 0
    while sent < max_batches:
        batch = _claim_batch(handover=handover, now=now)
        if batch is None:
            break
        sent += 1
        ids = [i.wecom_id for i in _batch_items(batch)]
        try:
            failed = _call(client=client, handover=handover, batch=batch, ids=ids)
        except (RateLimited, TransientError) as exc:
            if exc.errcode is not None or isinstance(exc, RateLimited):
                _release(batch, errcode=exc.errcode, error=str(exc)[:300])  # WeCom refused: nothing started
            else:
                try:  # no answer: WeCom may have acted on it
                    _reconcile(client=client, handover=handover, batch=batch, now=_now(None))
                except WeComError:
                    logger.warning("batch %s left claimed: checked once its lease lapses", batch.pk)
            raise
        except ConfigError as exc:
            _release(batch, errcode=exc.errcode, error=str(exc)[:300])
            Handover.objects.filter(pk=handover.pk).update(stop_reason=str(exc.message_key))
            return False
        except PermanentError as exc:  # the whole call refused (e.g. the takeover cannot take over)
            with transaction.atomic():
                TransferBatch.objects.filter(pk=batch.pk).update(
                    status=TransferBatch.Status.ANSWERED,
                    answered_at=now,
                    errcode=exc.errcode,
                    error=str(exc)[:300],
                )
                HandoverItem.objects.filter(batch=batch, status=S.REQUESTING).update(
                    status=S.FAILED, errcode=exc.errcode, finished_at=now
                )
            continue
        _record_answer(handover=handover, batch=batch, failed=failed, now=_now(None))
    _maybe_finish(handover_id=handover.pk, now=now)
    return sent >= max_batches and _due(handover=handover, now=now)


def _due(*, handover: Handover, now: datetime) -> bool:
    return (
        HandoverItem.objects.filter(handover=handover, status=S.PENDING)
        .filter(Q(target=C) | Q(not_before__lte=shanghai_day(now)))
        .exists()
    )


# -- results --------------------------------------------------------------------------------------------


def handover_poll(*, handover_id: int, now: datetime | None = None) -> int:
    """Asks WeCom where each waiting customer stands (transfer_result); returns how many changed."""
    handover = Handover.objects.select_related("corp", "member").filter(pk=handover_id).first()
    if handover is None:
        return 0
    now = _now(now)
    client = wecom_client(corp=handover.corp, lane="bulk")
    waiting = HandoverItem.objects.filter(handover=handover, target=C, status=S.WAITING)
    changed = 0
    takeovers = Member.objects.filter(pk__in=waiting.values("takeover_id").distinct())
    for takeover in takeovers:
        items = {i.wecom_id: i for i in waiting.filter(takeover=takeover)}
        for status, ext in _results(client=client, handover=handover, takeover=takeover.userid):
            item = items.get(ext)
            if item is None or status == S.WAITING:
                continue
            with transaction.atomic():
                changed += _set_outcome(item=item, handover=handover, status=status, now=now)
    Handover.objects.filter(pk=handover.pk).update(last_polled_at=now)
    _maybe_finish(handover_id=handover.pk, now=now)
    return changed


def transfer_fail_apply(*, corp: Corp, userid: str, external_userid: str, reason: str, at: datetime) -> bool:
    """WeCom's transfer_fail callback (Doc 92130): the customer refused, or the successor is full."""
    status = FAIL_REASONS.get(reason, S.FAILED)
    item = (
        HandoverItem.objects.filter(
            corp=corp, target=C, wecom_id=external_userid, status__in=(S.REQUESTING, S.WAITING)
        )
        .filter(Q(takeover__userid=userid) | Q(handover__member__userid=userid))
        .first()
    )
    if item is None:
        return False
    changed = HandoverItem.objects.filter(pk=item.pk, status__in=(S.REQUESTING, S.WAITING)).update(
        status=status, finished_at=at, note=reason[:300]
    )
    if changed:
        _maybe_finish(handover_id=item.handover_id, now=at)
    return bool(changed)


# -- leavers --------------------------------------------------------------------------------------------


def leaver_noted(*, corp: Corp, member: Member | None = None) -> None:
    """A member left (delete_user): fetch WeCom's unassigned list so their customers are all known."""
    corp_pk = corp.pk
    transaction.on_commit(lambda: _send("tasks.succession.refresh_unassigned", corp_pk))


def unassigned_refresh(*, corp: Corp) -> int:
    """Records every resigned member's customers that WeCom lists as waiting for a successor."""
    client = wecom_client(corp=corp, lane="bulk")
    seen = 0
    # Reference: Doc 92124 (获取待分配的离职成员列表)
    for page in client.iter_unassigned_list(page_size=1000):
        rows = page.get("info", [])
        seen += len(rows)
        with transaction.atomic():
            members: dict[str, Member] = {}
            touched: list[int] = []
            for row in rows:
                userid = row["handover_userid"]
                if userid not in members:
                    left = datetime.fromtimestamp(int(row.get("dimission_time") or 0), tz=UTC)
                    members[userid] = customers.member_mark_left(corp=corp, userid=userid, at=left)
                customer = customers.customer_get_or_create(corp=corp, external_userid=row["external_userid"])
                _follow, created = Follow.objects.get_or_create(
                    corp=corp,
                    customer=customer,
                    member=members[userid],
                    defaults={"status": FollowStatus.ACTIVE},
                )
                if created:
                    touched.append(customer.pk)
            customers.customers_recompute(customer_ids=touched)
    return seen


def handovers_tick(*, now: datetime | None = None) -> tuple[int, int]:
    """The beat: queues runs for handovers with work due and polls for those with customers waiting."""
    now = _now(now)
    runs = polls = 0
    today = shanghai_day(now)
    running = Handover.objects.filter(status=Handover.Status.RUNNING, stop_reason="")
    due = running.filter(
        Q(items__status=S.PENDING, items__target=C)
        | Q(items__status=S.PENDING, items__target=G, items__not_before__lte=today)
        | Q(batches__status=TransferBatch.Status.CLAIMED, batches__lease_until__lt=now)
    ).distinct()
    for pk in due.values_list("pk", flat=True):
        enqueue_run(pk)
        runs += 1
    stale = Q(last_polled_at__isnull=True) | Q(last_polled_at__lt=now - POLL_EVERY)
    for pk in running.filter(stale, items__status=S.WAITING).distinct().values_list("pk", flat=True):
        enqueue_poll(pk)
        polls += 1
    for pk in running.exclude(items__status__in=OPEN).values_list("pk", flat=True):
        _maybe_finish(handover_id=pk, now=now)
    return runs, polls


# -- de-duplication decisions ----------------------------------------------------------------------------


def dedup_decide(
    *, corp: Corp, customer: Customer, decision: str, keep_member: Member | None, note: str, user: Any = None
) -> Any:
    """Records what the admin decided for a customer followed by several members.

    WeCom has no API that ends a member's relationship with a customer, and an on-job transfer to a member
    who already follows the customer is refused: "keep one member" therefore means the other members
    delete the customer in their WeCom client; the report shows who still has to, until they have."""
    from scrm.succession.models import DedupDecision

    if customer.corp_id != corp.pk:
        raise ValidationError(_("Unknown customer."))
    if decision == DedupDecision.Decision.KEEP_ONE:
        if (
            keep_member is None
            or not Follow.objects.filter(
                corp=corp, customer=customer, member=keep_member, status=FollowStatus.ACTIVE
            ).exists()
        ):
            raise ValidationError(
                _("Choose one of the members who follow this customer now."), code="keep_member"
            )
    elif decision == DedupDecision.Decision.KEEP_ALL:
        keep_member = None
        if not note.strip():
            raise ValidationError(_("Say why every member keeps this customer."), code="note")
    else:
        raise ValidationError(_("Unknown decision."))
    row, _created = DedupDecision.objects.update_or_create(
        corp=corp,
        customer=customer,
        defaults={
            "decision": decision,
            "keep_member": keep_member,
            "note": note.strip()[:300],
            "decided_by": user if user is not None and user.pk else None,
        },
    )
    return row
