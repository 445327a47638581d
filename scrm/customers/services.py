"""Writes for members, customers, follows and tags: from callbacks, from WeCom reads, from our own calls.

Order safety: every follow remembers the (CreateTime, rank) of the newest event applied to it, so an
edit or delete that arrives before its add, a retry, or a replay never moves it backwards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from scrm.callbacks.models import InboxEvent
from scrm.customers.models import (
    Customer,
    Follow,
    FollowStatus,
    Member,
    Tag,
    TagGroup,
    TimelineEntry,
)
from scrm.tenancy.models import Corp

logger = logging.getLogger(__name__)

# Within one second a deletion is taken to come after an add or an edit.
RANK_ADD, RANK_EDIT, RANK_DELETE = 0, 1, 2


def _ts(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds else None


def _order_key(event_time: int, rank: int) -> int:
    return event_time * 10 + rank


def member_get_or_create(*, corp: Corp, userid: str) -> Member:
    member, _ = Member.objects.get_or_create(corp=corp, userid=userid)
    return member


def customer_get_or_create(*, corp: Corp, external_userid: str) -> Customer:
    customer, _ = Customer.objects.get_or_create(corp=corp, external_userid=external_userid)
    return customer


def timeline_add(
    *,
    corp: Corp,
    customer: Customer,
    kind: str,
    at: datetime,
    member: Member | None = None,
    data: Mapping[str, Any] | None = None,
    inbox_event: InboxEvent | None = None,
) -> None:
    if inbox_event is not None:
        TimelineEntry.objects.get_or_create(
            customer=customer,
            inbox_event=inbox_event,
            kind=kind,
            defaults={"corp": corp, "member": member, "at": at, "data": dict(data or {})},
        )
    else:
        TimelineEntry.objects.create(
            corp=corp, customer=customer, member=member, kind=kind, at=at, data=dict(data or {})
        )


# The events lane's hot path as one statement: member and customer upserted, the follow upserted
# (newest event wins), the timeline entry added. The member row is not locked (DO NOTHING, then read),
# so events of one member don't queue behind each other; a member inserted by a concurrent transaction
# that committed after this statement's snapshot shows up as no row, and the statement is run again.
#
# first_added_at only ever moves earlier: the earliest add of any member is when we first met them.
# The follow's status moves only for a later (CreateTime, rank); an add also fills in when the relation
# began even if a later deletion was applied first.
_APPLY_FOLLOW_EVENT = """
WITH m_new AS (
    INSERT INTO customers_member (corp_id, userid, name, departments, status, has_contact_permission,
        updated_at)
    VALUES (%(corp)s, %(userid)s, '', '[]', 'active', true, now())
    ON CONFLICT (corp_id, userid) DO NOTHING
    RETURNING id
), m AS (
    SELECT id FROM m_new
    UNION ALL
    SELECT id FROM customers_member WHERE corp_id = %(corp)s AND userid = %(userid)s
    LIMIT 1
), c AS (
    INSERT INTO customers_customer (corp_id, external_userid, name, avatar, type, gender, corp_name,
        corp_full_name, unionid, first_added_at, created_at, updated_at, tag_ids, member_ids, active_follows)
    VALUES (%(corp)s, %(ext)s, '', '', 0, 0, '', '', '', %(added_at)s, now(), now(), '{}', '{}', 0)
    ON CONFLICT (corp_id, external_userid) DO UPDATE SET first_added_at = CASE
        WHEN EXCLUDED.first_added_at IS NULL THEN customers_customer.first_added_at
        ELSE LEAST(customers_customer.first_added_at, EXCLUDED.first_added_at) END
    RETURNING id
), fol AS (
    INSERT INTO customers_follow AS f (corp_id, customer_id, member_id, remark, description, remark_mobiles,
        add_way, state, oper_userid, added_at, status, status_changed_at, last_event_time, tag_ids,
        updated_at)
    SELECT %(corp)s, c.id, m.id, '', '', '[]', 0, %(state)s, '', %(added_at)s, %(status)s, %(at)s, %(key)s,
        '{}', now()
    FROM c, m
    ON CONFLICT (corp_id, customer_id, member_id) DO UPDATE SET
        status = CASE WHEN EXCLUDED.last_event_time > f.last_event_time
            THEN EXCLUDED.status ELSE f.status END,
        status_changed_at = CASE WHEN EXCLUDED.last_event_time > f.last_event_time
            AND EXCLUDED.status <> f.status THEN EXCLUDED.status_changed_at ELSE f.status_changed_at END,
        added_at = CASE WHEN EXCLUDED.added_at IS NOT NULL
            AND (f.added_at IS NULL OR EXCLUDED.last_event_time > f.last_event_time)
            THEN EXCLUDED.added_at ELSE f.added_at END,
        state = CASE WHEN EXCLUDED.state <> '' AND (f.state = ''
            OR (EXCLUDED.added_at IS NOT NULL AND EXCLUDED.last_event_time > f.last_event_time))
            THEN EXCLUDED.state ELSE f.state END,
        last_event_time = GREATEST(f.last_event_time, EXCLUDED.last_event_time),
        updated_at = now()
    RETURNING id, customer_id, member_id
), tl AS (
    INSERT INTO customers_timelineentry (corp_id, customer_id, member_id, kind, at, data, inbox_event_id)
    SELECT %(corp)s, fol.customer_id, fol.member_id, %(kind)s, %(at)s, %(data)s, %(inbox_event)s FROM fol
    ON CONFLICT (customer_id, inbox_event_id, kind) WHERE inbox_event_id IS NOT NULL DO NOTHING
)
SELECT id, customer_id FROM fol
"""


def follow_apply_event(
    *,
    corp: Corp,
    userid: str,
    external_userid: str,
    event_time: int,
    rank: int,
    status: str,
    state: str | None = None,
    timeline_kind: str,
    timeline_data: Mapping[str, Any] | None = None,
    inbox_event: InboxEvent | None = None,
) -> int:
    """Applies an add / edit / delete of one member ↔ customer relation, newest event wins.

    The events lane's hot path: one statement of upserts (a retry or replay is a no-op, two workers racing
    on one relation serialise on its row), then the customer's derived arrays. Returns the follow's id.
    """
    at = _ts(event_time) or timezone.now()
    params: dict[str, Any] = {
        "corp": corp.pk,
        "userid": userid,
        "ext": external_userid,
        "state": (state or "")[:64],
        "added_at": at if rank == RANK_ADD else None,
        "status": status,
        "at": at,
        # An edit says nothing about whether the relation is live (a member may still edit a customer who
        # deleted them): it orders below every add and delete, whichever arrives first.
        "key": 0 if rank == RANK_EDIT else _order_key(event_time, rank),
        "kind": timeline_kind,
        "data": json.dumps(dict(timeline_data or {}), ensure_ascii=False),
        "inbox_event": inbox_event.pk if inbox_event else None,
    }
    # Inside the caller's transaction no savepoint is needed: a failure rolls the caller back.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(_APPLY_FOLLOW_EVENT, params)
        row = cursor.fetchone()
        if row is None:  # the member was inserted by a transaction this statement's snapshot didn't see
            cursor.execute(_APPLY_FOLLOW_EVENT, params)
            row = cursor.fetchone()
        follow_id, customer_id = row
        customers_recompute(customer_ids=[customer_id])
    return int(follow_id)


def customer_apply_contact(
    *, corp: Corp, contact: Mapping[str, Any], follow_users: Iterable[Mapping[str, Any]]
) -> Customer:
    """Stores what externalcontact/get (or batch/get_by_user) says about a customer and its follows.

    WeCom's answer describes the present: every follow in it is a live relation.
    """
    # Reference: Doc 92114 (external_contact + follow_user[])
    customer, _ = Customer.objects.update_or_create(
        corp=corp,
        external_userid=contact["external_userid"],
        defaults={
            "name": contact.get("name", "")[:100],
            "avatar": contact.get("avatar", "")[:500],
            "type": int(contact.get("type") or 0),
            "gender": int(contact.get("gender") or 0),
            "corp_name": contact.get("corp_name", "")[:100],
            "corp_full_name": contact.get("corp_full_name", "")[:200],
            "unionid": contact.get("unionid", "")[:64],
            "enriched_at": timezone.now(),
        },
    )
    for info in follow_users:
        follow_apply_info(corp=corp, customer=customer, info=info)
    customers_recompute(customer_ids=[customer.pk])
    return customer


@transaction.atomic
def follow_apply_info(
    *, corp: Corp, customer: Customer, info: Mapping[str, Any], sync_run: int | None = None
) -> Follow:
    member = member_get_or_create(corp=corp, userid=info["userid"])
    added_at = _ts(int(info.get("createtime") or 0))
    follow, _ = Follow.objects.select_for_update().get_or_create(
        corp=corp, customer=customer, member=member, defaults={"status": FollowStatus.ACTIVE}
    )
    follow.remark = (info.get("remark") or "")[:64]
    follow.description = (info.get("description") or "")[:300]
    follow.remark_mobiles = list(info.get("remark_mobiles") or [])
    follow.add_way = int(info.get("add_way") or 0)
    follow.oper_userid = info.get("oper_userid", "") or ""
    if info.get("state"):
        follow.state = info["state"][:64]
    if added_at:
        follow.added_at = added_at
        if customer.first_added_at is None or added_at < customer.first_added_at:
            customer.first_added_at = added_at
            customer.save(update_fields=["first_added_at", "updated_at"])
    # WeCom still lists a customer who deleted the member on the member's side (del_follow_user), so a
    # read never undoes that; only a new add event does.
    if follow.status not in (FollowStatus.ACTIVE, FollowStatus.DELETED_BY_CUSTOMER):
        follow.status, follow.status_changed_at = FollowStatus.ACTIVE, timezone.now()
    if sync_run is not None:
        follow.last_seen_sync = sync_run
    follow.save()
    tag_ids = [t["tag_id"] for t in info.get("tags") or [] if t.get("type", 1) == 1 and t.get("tag_id")]
    follow_set_tags(corp=corp, follow=follow, tag_ids=tag_ids)
    return follow


def follow_set_tags(*, corp: Corp, follow: Follow, tag_ids: Sequence[str]) -> None:
    """Makes the follow's corp tags exactly `tag_ids` (unknown tags wait for the next tag sync)."""
    wanted = sorted(
        Tag.objects.filter(corp=corp, tag_id__in=list(tag_ids), deleted=False).values_list("pk", flat=True)
    )
    if sorted(follow.tag_ids) != wanted:
        follow.tag_ids = wanted
        Follow.objects.filter(pk=follow.pk).update(tag_ids=wanted)


