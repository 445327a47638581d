"""Reads for broadcasts: the audience (set-based SQL over the customers app's filter and GIN arrays), its
preview, the list, and the report.

The audience is classified in one query: every candidate customer (or group) gets a sender and a reason —
"ok", or why it is left out (explicitly excluded, not a friend of any chosen sender, do-not-disturb tag,
receive quota reached). The preview counts it; sending turns the "ok" rows into chunks without loading
them into Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from scrm.acquisition.models import ChannelCode
from scrm.campaigns.models import (
    Broadcast,
    BroadcastAttachment,
    CampaignSettings,
    RecipientResult,
    SendChunk,
)
from scrm.campaigns.quota import period
from scrm.customers.models import Follow, Member
from scrm.customers.selectors import CustomerFilter, FilterError, customer_list
from scrm.tenancy.models import Corp

# WeCom's limits per add_msg_template call (Doc 92135).
MAX_SINGLE = 10_000
MAX_GROUPS = 2_000

REASONS: dict[str, str | Promise] = {
    "excluded": _("Excluded by you"),
    "not_friend": _("No longer a friend of a chosen member"),
    "dnd": _("Opted out (do-not-disturb tag)"),
    "quota": _("Receive quota reached"),
}
GROUP_REASONS: dict[str, str | Promise] = {
    "excluded": _("Excluded by you"),
    "not_friend": _("Owner has left or is not a member"),
    "quota": _("Receive quota reached"),
}


def settings_get(*, corp: Corp) -> CampaignSettings:
    found, _created = CampaignSettings.objects.get_or_create(corp=corp)
    return found


def _strings(raw: Any) -> tuple[str, ...]:
    if not raw:
        return ()
    parts = raw if isinstance(raw, list | tuple) else str(raw).replace("\n", ",").split(",")
    return tuple(sorted({p.strip() for part in parts for p in str(part).split(",") if p.strip()}))


def _ints(raw: Any) -> tuple[int, ...]:
    try:
        return tuple(sorted({int(p) for p in _strings(raw)}))
    except ValueError as exc:
        raise FilterError("ids must be numbers") from exc


@dataclass(frozen=True)
class Audience:
    """Who a broadcast goes to. Customers: the customer list's filter (tags AND / OR / NOT, sending members,
    date added) plus channel codes and explicit exclusions. Groups: owners, name, exclusions."""

    chat_type: str = "single"
    filters: CustomerFilter = field(default_factory=CustomerFilter)
    codes: tuple[int, ...] = ()  # ChannelCode pks: customers added through one of them
    exclude: tuple[str, ...] = ()  # external_userids (or chat_ids for groups)
    owners: tuple[int, ...] = ()  # group owners (Member pks)
    group_q: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, chat_type: str = "single") -> Audience:
        flat = {k: v for k, v in params.items() if k in ("tags_all", "tags_any", "tags_none", "members")}
        filters = CustomerFilter.from_params(
            {
                **{
                    k: ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
                    for k, v in flat.items()
                },
                "added_from": str(params.get("added_from") or ""),
                "added_to": str(params.get("added_to") or ""),
                "status": "all",
            }
        )
        return cls(
            chat_type=chat_type,
            filters=filters,
            codes=_ints(params.get("codes")),
            exclude=_strings(params.get("exclude")),
            owners=_ints(params.get("owners")),
            group_q=str(params.get("group_q") or "").strip()[:100],
        )

    def to_params(self) -> dict[str, Any]:
        f = self.filters
        return {
            "tags_all": list(f.tags_all),
            "tags_any": list(f.tags_any),
            "tags_none": list(f.tags_none),
            "members": list(f.members),
            "added_from": f.added_from.isoformat() if f.added_from else "",
            "added_to": f.added_to.isoformat() if f.added_to else "",
            "codes": list(self.codes),
            "exclude": list(self.exclude),
            "owners": list(self.owners),
            "group_q": self.group_q,
        }


def audience_of(broadcast: Broadcast) -> Audience:
    return Audience.from_params(broadcast.audience or {}, chat_type=broadcast.chat_type)


def _classified_single(
    *, corp: Corp, audience: Audience, rule: str, at: datetime, dnd_tag: int | None
) -> tuple[str, list[Any]]:
    """SQL (target, sender, reason) for every candidate customer, and its parameters."""
    f = audience.filters
    # The customer list's own filter (GIN scans on tag_ids), without its member condition: a customer a
    # chosen member no longer follows is a candidate too, to be counted as "not a friend".
    base = customer_list(
        corp=corp,
        filters=CustomerFilter(
            tags_all=f.tags_all,
            tags_any=f.tags_any,
            tags_none=f.tags_none,
            added_from=f.added_from,
            added_to=f.added_to,
            status="all",
        ),
    ).order_by()
    senders = list(f.members)
    if senders:  # semi-joins on the follow indexes, not a join that multiplies rows
        base = base.filter(
            pk__in=Follow.objects.filter(corp=corp, member_id__in=senders).values("customer_id")
        )
    if audience.codes:
        states = list(
            ChannelCode.objects.filter(corp=corp, pk__in=audience.codes).values_list("state", flat=True)
        )
        base = base.filter(pk__in=Follow.objects.filter(corp=corp, state__in=states).values("customer_id"))
    base_sql, base_params = base.values(
        "id", "external_userid", "member_ids", "tag_ids"
    ).query.sql_with_params()
    key, allowance = period(rule, at)
    if senders:
        pick = "(SELECT m FROM unnest(b.member_ids) m WHERE m = ANY(%s::bigint[]) ORDER BY m LIMIT 1)"
        pick_params: list[Any] = [senders]
    else:
        pick, pick_params = "b.member_ids[1]", []
    sql = f"""
        SELECT b.external_userid AS target, s.sender,
            CASE WHEN b.external_userid = ANY(%s::varchar[]) THEN 'excluded'
                 WHEN s.sender IS NULL THEN 'not_friend'
                 WHEN %s::bigint IS NOT NULL AND b.tag_ids @> ARRAY[%s::bigint] THEN 'dnd'
                 WHEN q.count >= %s THEN 'quota'
                 ELSE 'ok' END AS reason
        FROM ({base_sql}) b
        CROSS JOIN LATERAL (SELECT {pick} AS sender) s
        LEFT JOIN campaigns_quotaledger q
            ON q.corp_id = %s AND q.period = %s AND q.target = b.external_userid
    """  # noqa: S608  (only our own SQL and Django's compiled query are formatted in)
    # Parameter order follows the placeholders: CASE, then the subquery, then LATERAL, then the join.
    params = [list(audience.exclude), dnd_tag, dnd_tag, allowance, *base_params, *pick_params, corp.pk, key]
    return sql, params


def _classified_group(*, corp: Corp, audience: Audience, rule: str, at: datetime) -> tuple[str, list[Any]]:
    key, allowance = period(rule, at)
    where: list[str] = ["g.corp_id = %s", "g.status = 'active'"]
    params: list[Any] = [corp.pk]
    if audience.owners:
        owners = list(
            Member.objects.filter(corp=corp, pk__in=audience.owners).values_list("userid", flat=True)
        )
        where.append("g.owner_userid = ANY(%s::varchar[])")
        params.append(owners)
    if audience.group_q:
        where.append("g.name ILIKE %s")
        params.append("%" + audience.group_q.replace("%", r"\%").replace("_", r"\_") + "%")
    sql = f"""
        SELECT g.chat_id AS target, m.id AS sender,
            CASE WHEN g.chat_id = ANY(%s::varchar[]) THEN 'excluded'
                 WHEN m.id IS NULL THEN 'not_friend'
                 WHEN q.count >= %s THEN 'quota'
                 ELSE 'ok' END AS reason
        FROM groups_customergroup g
        LEFT JOIN customers_member m
            ON m.corp_id = g.corp_id AND m.userid = g.owner_userid AND m.status = 'active'
        LEFT JOIN campaigns_quotaledger q ON q.corp_id = %s AND q.period = %s AND q.target = g.chat_id
        WHERE {" AND ".join(where)}
    """  # noqa: S608
    return sql, [list(audience.exclude), allowance, corp.pk, key, *params]


def audience_sql(*, corp: Corp, audience: Audience, at: datetime | None = None) -> tuple[str, list[Any]]:
    at = at or timezone.now()
    s = settings_get(corp=corp)
    if audience.chat_type == "group":
        return _classified_group(corp=corp, audience=audience, rule=s.quota_rule, at=at)
    return _classified_single(corp=corp, audience=audience, rule=s.quota_rule, at=at, dnd_tag=s.dnd_tag_id)


@dataclass(frozen=True)
class SenderCount:
    member: Member
    count: int
    chunks: int


@dataclass(frozen=True)
class Preview:
    chat_type: str
    total: int  # who will receive it
    senders: list[SenderCount]
    excluded: dict[str, int]  # reason → how many
    quota_rule: str
    period: str
    allowance: int

    @property
    def excluded_total(self) -> int:
        return sum(self.excluded.values())

    def excluded_rows(self) -> list[tuple[str, str, int]]:
        labels = GROUP_REASONS if self.chat_type == "group" else REASONS
        return [(key, str(label), self.excluded.get(key, 0)) for key, label in labels.items()]


def audience_preview(*, corp: Corp, audience: Audience, at: datetime | None = None) -> Preview:
    """Audience size per sender and who is left out, and why. One aggregate query."""
    at = at or timezone.now()
    s = settings_get(corp=corp)
    sql, params = audience_sql(corp=corp, audience=audience, at=at)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT sender, reason, count(*) FROM ({sql}) x GROUP BY sender, reason", params)  # noqa: S608
        rows = cursor.fetchall()
    per_sender: dict[int, int] = {}
    excluded: dict[str, int] = {}
    for sender, reason, n in rows:
        if reason == "ok":
            per_sender[sender] = per_sender.get(sender, 0) + n
        else:
            excluded[reason] = excluded.get(reason, 0) + n
    members = Member.objects.filter(corp=corp, pk__in=per_sender).in_bulk()
    limit = MAX_GROUPS if audience.chat_type == "group" else MAX_SINGLE
    senders = sorted(
        (SenderCount(member=members[m], count=n, chunks=-(-n // limit)) for m, n in per_sender.items()),
        key=lambda c: (-c.count, c.member.userid),
    )
    key, allowance = period(s.quota_rule, at)
    return Preview(
        chat_type=audience.chat_type,
        total=sum(per_sender.values()),
        senders=senders,
        excluded=excluded,
        quota_rule=s.quota_rule,
        period=key,
        allowance=allowance,
    )


# -- list, detail, report ----------------------------------------------------------------------------


def broadcast_list(*, corp: Corp) -> QuerySet[Broadcast]:
    return Broadcast.objects.filter(corp=corp).select_related("created_by", "approved_by")


def broadcast_get(*, corp: Corp, pk: int) -> Broadcast:
    """The corp's broadcast `pk`; raises Broadcast.DoesNotExist for another corp's (shown as 404)."""
    return Broadcast.objects.get(corp=corp, pk=pk)


def attachments_of(*, broadcast: Broadcast) -> QuerySet[BroadcastAttachment]:
    return BroadcastAttachment.objects.filter(corp_id=broadcast.corp_id, broadcast=broadcast).select_related(
        "media"
    )


@dataclass(frozen=True)
class Progress:
    chunks_total: int
    chunks_done: int
    created: int
    failed: int
    recipients: int  # included in a created template
    over_quota: int

    @property
    def percent(self) -> int:
        return 100 if not self.chunks_total else round(100 * self.chunks_done / self.chunks_total)


def broadcast_progress(*, broadcast: Broadcast) -> Progress:
    by_status = dict(
        SendChunk.objects.filter(broadcast=broadcast).values_list("status").annotate(n=Count("id")).order_by()
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT COALESCE(sum(cardinality(reserved) - cardinality(fail_list))
                      FILTER (WHERE status = 'created'), 0), COALESCE(sum(over_quota), 0)
               FROM campaigns_sendchunk WHERE broadcast_id = %s""",
            [broadcast.pk],
        )
        recipients, over = cursor.fetchone() or (0, 0)
    finished = sum(by_status.get(s, 0) for s in ("created", "skipped", "failed", "cancelled"))
    return Progress(
        chunks_total=sum(by_status.values()),
        chunks_done=finished,
        created=by_status.get("created", 0),
        failed=by_status.get("failed", 0),
        recipients=int(recipients),
        over_quota=int(over),
    )


