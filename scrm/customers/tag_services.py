"""Two-way corp tags: our own changes go to WeCom first, then to our copy; tags on follows, one or in bulk.

WeCom sends no callback for an app's own writes (Doc 96361), so every successful call here is recorded
locally right away through the same services that apply WeCom's answers (tags_apply_groups,
tags_mark_deleted, follow_change_tags). Console-side changes arrive as change_external_tag and are
applied by scrm.callbacks.apply + scrm.sync.services.tags_refresh.

Rules checked before calling WeCom, so an admin gets a plain answer instead of an errcode:
- an app may edit or delete only the tags and groups it created (Doc 92117);
- at most 3,000 tags per corp (Doc 92117) and names of 1-30 characters [3rd-party; WeCom: 40072];
- names unique inside a group, group names unique in the corp (WeCom: 40071).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from time import monotonic, sleep
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.core.wecom import wecom_client
from scrm.customers.models import BulkTagJob, Follow, FollowStatus, Member, Tag, TagGroup
from scrm.customers.selectors import CustomerFilter, customer_list
from scrm.customers.services import follow_change_tags, tags_apply_groups, tags_mark_deleted, timeline_add
from scrm.tenancy.models import Corp
from wecom.client import WeComClient
from wecom.errors import Category, PermanentError, RateLimited, TransientError, WeComError

logger = logging.getLogger(__name__)

TAG_CAP = 3000  # corp tags per corp (Doc 92117)
NAME_MAX = 30  # tag and group names [3rd-party]; WeCom answers 40072 beyond it
ORDER_MAX = 2**32 - 1  # order is an unsigned 32-bit integer in WeCom's API
# Interactive calls (a click in the dashboard) wait this long at most for a rate-limit token.
INTERACTIVE_WAIT_S = 5.0
# The customer-list filter parameters a bulk job keeps (CustomerFilter.from_params names).
FILTER_KEYS = (
    "q",
    "tags_all",
    "tags_any",
    "tags_none",
    "members",
    "added_from",
    "added_to",
    "status",
    "order",
)
# Bulk jobs: progress is written every CHUNK follows; a RateLimited wait up to MAX_SLEEP_S is slept in
# place, a longer one ends the run (the task comes back after it); transient errors get a few retries.
CHUNK = 50
MAX_SLEEP_S = 60.0
TRANSIENT_RETRIES = 3

User = AbstractBaseUser | AnonymousUser


class TagChangeRefused(Exception):
    """A change we refuse before calling WeCom; the message is for the person who asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- validation -----------------------------------------------------------------------------------


def _clean_name(raw: str) -> str:
    name = " ".join((raw or "").split())
    if not name:
        raise TagChangeRefused(_("Enter a name."))
    if len(name) > NAME_MAX:
        raise TagChangeRefused(
            _("Names can have at most %(max)d characters; “%(name)s” has %(n)d.")
            % {"max": NAME_MAX, "name": name, "n": len(name)}
        )
    return name


def _clean_order(order: int | None) -> int | None:
    if order is not None and not 0 <= order <= ORDER_MAX:
        raise TagChangeRefused(_("The order must be a whole number from 0 to 4294967295."))
    return order


def _clean_names(raw: Iterable[str]) -> list[str]:
    names = [_clean_name(n) for n in raw if (n or "").strip()]
    if not names:
        raise TagChangeRefused(_("Enter at least one tag name."))
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TagChangeRefused(
            _("Each tag name can appear only once: %(names)s.") % {"names": "、".join(repeated)}
        )
    return names


def _check_cap(*, corp: Corp, adding: int) -> None:
    live = Tag.objects.filter(corp=corp, deleted=False).count()
    if live + adding > TAG_CAP:
        raise TagChangeRefused(
            _(
                "WeCom allows at most %(cap)d tags per corp. You have %(live)d, so %(adding)d more would be "
                "too many: delete tags you no longer use first."
            )
            % {"cap": TAG_CAP, "live": live, "adding": adding}
        )