def follow_change_tags(*, corp: Corp, follow: Follow, add: Sequence[str], remove: Sequence[str]) -> None:
    """Our own mark_tag succeeded: WeCom sends no callback for it (Doc 96361), so record it here."""
    tags = dict(Tag.objects.filter(corp=corp, tag_id__in=[*add, *remove]).values_list("tag_id", "pk"))
    current = set(follow.tag_ids)
    current |= {tags[t] for t in add if t in tags}
    current -= {tags[t] for t in remove if t in tags}
    follow.tag_ids = sorted(current)
    Follow.objects.filter(pk=follow.pk).update(tag_ids=follow.tag_ids)
    customers_recompute(customer_ids=[follow.customer_id])


_RECOMPUTE = """
UPDATE customers_customer c SET
    tag_ids = COALESCE((
        SELECT array_agg(DISTINCT t ORDER BY t) FROM customers_follow f, unnest(f.tag_ids) AS t
        WHERE f.customer_id = c.id AND f.status = 'active'), '{}'),
    member_ids = COALESCE((
        SELECT array_agg(DISTINCT f.member_id ORDER BY f.member_id) FROM customers_follow f
        WHERE f.customer_id = c.id AND f.status = 'active'), '{}'),
    active_follows = (
        SELECT count(*) FROM customers_follow f WHERE f.customer_id = c.id AND f.status = 'active')
WHERE c.id = ANY(%s)
"""