@dataclass(frozen=True)
class SenderReport:
    member: Member
    recipients: int
    confirmed: bool
    sent_at: datetime | None
    results: dict[int, int]
    remindable: bool


def broadcast_senders(*, broadcast: Broadcast) -> list[SenderReport]:
    """Each sender's confirmation and their recipients' results; unconfirmed senders first."""
    chunks = list(
        SendChunk.objects.filter(broadcast=broadcast, status=SendChunk.Status.CREATED).select_related(
            "sender"
        )
    )
    results: dict[int, dict[int, int]] = {}
    for sender_id, status, n in (
        RecipientResult.objects.filter(chunk__broadcast=broadcast)
        .values_list("chunk__sender_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        results.setdefault(sender_id, {})[status] = n
    out: dict[int, SenderReport] = {}
    for c in chunks:
        prev = out.get(c.sender_id)
        recipients = len(c.reserved) - len(c.fail_list) + (prev.recipients if prev else 0)
        confirmed = c.task_status == 2 and (prev.confirmed if prev else True)
        out[c.sender_id] = SenderReport(
            member=c.sender,
            recipients=recipients,
            confirmed=confirmed,
            sent_at=c.sent_at or (prev.sent_at if prev else None),
            results=results.get(c.sender_id, {}),
            remindable=not confirmed and broadcast.status == Broadcast.Status.SENT,
        )
    return sorted(out.values(), key=lambda r: (r.confirmed, r.member.userid))


def broadcast_results(*, broadcast: Broadcast) -> dict[int, int]:
    """Per-recipient result counts (RecipientResult.Status values)."""
    return dict(
        RecipientResult.objects.filter(chunk__broadcast=broadcast)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )


def deletion_rate(*, broadcast: Broadcast) -> float:
    """Share of recipients (percent) who deleted their member within 72 h of the send."""
    recipients = broadcast_progress(broadcast=broadcast).recipients
    return 0.0 if not recipients else 100.0 * broadcast.deletions / recipients


def due_broadcasts(*, now: datetime) -> QuerySet[Broadcast]:
    paused = CampaignSettings.objects.filter(paused=True).values("corp_id")
    return Broadcast.objects.filter(
        Q(scheduled_at__isnull=True) | Q(scheduled_at__lte=now), status=Broadcast.Status.SCHEDULED
    ).exclude(corp_id__in=paused)