def _check_ours(item: Tag | TagGroup) -> None:
    if item.deleted:
        raise TagChangeRefused(_("“%(name)s” has been deleted.") % {"name": item.name})
    if not item.created_by_us:
        raise TagChangeRefused(
            _(
                "“%(name)s” was created in the WeCom admin console. WeCom lets this app change only the tags "
                "it created itself, so rename, move or delete it in the WeCom admin console."
            )
            % {"name": item.name}
        )


def _check_tag_names_free(*, group: TagGroup, names: Sequence[str], exclude: Tag | None = None) -> None:
    taken = Tag.objects.filter(corp_id=group.corp_id, group=group, deleted=False, name__in=list(names))
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    clash = sorted(taken.values_list("name", flat=True))
    if clash:
        raise TagChangeRefused(
            _("“%(group)s” already has a tag named %(names)s.")
            % {"group": group.name, "names": "、".join(clash)}
        )


def _check_group_name_free(*, corp: Corp, name: str, exclude: TagGroup | None = None) -> None:
    taken = TagGroup.objects.filter(corp=corp, deleted=False, name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise TagChangeRefused(_("There is already a tag group named “%(name)s”.") % {"name": name})


def _client(corp: Corp, lane: str = "events") -> WeComClient:
    return wecom_client(corp=corp, lane=lane).with_lane(lane, acquire_timeout=INTERACTIVE_WAIT_S)


def _epoch(at: datetime | None) -> int:
    return int(at.timestamp()) if at else 0


def _group_json(group: TagGroup, tags: Iterable[Tag] = (), **changes: Any) -> dict[str, Any]:
    """Our copy in get_corp_tag_list's shape, so local writes go through tags_apply_groups too."""
    return {
        "group_id": group.group_id,
        "group_name": group.name,
        "order": group.order,
        "create_time": _epoch(group.created_at_wecom),
        "tag": [
            {"id": t.tag_id, "name": t.name, "order": t.order, "create_time": _epoch(t.created_at_wecom)}
            for t in tags
        ],
        **changes,
    }


# -- tag groups and tags --------------------------------------------------------------------------


def tag_group_create(*, corp: Corp, name: str, tag_names: Sequence[str], order: int = 0) -> TagGroup:
    """A new group with its first tags (WeCom keeps no empty group)."""
    name = _clean_name(name)
    names = _clean_names(tag_names)
    _clean_order(order)
    _check_group_name_free(corp=corp, name=name)
    _check_cap(corp=corp, adding=len(names))
    # Reference: Doc 92117 (add_corp_tag with group_name: a new group; the answer is it with its tags)
    answer = _client(corp).add_corp_tag(
        group_name=name, order=order, tags=[{"name": n, "order": 0} for n in names]
    )
    group_data = answer["tag_group"]
    tags_apply_groups(corp=corp, groups=[group_data], complete=False, created_by_us=True)
    return TagGroup.objects.get(corp=corp, group_id=group_data["group_id"])


def tag_create(*, corp: Corp, group: TagGroup, names: Sequence[str], order: int = 0) -> list[Tag]:
    """New tags in one of our groups."""
    if group.corp_id != corp.pk:
        raise TagGroup.DoesNotExist
    clean = _clean_names(names)
    _clean_order(order)
    if group.deleted:
        raise TagChangeRefused(_("“%(name)s” has been deleted.") % {"name": group.name})
    if not group.created_by_us:
        # The sandbox reads "add to a group" as editing it; WeCom's docs only say an app edits its own tags.
        raise TagChangeRefused(
            _(
                "“%(name)s” was created in the WeCom admin console, and WeCom lets this app add tags only to "
                "groups it created. Add the tag in the WeCom admin console, or create a new group here."
            )
            % {"name": group.name}
        )
    _check_tag_names_free(group=group, names=clean)
    _check_cap(corp=corp, adding=len(clean))
    # Reference: Doc 92117 (add_corp_tag with group_id)
    answer = _client(corp).add_corp_tag(
        group_id=group.group_id, tags=[{"name": n, "order": order} for n in clean]
    )
    group_data = answer["tag_group"]
    tags_apply_groups(corp=corp, groups=[group_data], complete=False, created_by_us=True)
    new_ids = [t["id"] for t in group_data.get("tag") or []]
    return list(Tag.objects.filter(corp=corp, tag_id__in=new_ids).order_by("-order", "name"))


def tag_group_edit(
    *, corp: Corp, group: TagGroup, name: str | None = None, order: int | None = None
) -> TagGroup:
    """Renames and/or reorders one of our groups."""
    if group.corp_id != corp.pk:
        raise TagGroup.DoesNotExist
    _check_ours(group)
    new_name = _clean_name(name) if name is not None else None
    _clean_order(order)
    if new_name is not None:
        _check_group_name_free(corp=corp, name=new_name, exclude=group)
    if (new_name is None or new_name == group.name) and (order is None or order == group.order):
        return group
    # Reference: Doc 92117 (edit_corp_tag: id of a tag or a group, name, order)
    _client(corp).edit_corp_tag(id=group.group_id, name=new_name, order=order)
    changes: dict[str, Any] = {
        "group_name": new_name or group.name,
        "order": group.order if order is None else order,
    }
    tags_apply_groups(corp=corp, groups=[_group_json(group, **changes)], complete=False)
    group.refresh_from_db()
    return group


def tag_edit(*, corp: Corp, tag: Tag, name: str | None = None, order: int | None = None) -> Tag:
    """Renames and/or reorders one of our tags."""
    if tag.corp_id != corp.pk:
        raise Tag.DoesNotExist
    _check_ours(tag)
    new_name = _clean_name(name) if name is not None else None
    _clean_order(order)
    if new_name is not None:
        _check_tag_names_free(group=tag.group, names=[new_name], exclude=tag)
    if (new_name is None or new_name == tag.name) and (order is None or order == tag.order):
        return tag
    # Reference: Doc 92117 (edit_corp_tag)
    _client(corp).edit_corp_tag(id=tag.tag_id, name=new_name, order=order)
    if new_name is not None:
        tag.name = new_name
    if order is not None:
        tag.order = order
    tags_apply_groups(corp=corp, groups=[_group_json(tag.group, [tag])], complete=False)
    tag.refresh_from_db()
    return tag


def tag_group_delete(*, corp: Corp, group: TagGroup) -> None:
    """Deletes one of our groups and its tags, in WeCom and from every customer here."""
    if group.corp_id != corp.pk:
        raise TagGroup.DoesNotExist
    _check_ours(group)
    foreign = Tag.objects.filter(corp=corp, group=group, deleted=False, created_by_us=False)
    if foreign.exists():
        raise TagChangeRefused(
            _(
                "“%(name)s” holds tags added in the WeCom admin console (%(tags)s), which this app may not "
                "delete. Delete those in the console first."
            )
            % {"name": group.name, "tags": "、".join(foreign.values_list("name", flat=True)[:5])}
        )
    # Reference: Doc 92117 (del_corp_tag with group_id: the group and all its tags)
    _client(corp).del_corp_tag(group_id=[group.group_id])
    tags_mark_deleted(corp=corp, group_ids=[group.group_id])


def tag_delete(*, corp: Corp, tag: Tag) -> None:
    """Deletes one of our tags, in WeCom and from every customer here."""
    if tag.corp_id != corp.pk:
        raise Tag.DoesNotExist
    _check_ours(tag)
    client = _client(corp)
    # Reference: Doc 92117 (del_corp_tag with tag_id)
    client.del_corp_tag(tag_id=[tag.tag_id])
    tags_mark_deleted(corp=corp, tag_ids=[tag.tag_id])
    group = tag.group
    if not Tag.objects.filter(corp=corp, group=group, deleted=False).exists():
        # WeCom drops a group with its last tag; ask rather than assume.
        try:
            # Reference: Doc 92117 (get_corp_tag_list with group_id)
            found = client.get_corp_tag_list(group_id=[group.group_id]).get("tag_group", [])
        except PermanentError as exc:
            if exc.category != Category.RESYNC:  # 40068: no such group any more
                raise
            found = []
        if any(g.get("group_id") == group.group_id for g in found):
            tags_apply_groups(corp=corp, groups=found, complete=False)
        else:
            tags_mark_deleted(corp=corp, group_ids=[group.group_id])


def _plan_orders(items: Sequence[Tag | TagGroup]) -> dict[int, int]:
    """New orders for our items so `items` (top first) shows in that order; WeCom puts larger first.

    Console-created items can't be edited, so their orders are fixed points; our items between two of
    them must fit strictly between their orders. Returns {pk: new order} for the items that change.
    """
    changes: dict[int, int] = {}
    run: list[Tag | TagGroup] = []  # our items above `lower`, bottom first
    lower = -1
    for item in [*reversed(items), None]:
        if item is not None and item.created_by_us:
            run.append(item)
            continue
        upper = ORDER_MAX + 1 if item is None else item.order
        current = [i.order for i in run]
        fits = all(lower < o < upper for o in current) and all(a < b for a, b in pairwise(current))
        if not fits:
            if upper - lower - 1 < len(run):
                raise TagChangeRefused(
                    _(
                        "It can't move past “%(name)s”: tags made in the WeCom admin console keep their "
                        "positions, and there is no room between them. Reorder them in the console first."
                    )
                    % {"name": item.name if item is not None else run[-1].name}
                )
            changes.update({i.pk: lower + 1 + n for n, i in enumerate(run)})
        if item is not None:
            if item.order < lower:
                raise TagChangeRefused(
                    _("“%(name)s” was created in the WeCom admin console; move it there.")
                    % {"name": item.name}
                )
            lower = item.order
        run = []
    before = {i.pk: i.order for i in items}
    return {pk: o for pk, o in changes.items() if o != before[pk]}


def tag_move(*, corp: Corp, item: Tag | TagGroup, direction: str) -> None:
    """Moves one of our tags (within its group) or groups one place up or down."""
    if item.corp_id != corp.pk:
        raise type(item).DoesNotExist
    _check_ours(item)
    siblings: list[Tag | TagGroup]
    if isinstance(item, Tag):
        siblings = list(
            Tag.objects.filter(corp=corp, group=item.group_id, deleted=False).order_by("-order", "name")
        )
    else:
        siblings = list(TagGroup.objects.filter(corp=corp, deleted=False).order_by("-order", "name"))
    if direction not in ("up", "down"):
        raise TagChangeRefused(_("Move it up or down."))
    index = next(i for i, s in enumerate(siblings) if s.pk == item.pk)
    target = index - 1 if direction == "up" else index + 1
    if not 0 <= target < len(siblings):
        return  # already first or last
    siblings[index], siblings[target] = siblings[target], siblings[index]
    by_pk = {s.pk: s for s in siblings}
    # Each edit is recorded as soon as WeCom accepts it, so a failure half-way leaves no drift.
    for pk, order in _plan_orders(siblings).items():
        obj = by_pk[pk]
        if isinstance(obj, Tag):
            tag_edit(corp=corp, tag=obj, order=order)
        else:
            tag_group_edit(corp=corp, group=obj, order=order)


def tags_resync(*, corp: Corp) -> None:
    """Re-reads every tag from WeCom (the admin's "refresh" button, and after 40068)."""
    from scrm.sync.services import tags_refresh_all

    tags_refresh_all(corp=corp)


# -- tags on follows ------------------------------------------------------------------------------


def _actor(user: User | None) -> str:
    return user.get_username() if user is not None and user.is_authenticated else ""


def _mark(
    *,
    client: WeComClient,
    corp: Corp,
    follow: Follow,
    add: Sequence[Tag],
    remove: Sequence[Tag],
    by: str,
    job: BulkTagJob | None = None,
) -> None:
    add_ids, remove_ids = [t.tag_id for t in add], [t.tag_id for t in remove]
    # Reference: Doc 92118 (mark_tag: userid, external_userid, add_tag, remove_tag)
    client.mark_tag(
        userid=follow.member.userid,
        external_userid=follow.customer.external_userid,
        add_tag=add_ids,
        remove_tag=remove_ids,
    )
    with transaction.atomic():
        follow_change_tags(corp=corp, follow=follow, add=add_ids, remove=remove_ids)
        data: dict[str, Any] = {
            "by": by,
            "userid": follow.member.userid,
            "added": [t.name for t in add],
            "removed": [t.name for t in remove],
        }
        if job is not None:
            data["job"] = job.pk
        timeline_add(
            corp=corp,
            customer=follow.customer,
            kind="tags_changed",
            at=timezone.now(),
            member=follow.member,
            data=data,
        )


def follow_tags_change(
    *, corp: Corp, follow: Follow, add: Sequence[Tag], remove: Sequence[Tag], user: User | None
) -> bool:
    """Marks and unmarks tags on one member's view of a customer. False when there was nothing to do."""
    if follow.corp_id != corp.pk or any(t.corp_id != corp.pk for t in (*add, *remove)):
        raise Follow.DoesNotExist
    if follow.status != FollowStatus.ACTIVE:
        raise TagChangeRefused(
            _("This member and customer are no longer friends, so their tags can't change.")
        )
    if {t.pk for t in add} & {t.pk for t in remove}:
        raise TagChangeRefused(_("A tag can't be added and removed at once."))
    gone = [t.name for t in (*add, *remove) if t.deleted]
    if gone:
        raise TagChangeRefused(_("These tags have been deleted: %(names)s.") % {"names": "、".join(gone)})
    current = set(follow.tag_ids)
    add = [t for t in add if t.pk not in current]
    remove = [t for t in remove if t.pk in current]
    if not add and not remove:
        return False
    client = _client(corp)
    try:
        _mark(client=client, corp=corp, follow=follow, add=add, remove=remove, by=_actor(user))
    except PermanentError as exc:
        if exc.category == Category.RESYNC:  # 40068: our tag list is stale
            _resync_quietly(corp)
        raise
    return True


def _resync_quietly(corp: Corp) -> None:
    try:
        tags_resync(corp=corp)
    except WeComError as exc:
        logger.warning("tag resync after 40068 failed: %s", exc)


# -- bulk jobs ------------------------------------------------------------------------------------


def filter_params_of(params: Mapping[str, Any]) -> dict[str, list[str]]:
    """The customer-filter part of a request (QueryDict or plain mapping) as JSON-able lists."""
    out: dict[str, list[str]] = {}
    for key in FILTER_KEYS:
        if hasattr(params, "getlist"):
            values = [str(v) for v in params.getlist(key)]
        else:
            raw = params.get(key)
            values = (
                []
                if raw in (None, "")
                else [str(v) for v in (raw if isinstance(raw, list | tuple) else [raw])]
            )
        values = [v for v in values if v.strip()]
        if values:
            out[key] = values
    return out


def tag_bulk_job_create(
    *,
    corp: Corp,
    user: User | None,
    filter_params: Mapping[str, Any],
    add: Sequence[Tag],
    remove: Sequence[Tag],
    member: Member | None = None,
) -> BulkTagJob:
    """Validates and queues a bulk job; the bulk lane runs it (tasks.tags.run_bulk_tag_job)."""
    params = filter_params_of(filter_params)
    CustomerFilter.from_params(params)  # FilterError reaches the caller with its own message
    if any(t.corp_id != corp.pk for t in (*add, *remove)) or (
        member is not None and member.corp_id != corp.pk
    ):
        raise Tag.DoesNotExist
    if not add and not remove:
        raise TagChangeRefused(_("Choose at least one tag to add or remove."))
    if {t.pk for t in add} & {t.pk for t in remove}:
        raise TagChangeRefused(_("A tag can't be added and removed at once."))
    gone = [t.name for t in (*add, *remove) if t.deleted]
    if gone:
        raise TagChangeRefused(_("These tags have been deleted: %(names)s.") % {"names": "、".join(gone)})
    job = BulkTagJob.objects.create(
        corp=corp,
        created_by=user if isinstance(user, AuthUser) else None,
        filter_params=params,
        member=member,
        add_tag_ids=sorted(t.pk for t in add),
        remove_tag_ids=sorted(t.pk for t in remove),
    )
    job_pk = job.pk

    def enqueue() -> None:
        from tasks.celery import app

        try:
            app.send_task("tasks.tags.run_bulk_tag_job", args=(job_pk,), queue="bulk")
        except Exception as exc:  # the job stays queued; its page offers to start it again
            logger.warning("bulk tag job %s not enqueued: %s", job_pk, type(exc).__name__)

    transaction.on_commit(enqueue)
    return job


def tag_bulk_job_resume(*, corp: Corp, job: BulkTagJob) -> None:
    """Enqueues an unfinished job again (after a lost queue message); the cursor makes it safe."""
    if job.corp_id != corp.pk:
        raise BulkTagJob.DoesNotExist
    if job.finished:
        return
    from tasks.celery import app

    app.send_task("tasks.tags.run_bulk_tag_job", args=(job.pk,), queue="bulk")


def tag_bulk_job_cancel(*, corp: Corp, job: BulkTagJob) -> bool:
    """Stops a job after the follow being marked; True if it was still going."""
    return bool(
        BulkTagJob.objects.filter(
            corp=corp, pk=job.pk, status__in=[BulkTagJob.Status.QUEUED, BulkTagJob.Status.RUNNING]
        ).update(status=BulkTagJob.Status.CANCELLED, finished_at=timezone.now())
    )


def bulk_job_follows(*, job: BulkTagJob) -> QuerySet[Follow]:
    """The live follows of the customers the job's filter selects (only `member`'s when set)."""
    filters = CustomerFilter.from_params(job.filter_params)
    customers = customer_list(corp=job.corp, filters=filters).order_by().values("pk")
    follows = Follow.objects.filter(corp=job.corp, status=FollowStatus.ACTIVE, customer__in=customers)
    if job.member_id is not None:
        follows = follows.filter(member_id=job.member_id)
    return follows


def tag_bulk_job_fail(*, job_id: int, reason: str) -> None:
    BulkTagJob.objects.filter(
        pk=job_id, status__in=[BulkTagJob.Status.QUEUED, BulkTagJob.Status.RUNNING]
    ).update(status=BulkTagJob.Status.FAILED, stop_reason=reason[:64], finished_at=timezone.now())


@dataclass
class _Progress:
    cursor: int
    done: int = 0
    failed: int = 0
    errors: dict[str, dict[str, Any]] | None = None

    def fail(self, exc: WeComError) -> None:
        self.failed += 1
        errors = self.errors if self.errors is not None else {}
        entry = errors.setdefault(str(exc.message_key), {"count": 0, "errmsg": ""})
        entry["count"] += 1
        entry["errmsg"] = exc.errmsg[:200]
        self.errors = errors


def _merge_errors(old: Mapping[str, Any], new: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
    merged = {k: dict(v) for k, v in old.items()}
    for key, entry in (new or {}).items():
        slot = merged.setdefault(key, {"count": 0, "errmsg": ""})
        slot["count"] = int(slot.get("count", 0)) + int(entry["count"])
        slot["errmsg"] = entry["errmsg"]
    return merged


def _flush(job: BulkTagJob, progress: _Progress, last_pk: int) -> bool:
    """Records progress if this run still owns the job (its cursor unchanged); True: keep going.

    Progress is recorded even after a cancel, so the page shows every follow that was marked.
    """
    if last_pk != progress.cursor:
        updated = BulkTagJob.objects.filter(pk=job.pk, cursor=progress.cursor).update(
            cursor=last_pk,
            done=F("done") + progress.done,
            failed=F("failed") + progress.failed,
            errors=_merge_errors(job.errors, progress.errors),
            updated_at=timezone.now(),
        )
        if not updated:
            return False  # another delivery of the task moved the cursor: it owns the job now
    job.refresh_from_db(fields=["cursor", "done", "failed", "errors", "status"])
    progress.cursor, progress.done, progress.failed, progress.errors = job.cursor, 0, 0, None
    return job.status == BulkTagJob.Status.RUNNING


def _live_tags(corp: Corp, pks: Sequence[int]) -> list[Tag]:
    return list(Tag.objects.filter(corp=corp, pk__in=list(pks), deleted=False))


def tag_bulk_job_run(
    *, job_id: int, max_follows: int | None = None, max_seconds: float | None = None
) -> bool:
    """Marks the job's follows from its cursor on, in pk order. True when more remain for another run.

    Runs are bounded (max_follows / max_seconds) so one job never holds a worker past the broker's
    visibility timeout and jobs of several corps take turns in the bulk lane.
    """
    job = BulkTagJob.objects.select_related("corp", "created_by").get(pk=job_id)
    corp = job.corp
    if job.finished:
        return False
    if job.status == BulkTagJob.Status.QUEUED:
        total = bulk_job_follows(job=job).count()
        BulkTagJob.objects.filter(pk=job.pk, status=BulkTagJob.Status.QUEUED).update(
            status=BulkTagJob.Status.RUNNING, total=total, started_at=timezone.now()
        )
        job.refresh_from_db()
        if job.status != BulkTagJob.Status.RUNNING:
            return False
    add, remove = _live_tags(corp, job.add_tag_ids), _live_tags(corp, job.remove_tag_ids)
    client = wecom_client(corp=corp, lane="bulk")
    by = job.created_by.get_username() if job.created_by is not None else ""
    progress = _Progress(cursor=job.cursor)
    last_pk = job.cursor
    started = monotonic()
    follows = (
        bulk_job_follows(job=job)
        .filter(pk__gt=job.cursor)
        .select_related("member", "customer")
        .order_by("pk")
    )
    for handled, follow in enumerate(follows.iterator(chunk_size=CHUNK), start=1):
        if not add and not remove:
            break  # every tag of the job was deleted in WeCom meanwhile
        attempt = 0
        while True:
            try:
                _mark(client=client, corp=corp, follow=follow, add=add, remove=remove, by=by, job=job)
                progress.done += 1
                break
            except RateLimited as exc:
                wait = exc.retry_after if exc.retry_after is not None else MAX_SLEEP_S
                if wait > MAX_SLEEP_S:
                    _flush(job, progress, last_pk)
                    raise  # the task retries after the window (tasks.retry.retry_transient)
                sleep(wait)
            except TransientError:
                attempt += 1
                if attempt > TRANSIENT_RETRIES:
                    _flush(job, progress, last_pk)
                    raise
                sleep(2.0**attempt)
            except PermanentError as exc:
                if exc.category == Category.CONFIG:
                    _flush(job, progress, last_pk)
                    tag_bulk_job_fail(job_id=job.pk, reason=str(exc.message_key))
                    return False
                progress.fail(exc)
                if exc.category == Category.RESYNC:  # 40068: a tag is gone; re-read and go on without it
                    _resync_quietly(corp)
                    add, remove = (
                        _live_tags(corp, [t.pk for t in add]),
                        _live_tags(corp, [t.pk for t in remove]),
                    )
                break
        last_pk = follow.pk
        if handled % CHUNK == 0 and not _flush(job, progress, last_pk):
            return False  # cancelled, or another delivery of the task owns the job now
        out_of_budget = (max_follows is not None and handled >= max_follows) or (
            max_seconds is not None and monotonic() - started >= max_seconds
        )
        if out_of_budget:
            if not _flush(job, progress, last_pk):
                return False
            return follows.filter(pk__gt=last_pk).exists()
    if not _flush(job, progress, last_pk):
        return False
    if not add and not remove:
        tag_bulk_job_fail(job_id=job.pk, reason="40068")
    else:
        BulkTagJob.objects.filter(pk=job.pk, status=BulkTagJob.Status.RUNNING).update(
            status=BulkTagJob.Status.DONE, finished_at=timezone.now()
        )
    return False


# -- reads for the pages --------------------------------------------------------------------------


@dataclass(frozen=True)
class JobError:
    key: str
    errcode: int | None
    count: int
    message: str


def bulk_job_errors(*, job: BulkTagJob, lang: str) -> list[JobError]:
    """The job's failures by errcode, most frequent first, each in plain language."""
    from wecom.messages import message_for

    rows = []
    for key, entry in job.errors.items():
        code: int | str = int(key) if key.lstrip("-").isdigit() else key
        rows.append(
            JobError(
                key=key,
                errcode=code if isinstance(code, int) else None,
                count=int(entry.get("count", 0)),
                message=message_for(code, lang),
            )
        )
    return sorted(rows, key=lambda r: -r.count)


def bulk_job_list(*, corp: Corp, limit: int = 10) -> QuerySet[BulkTagJob]:
    return BulkTagJob.objects.filter(corp=corp).select_related("created_by").order_by("-created_at")[:limit]