def customers_recompute(*, customer_ids: Sequence[int]) -> None:
    """Re-derives each customer's tags, members and live-follow count from its follows (one statement)."""
    if customer_ids:
        with connection.cursor() as cursor:
            cursor.execute(_RECOMPUTE, [list(customer_ids)])


# -- tags -----------------------------------------------------------------------------------------


@transaction.atomic
def tags_apply_groups(
    *, corp: Corp, groups: Iterable[Mapping[str, Any]], complete: bool, created_by_us: bool = False
) -> None:
    """Stores tag groups and their tags from get_corp_tag_list / add_corp_tag answers.

    With `complete` (the whole list was fetched), anything not in it is marked deleted.
    """
    # Reference: Doc 92117 (tag_group[]: group_id, group_name, create_time, order, deleted, tag[])
    seen_groups: list[str] = []
    seen_tags: list[str] = []
    for g in groups:
        group, _ = TagGroup.objects.update_or_create(
            corp=corp,
            group_id=g["group_id"],
            defaults={
                "name": g.get("group_name", "")[:30],
                "order": int(g.get("order") or 0),
                "deleted": bool(g.get("deleted", False)),
                "created_at_wecom": _ts(int(g.get("create_time") or 0)),
            },
        )
        if created_by_us and not group.created_by_us:
            TagGroup.objects.filter(pk=group.pk).update(created_by_us=True)
        seen_groups.append(group.group_id)
        for t in g.get("tag") or []:
            defaults: dict[str, Any] = {
                "group": group,
                "name": t.get("name", "")[:30],
                "order": int(t.get("order") or 0),
                "deleted": bool(t.get("deleted", False)),
                "created_at_wecom": _ts(int(t.get("create_time") or 0)),
            }
            if created_by_us:
                defaults["created_by_us"] = True
            Tag.objects.update_or_create(corp=corp, tag_id=t["id"], defaults=defaults)
            seen_tags.append(t["id"])
    if complete:
        TagGroup.objects.filter(corp=corp).exclude(group_id__in=seen_groups).update(deleted=True)
        gone = Tag.objects.filter(corp=corp, deleted=False).exclude(tag_id__in=seen_tags)
        _untag(corp=corp, tag_pks=list(gone.values_list("pk", flat=True)))
        gone.update(deleted=True)


def tags_mark_deleted(*, corp: Corp, tag_ids: Sequence[str] = (), group_ids: Sequence[str] = ()) -> None:
    with transaction.atomic():
        tags = Tag.objects.filter(corp=corp).filter(
            Q(tag_id__in=list(tag_ids)) | Q(group__group_id__in=list(group_ids))
        )
        _untag(corp=corp, tag_pks=list(tags.values_list("pk", flat=True)))
        tags.update(deleted=True)
        TagGroup.objects.filter(corp=corp, group_id__in=list(group_ids)).update(deleted=True)


def _untag(*, corp: Corp, tag_pks: Sequence[int]) -> None:
    """Removes deleted tags from every follow and customer that carries them (GIN-indexed overlap)."""
    if not tag_pks:
        return
    with connection.cursor() as cursor:
        for table in ("customers_follow", "customers_customer"):
            cursor.execute(
                f"UPDATE {table} SET tag_ids = ARRAY("  # noqa: S608  (table names are constants)
                "SELECT unnest(tag_ids) EXCEPT SELECT unnest(%s::bigint[]) ORDER BY 1)"
                " WHERE corp_id = %s AND tag_ids && %s::bigint[]",
                [list(tag_pks), corp.pk, list(tag_pks)],
            )


# -- members --------------------------------------------------------------------------------------


def member_apply_info(*, corp: Corp, info: Mapping[str, Any]) -> Member:
    # Reference: Doc 90196 (user/get: userid, name, department[], status)
    member, _ = Member.objects.update_or_create(
        corp=corp,
        userid=info["userid"],
        defaults={"name": info.get("name", "")[:100], "departments": list(info.get("department") or [])},
    )
    return member


def member_mark_left(*, corp: Corp, userid: str, at: datetime) -> Member:
    member = member_get_or_create(corp=corp, userid=userid)
    if member.status != Member.Status.RESIGNED:
        member.status, member.left_at = Member.Status.RESIGNED, at
        member.save(update_fields=["status", "left_at", "updated_at"])
    return member


def member_rename(*, corp: Corp, userid: str, new_userid: str) -> None:
    # Reference: Doc 90970 (update_user carries NewUserID when an admin changes the userid)
    if Member.objects.filter(corp=corp, userid=new_userid).exists():
        return
    Member.objects.filter(corp=corp, userid=userid).update(userid=new_userid)
