"""Reads from WeCom that heal our state: one customer, one group, some tags, one member — and the full
sync, which streams everything page by page at onboarding and nightly."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Model, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from scrm.core.wecom import wecom_client
from scrm.customers import services as customers
from scrm.customers.models import Customer, Follow, FollowStatus, Member, Tag
from scrm.groups import services as groups
from scrm.groups.models import CustomerGroup, GroupMember
from scrm.sync import models as sync_models
from scrm.sync.models import SyncRun
from scrm.tenancy.models import Corp
from wecom.client import WeComClient
from wecom.errors import ConfigError, PermanentError, RateLimited, TransientError, WeComError

logger = logging.getLogger(__name__)

# Reference: Doc 92114 / 92113 — 84061 (no relationship) and 40096 (bad external_userid) mean there is
# nothing to fetch: the relation is gone, which the deletion events already recorded.
GONE = {84061, 40096}


def customer_refresh(*, corp: Corp, external_userid: str) -> None:
    """externalcontact/get, every page of follow_user: the customer's profile and each live follow."""
    client = wecom_client(corp=corp, lane="events")
    contact = None
    follow_users: list[Any] = []
    try:
        for page in client.iter_external_contact(external_userid):
            contact = page["external_contact"]
            follow_users.extend(page.get("follow_user", []))
    except PermanentError as exc:
        if exc.errcode in GONE:
            logger.info("customer no longer reachable (errcode %s)", exc.errcode)
            return
        raise
    if contact is not None:
        customers.customer_apply_contact(corp=corp, contact=contact, follow_users=follow_users)


def group_refresh(*, corp: Corp, chat_id: str) -> None:
    client = wecom_client(corp=corp, lane="events")
    answer = client.get_groupchat(chat_id, need_name=True)
    groups.group_apply_details(corp=corp, chat=answer["group_chat"])


def tags_refresh(*, corp: Corp, kind: str, wecom_id: str) -> None:
    """Re-reads one tag or tag group after a console-side change (change_external_tag)."""
    client = wecom_client(corp=corp, lane="events")
    if kind == "group":
        answer = client.get_corp_tag_list(group_id=[wecom_id])
    else:
        answer = client.get_corp_tag_list(tag_id=[wecom_id])
    customers.tags_apply_groups(corp=corp, groups=answer.get("tag_group", []), complete=False)


def tags_refresh_all(*, corp: Corp) -> None:
    client = wecom_client(corp=corp, lane="bulk")
    answer = client.get_corp_tag_list()
    customers.tags_apply_groups(corp=corp, groups=answer.get("tag_group", []), complete=True)


def member_refresh(*, corp: Corp, userid: str) -> None:
    client = wecom_client(corp=corp, lane="events")
    try:
        info = client.get_user(userid)
    except PermanentError as exc:
        if exc.errcode in (60111, 40003, 60011):  # no such user, or outside the app's visibility
            logger.info("member %s not readable (errcode %s)", userid, exc.errcode)
            return
        raise
    customers.member_apply_info(corp=corp, info=info)


# == Full sync ======================================================================================
# Streams WeCom into our tables page by page (memory stays flat) and heals what callbacks missed. Each
# page is one transaction: its bulk upserts and the run's checkpoint commit together, so a run that dies
# continues from the last committed page and nothing is written twice. See SyncRun for the fields.

PAGE_LIMIT = 100  # Doc 92994: limit ≤ 100
# groupchat/list allows 1,000 per page; 100 keeps each checkpoint to ≤100 groupchat/get calls.
GROUP_PAGE_LIMIT = 100
# Parallel reads for the per-item APIs (user/get, groupchat/get); the shared limiter still paces them.
FETCH_THREADS = 4
# Longer than any page can take (a rate-limit wait gives up after 30 s); renewed by every page.
LEASE = timedelta(seconds=90)
# Transient failures in a row, without a page committed in between, before the run is marked failed.
MAX_ATTEMPTS = 8
RECONCILE_BATCH = 5000
# A first sync counts each member's customers for its progress bar when there are at most this many.
COUNT_FOLLOWS_UP_TO = 1000
# See _Statistics: never analyse before this many rows were written.
ANALYZE_MIN_ROWS = 5000
# Reference: Doc 92122 — 40050: the chat_id is no longer valid (dismissed between list and get).
GROUP_GONE = 40050
# user/get: no such user (60111), outside the app's visibility (60011), bad userid (40003).
MEMBER_UNREADABLE = {60111, 60011, 40003}


class SyncBusy(Exception):
    """Another worker holds this run's lease; look again after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"run is held by another worker for {retry_after:.0f} s")
        self.retry_after = retry_after


class SyncInterrupted(Exception):
    """A transient failure (rate limit, network, database): retry from the checkpoint."""

    def __init__(self, attempt: int, retry_after: float | None) -> None:
        super().__init__(f"attempt {attempt}, retry after {retry_after}")
        self.attempt = attempt
        self.retry_after = retry_after


class _LeaseLost(Exception):
    """Our lease was taken over (we stalled past it): stop without writing."""


def _enqueue(run_id: int) -> None:
    from tasks.sync import full_sync

    try:
        # tasks.sync.* is routed to the events lane by default: a full sync is bulk work.
        full_sync.apply_async(args=(run_id,), queue="bulk")
    # Broker down: the run stays queued; the next start or the nightly beat sends it again.
    except Exception as exc:
        logger.warning("full sync %s not enqueued: %s", run_id, type(exc).__name__)


def full_sync_start(
    *, corp: Corp, trigger: str = SyncRun.Trigger.MANUAL, user: User | None = None
) -> tuple[SyncRun, bool]:
    """Creates and enqueues a full sync, or returns the corp's run in progress (created False).

    A run in progress whose worker is gone (lease lapsed, no progress for a lease period) is enqueued
    again: it resumes from its checkpoint, and a leftover duplicate message finds it busy or finished.
    """
    now = timezone.now()
    with transaction.atomic():
        active = SyncRun.objects.select_for_update().filter(corp=corp, status__in=SyncRun.ACTIVE).first()
        if active is not None:
            lapsed = active.lease_expires_at is None or active.lease_expires_at < now
            if lapsed and active.updated_at < now - LEASE:
                run_id = active.pk
                transaction.on_commit(lambda: _enqueue(run_id))
            return active, False
        try:
            with transaction.atomic():
                run = SyncRun.objects.create(
                    corp=corp, trigger=trigger, requested_by=user if user and user.pk else None
                )
        except IntegrityError:  # a concurrent start won the one-active-run constraint
            return SyncRun.objects.get(corp=corp, status__in=SyncRun.ACTIVE), False
        run_id = run.pk
        transaction.on_commit(lambda: _enqueue(run_id))
    return run, True


def full_sync_start_nightly() -> int:
    """The beat's nightly reconciliation: one run per corp (a corp already syncing keeps its run)."""
    started = 0
    for corp in Corp.objects.order_by("pk").iterator():
        _, created = full_sync_start(corp=corp, trigger=SyncRun.Trigger.NIGHTLY)
        started += created
    return started


def full_sync_execute(*, run_id: int) -> None:
    """Runs (or resumes) a full sync until it is done, fails, or has to wait.

    Raises SyncBusy when another worker holds the run, SyncInterrupted after a transient failure (the
    caller retries later; the checkpoint is kept). A permanent WeCom error marks the run failed with its
    errcode; any other error marks it failed and is re-raised.
    """
    token = uuid.uuid4().hex
    run = _claim(run_id=run_id, token=token)
    if run is None:
        return
    client = wecom_client(corp=run.corp, lane="bulk")
    try:
        with ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="sync-fetch") as pool:
            _Sync(run=run, token=token, client=client, pool=pool).drive()
    except _LeaseLost:
        logger.warning("full sync %s: lease taken over, stopping", run_id)
    except (TransientError, OperationalError, InterfaceError) as exc:
        interrupted = _interrupted(run=run, token=token, exc=exc)
        if interrupted is not None:
            raise interrupted from exc
    except PermanentError as exc:
        logger.warning("full sync %s failed: %s", run_id, exc)
        _fail(run=run, token=token, exc=exc)
    except Exception as exc:
        logger.exception("full sync %s failed", run_id)
        _fail(run=run, token=token, exc=exc)
        raise


def _claim(*, run_id: int, token: str) -> SyncRun | None:
    """Takes the run's lease with a conditional UPDATE; None when there is nothing left to do."""
    now = timezone.now()
    claimed = (
        SyncRun.objects.filter(pk=run_id, status__in=SyncRun.ACTIVE)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .update(
            status=SyncRun.Status.RUNNING,
            lease_token=token,
            lease_expires_at=now + LEASE,
            started_at=Coalesce("started_at", Value(now)),
            updated_at=now,
        )
    )
    if not claimed:
        row = SyncRun.objects.filter(pk=run_id).values("status", "lease_expires_at").first()
        if row is None or row["status"] not in SyncRun.ACTIVE:
            return None
        held = row["lease_expires_at"]
        raise SyncBusy(max(1.0, (held - now).total_seconds() + 1.0) if held else 1.0)
    return SyncRun.objects.select_related("corp").get(pk=run_id)


def _error_fields(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, WeComError):
        detail = " ".join(p for p in (exc.api or "", exc.errmsg, f"hint={exc.hint}" if exc.hint else "") if p)
        return {
            "error_code": exc.errcode,
            "error_key": str(exc.message_key if exc.message_key is not None else ""),
            "error_detail": detail[:500],
        }
    return {"error_code": None, "error_key": "", "error_detail": f"{type(exc).__name__}: {exc}"[:500]}


def _interrupted(*, run: SyncRun, token: str, exc: BaseException) -> SyncInterrupted | None:
    """Counts a transient failure and gives the lease back; past MAX_ATTEMPTS the run fails (None)."""
    retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
    attempt = run.attempts + 1
    try:
        with transaction.atomic():
            row = SyncRun.objects.select_for_update().filter(pk=run.pk, lease_token=token).first()
            if row is None:
                return SyncInterrupted(attempt, retry_after)
            attempt = row.attempts + 1
            fields = {**_error_fields(exc), "attempts": attempt, "lease_token": "", "lease_expires_at": None}
            if attempt > MAX_ATTEMPTS:
                fields.update(status=SyncRun.Status.FAILED, finished_at=timezone.now())
            SyncRun.objects.filter(pk=row.pk).update(**fields, updated_at=timezone.now())
    except DatabaseError:
        logger.warning("full sync %s: could not record the failure", run.pk)
    if attempt > MAX_ATTEMPTS:
        logger.error("full sync %s failed after %s transient errors: %s", run.pk, MAX_ATTEMPTS, exc)
        return None
    logger.warning("full sync %s interrupted (attempt %s): %s", run.pk, attempt, exc)
    return SyncInterrupted(attempt, retry_after)


def _fail(*, run: SyncRun, token: str, exc: BaseException) -> None:
    SyncRun.objects.filter(pk=run.pk, lease_token=token).update(
        **_error_fields(exc),
        status=SyncRun.Status.FAILED,
        lease_token="",
        lease_expires_at=None,
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )


class _Statistics:
    """A first sync grows tables from nothing, and the planner's statistics lag behind (autovacuum
    analyses a minute later at best): each page's lookups by customer or group ids would turn into
    sequential scans, making the run quadratic. Each table is analysed whenever this run has written
    as many rows as the statistics last counted, so analyses stay few (sizes double) and cheap."""

    def __init__(self) -> None:
        self.written: dict[str, int] = {}
        self.counted: dict[str, float] = {}

    def _reltuples(self, table: str) -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
            row = cursor.fetchone()
        return max(0.0, float(row[0])) if row else 0.0

    def wrote(self, model: type[Model], rows: int) -> None:
        table = model._meta.db_table
        if table not in self.counted:
            self.counted[table] = self._reltuples(table)
        self.written[table] = self.written.get(table, 0) + rows
        if self.written[table] >= max(ANALYZE_MIN_ROWS, self.counted[table]):
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
            self.counted[table] = self._reltuples(table)
            self.written[table] = 0


def _chunks(userids: Sequence[str]) -> list[list[str]]:
    size = sync_models.CHUNK
    return [list(userids[i : i + size]) for i in range(0, len(userids), size)]


def _ts(seconds: Any) -> datetime | None:
    try:
        value = int(seconds or 0)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(value, tz=UTC) if value > 0 else None


class _Sync:
    """One claimed run, driven phase by phase; every commit goes through `_checkpoint`."""

    def __init__(self, *, run: SyncRun, token: str, client: WeComClient, pool: ThreadPoolExecutor) -> None:
        self.run = run
        self.corp = run.corp
        self.token = token
        self.client = client
        self.pool = pool
        self.stats = _Statistics()

    def drive(self) -> None:
        # Tags first although the issue lists them third: customer pages map WeCom tag ids to Tag rows.
        if self.run.phase == SyncRun.Phase.TAGS:
            self.tags()
        if self.run.phase == SyncRun.Phase.MEMBERS:
            self.members()
        if self.run.phase == SyncRun.Phase.CUSTOMERS:
            self.customers()
        if self.run.phase == SyncRun.Phase.GROUPS:
            self.groups()
        if self.run.phase == SyncRun.Phase.RECONCILE:
            self.reconcile()

    def _checkpoint(self, **fields: Any) -> None:
        """Saves progress and renews the lease, inside the caller's transaction. Fenced by the lease
        token: if another worker took the run over, the page rolls back."""
        now = timezone.now()
        fields = {
            "lease_expires_at": now + LEASE,
            "attempts": 0,
            "error_code": None,
            "error_key": "",
            "error_detail": "",
            **fields,
        }
        updated = SyncRun.objects.filter(
            pk=self.run.pk, lease_token=self.token, status=SyncRun.Status.RUNNING
        ).update(**fields, updated_at=now)
        if updated != 1:
            raise _LeaseLost
        for name, value in fields.items():
            setattr(self.run, name, value)

    # -- tags, then the member list ---------------------------------------------------------------
    def tags(self) -> None:
        # Reference: Doc 92117 (no filter: every tag group); complete=True marks the others deleted.
        answer = self.client.get_corp_tag_list()
        groups = answer.get("tag_group", [])
        # Reference: Doc 92571 (members with the customer-contact permission)
        userids = list(dict.fromkeys(self.client.get_follow_user_list().get("follow_user", [])))
        estimate = Follow.objects.filter(corp=self.corp, status=FollowStatus.ACTIVE).count()
        if not estimate and len(userids) <= COUNT_FOLLOWS_UP_TO:
            # A first sync has nothing to measure progress inside a chunk against: count WeCom's lists
            # (one call per member; with more members the chunks alone are fine-grained enough).
            estimate = sum(self.pool.map(self._follow_count, userids))
        with transaction.atomic():
            customers.tags_apply_groups(corp=self.corp, groups=groups, complete=True)
            self._checkpoint(
                phase=SyncRun.Phase.MEMBERS,
                tags_seen=sum(len(g.get("tag") or []) for g in groups),
                member_userids=userids,
                members_total=len(userids),
                follows_estimate=estimate,
                chunk=0,
                cursor="",
            )

    def _follow_count(self, userid: str) -> int:
        try:
            # Reference: Doc 92113 (84061: the member has no customers)
            return len(self.client.list_external_contacts(userid).get("external_userid", []))
        except PermanentError as exc:
            if exc.errcode in MEMBER_UNREADABLE or exc.errcode in GONE:
                return 0
            raise

    # -- members: names and departments ------------------------------------------------------------
    def _user(self, userid: str) -> Mapping[str, Any]:
        try:
            # Reference: Doc 90196
            return self.client.get_user(userid)
        except PermanentError as exc:
            if exc.errcode in MEMBER_UNREADABLE:
                return {}
            raise

    def members(self) -> None:
        chunks = _chunks(self.run.member_userids)
        while self.run.chunk < len(chunks):
            userids = chunks[self.run.chunk]
            infos = list(self.pool.map(self._user, userids))
            with transaction.atomic():
                _members_upsert(corp=self.corp, userids=userids, infos=infos)
                self._checkpoint(chunk=self.run.chunk + 1, members_seen=self.run.members_seen + len(userids))
        with transaction.atomic():
            self._checkpoint(phase=SyncRun.Phase.CUSTOMERS, chunk=0, cursor="")

    # -- customers and follows: batch/get_by_user, 100 members × 100 per page ------------------------
    def _customer_page(self, userids: list[str], cursor: str) -> Mapping[str, Any]:
        body: dict[str, Any] = {"userid_list": userids, "limit": PAGE_LIMIT}
        if cursor:
            body["cursor"] = cursor
        # Reference: Doc 92994 (resumes from a stored next_cursor, which the client's iterator can't)
        return self.client.call("POST", "externalcontact/batch/get_by_user", json=body)

    def customers(self) -> None:
        tag_pks = dict(
            Tag.objects.filter(corp=self.corp, deleted=False).values_list("tag_id", "pk").iterator()
        )
        while self.run.chunk < len(chunks := _chunks(self.run.member_userids)):
            userids = chunks[self.run.chunk]
            try:
                self._customer_chunk(userids, tag_pks)
            except PermanentError as exc:
                # A member who left (or lost visibility) since the list was read fails the whole call.
                if exc.errcode not in MEMBER_UNREADABLE or not self._drop_unreadable(userids):
                    raise
        self._start_groups()

    def _customer_chunk(self, userids: list[str], tag_pks: Mapping[str, int]) -> None:
        member_pks = dict(
            Member.objects.filter(corp=self.corp, userid__in=userids).values_list("userid", "pk")
        )
        # The next page is fetched while this one is written; only the written page's cursor is saved,
        # so a crash re-fetches what was not committed.
        fetched_at = timezone.now()
        pending: Future[Mapping[str, Any]] | None = self.pool.submit(
            self._customer_page, userids, self.run.cursor
        )
        while pending is not None:
            page = pending.result()
            page_fetched_at = fetched_at
            next_cursor = str(page.get("next_cursor") or "")
            pending = None
            if next_cursor:
                fetched_at = timezone.now()
                pending = self.pool.submit(self._customer_page, userids, next_cursor)
            if page.get("fail_info"):
                logger.warning("batch/get_by_user fail_info: %s", page.get("fail_info"))
            with transaction.atomic():
                seen = customer_page_apply(
                    corp=self.corp,
                    run_id=self.run.pk,
                    items=page.get("external_contact_list") or [],
                    member_pks=member_pks,
                    tag_pks=tag_pks,
                    fetched_at=page_fetched_at,
                )
                progress = {
                    "customers_seen": self.run.customers_seen + seen.customers,
                    "follows_seen": self.run.follows_seen + seen.follows,
                }
                if next_cursor:
                    self._checkpoint(cursor=next_cursor, **progress)
                else:
                    self._checkpoint(chunk=self.run.chunk + 1, cursor="", **progress)
            self.stats.wrote(Customer, seen.customers)
            self.stats.wrote(Follow, seen.follows)

    def _drop_unreadable(self, userids: list[str]) -> bool:
        """Takes members WeCom no longer lets us read out of the rest of the run, and restarts the
        current chunk (pages written again are not counted twice). False if every member is readable."""
        readable = dict(zip(userids, self.pool.map(self._user, userids), strict=True))
        gone = {u for u, info in readable.items() if not info}
        if not gone:
            return False
        logger.warning("full sync %s: members no longer readable, skipped: %s", self.run.pk, sorted(gone))
        start = self.run.chunk * sync_models.CHUNK
        done, rest = self.run.member_userids[:start], self.run.member_userids[start:]
        remaining = done + [u for u in rest if u not in gone]
        with transaction.atomic():
            self._checkpoint(member_userids=remaining, members_total=len(remaining), cursor="")
        return True

    # -- groups: groupchat/list by ≤100 owners, then groupchat/get each ---------------------------
    def _group_list(self, owners: list[str], cursor: str, limit: int) -> Mapping[str, Any]:
        body: dict[str, Any] = {"status_filter": 0, "owner_filter": {"userid_list": owners}, "limit": limit}
        if cursor:
            body["cursor"] = cursor
        # Reference: Doc 92120 (owner_filter ≤100 userids, so >1,000 owners never answer 81017)
        return self.client.call("POST", "externalcontact/groupchat/list", json=body)

    def _start_groups(self) -> None:
        # Owners: the members we sync, plus the owners of groups we hold, so that a group "not seen"
        # below really is one WeCom no longer lists (its owner was asked).
        held = CustomerGroup.objects.filter(corp=self.corp, status=CustomerGroup.Status.ACTIVE).exclude(
            owner_userid=""
        )
        owners = sorted(set(self.run.member_userids) | set(held.values_list("owner_userid", flat=True)))
        total = 0
        for chunk in _chunks(owners):  # count first (1,000 a call) so the progress bar has a total
            cursor = ""
            while True:
                page = self._group_list(chunk, cursor, 1000)
                total += len(page.get("group_chat_list") or [])
                cursor = str(page.get("next_cursor") or "")
                if not cursor:
                    break
        with transaction.atomic():
            self._checkpoint(
                phase=SyncRun.Phase.GROUPS, owner_userids=owners, groups_total=total, chunk=0, cursor=""
            )

    def _group(self, chat_id: str) -> Mapping[str, Any] | int:
        """groupchat/get's group_chat, or the errcode of a group that can't be read."""
        try:
            # Reference: Doc 92122
            return self.client.get_groupchat(chat_id, need_name=True)["group_chat"]
        except ConfigError:
            raise
        except PermanentError as exc:
            logger.info("group %s not readable (errcode %s)", chat_id, exc.errcode)
            return exc.errcode if exc.errcode is not None else -1

    def groups(self) -> None:
        chunks = _chunks(self.run.owner_userids)
        while self.run.chunk < len(chunks):
            fetched_at = timezone.now()
            page = self._group_list(chunks[self.run.chunk], self.run.cursor, GROUP_PAGE_LIMIT)
            next_cursor = str(page.get("next_cursor") or "")
            chat_ids = list(dict.fromkeys(g["chat_id"] for g in page.get("group_chat_list") or []))
            results = list(self.pool.map(self._group, chat_ids))
            chats = [r for r in results if not isinstance(r, int)]
            # Listed but unreadable (other than gone) still exists in WeCom: keep it, don't dismiss it.
            unreadable = [c for c, r in zip(chat_ids, results, strict=True) if isinstance(r, int)]
            kept = [
                c for c, r in zip(chat_ids, results, strict=True) if isinstance(r, int) and r != GROUP_GONE
            ]
            with transaction.atomic():
                written = groups_page_apply(
                    corp=self.corp, run_id=self.run.pk, chats=chats, fetched_at=fetched_at
                )
                _groups_touch(corp=self.corp, run_id=self.run.pk, chat_ids=kept)
                progress = {
                    "groups_seen": self.run.groups_seen + len(chats),
                    "groups_skipped": self.run.groups_skipped + len(unreadable),
                }
                if next_cursor:
                    self._checkpoint(cursor=next_cursor, **progress)
                else:
                    self._checkpoint(chunk=self.run.chunk + 1, cursor="", **progress)
            self.stats.wrote(CustomerGroup, len(chats))
            self.stats.wrote(GroupMember, written)
        with transaction.atomic():
            self._checkpoint(phase=SyncRun.Phase.RECONCILE, chunk=0, cursor="")

    # -- reconcile --------------------------------------------------------------------------------
    def reconcile(self) -> None:
        """Active follows this run did not see are lost; listed-by-nobody groups are dismissed.

        Rows written after the run started (by callbacks) are left alone: the run could not see them.
        """
        started = self.run.started_at or self.run.created_at
        while True:
            with transaction.atomic():
                lost = follows_mark_lost(
                    corp=self.corp, run_id=self.run.pk, before=started, limit=RECONCILE_BATCH
                )
                self._checkpoint(follows_lost=self.run.follows_lost + lost)
            if lost < RECONCILE_BATCH:
                break
        with transaction.atomic():
            dismissed = groups_mark_dismissed(
                corp=self.corp, run_id=self.run.pk, before=started, owners=self.run.owner_userids
            )
            self._checkpoint(
                groups_dismissed=self.run.groups_dismissed + dismissed,
                phase=SyncRun.Phase.DONE,
                status=SyncRun.Status.DONE,
                finished_at=timezone.now(),
                lease_token="",
                lease_expires_at=None,
            )
        r = self.run
        logger.info(
            "full sync %s done: %s members, %s customers, %s follows (%s lost), %s groups (%s dismissed)",
            r.pk,
            r.members_seen,
            r.customers_seen,
            r.follows_seen,
            r.follows_lost,
            r.groups_seen,
            r.groups_dismissed,
        )


# -- bulk writes (one statement per table per page) ----------------------------------------------


def _members_upsert(*, corp: Corp, userids: Sequence[str], infos: Sequence[Mapping[str, Any]]) -> None:
    """Members listed with the customer-contact permission; a name WeCom didn't give keeps ours."""
    # Reference: Doc 90196 (user/get: name, department[])
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO customers_member AS m
                (corp_id, userid, name, departments, status, has_contact_permission, left_at, updated_at)
            SELECT %s, u.userid, u.name, u.deps::jsonb, 'active', true, NULL, %s
            FROM unnest(%s::text[], %s::text[], %s::text[]) AS u(userid, name, deps)
            ON CONFLICT (corp_id, userid) DO UPDATE SET
                name = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name ELSE m.name END,
                departments = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.departments ELSE m.departments END,
                status = 'active', has_contact_permission = true, left_at = NULL,
                updated_at = EXCLUDED.updated_at
            """,
            [
                corp.pk,
                timezone.now(),
                list(userids),
                [(i.get("name") or "")[:100] for i in infos],
                [json.dumps(list(i.get("department") or [])) for i in infos],
            ],
        )


@dataclass(frozen=True)
class PageSeen:
    customers: int  # customers this run had not seen before this page
    follows: int  # likewise, follows


_CUSTOMERS_UPSERT = """
INSERT INTO customers_customer AS c
    (corp_id, external_userid, name, avatar, type, gender, corp_name, corp_full_name, unionid, enriched_at,
     tag_ids, member_ids, active_follows, first_added_at, created_at, updated_at)
SELECT %(corp)s, u.ext, u.name, u.avatar, u.type, u.gender, u.corp_name, u.corp_full_name, u.unionid,
       %(now)s, '{}', '{}', 0, u.first_added, %(now)s, %(now)s
FROM unnest(%(ext)s::text[], %(name)s::text[], %(avatar)s::text[], %(type)s::int[], %(gender)s::int[],
            %(corp_name)s::text[], %(corp_full_name)s::text[], %(unionid)s::text[],
            %(first_added)s::timestamptz[])
    AS u(ext, name, avatar, type, gender, corp_name, corp_full_name, unionid, first_added)
ON CONFLICT (corp_id, external_userid) DO UPDATE SET
    name = EXCLUDED.name, avatar = EXCLUDED.avatar, type = EXCLUDED.type, gender = EXCLUDED.gender,
    corp_name = EXCLUDED.corp_name, corp_full_name = EXCLUDED.corp_full_name, unionid = EXCLUDED.unionid,
    enriched_at = EXCLUDED.enriched_at, updated_at = EXCLUDED.updated_at,
    first_added_at = LEAST(c.first_added_at, EXCLUDED.first_added_at)
RETURNING c.id, c.external_userid
"""

# A follow WeCom lists is live, except: a customer who deleted the member stays listed on the member's
# side (one-way), and an event newer than our read (last_event_time = CreateTime × 10 + rank) wins.
_KEEP_STATUS = (
    "(f.status = 'deleted_by_customer' OR (f.status <> 'active' AND f.last_event_time >= %(event_key)s))"
)
_FOLLOWS_UPSERT = f"""
INSERT INTO customers_follow AS f
    (corp_id, customer_id, member_id, remark, description, remark_mobiles, add_way, state, oper_userid,
     added_at, status, status_changed_at, last_event_time, last_seen_sync, tag_ids, updated_at)
SELECT %(corp)s, u.customer_id, u.member_id, u.remark, u.description, u.mobiles::jsonb, u.add_way, u.state,
       u.oper, u.added_at, 'active', %(now)s, 0, %(run)s, u.tags::bigint[], %(now)s
FROM unnest(%(customer)s::bigint[], %(member)s::bigint[], %(remark)s::text[], %(description)s::text[],
            %(mobiles)s::text[], %(add_way)s::int[], %(state)s::text[], %(oper)s::text[],
            %(added_at)s::timestamptz[], %(tags)s::text[])
    AS u(customer_id, member_id, remark, description, mobiles, add_way, state, oper, added_at, tags)
ON CONFLICT (corp_id, customer_id, member_id) DO UPDATE SET
    remark = EXCLUDED.remark, description = EXCLUDED.description, remark_mobiles = EXCLUDED.remark_mobiles,
    add_way = EXCLUDED.add_way, oper_userid = EXCLUDED.oper_userid,
    state = CASE WHEN EXCLUDED.state <> '' THEN EXCLUDED.state ELSE f.state END,
    added_at = COALESCE(EXCLUDED.added_at, f.added_at),
    status = CASE WHEN {_KEEP_STATUS} THEN f.status ELSE 'active' END,
    status_changed_at = CASE WHEN f.status = 'active' OR {_KEEP_STATUS} THEN f.status_changed_at
                             ELSE EXCLUDED.status_changed_at END,
    last_seen_sync = EXCLUDED.last_seen_sync, tag_ids = EXCLUDED.tag_ids, updated_at = EXCLUDED.updated_at
"""  # noqa: S608  (no user input in the SQL text; values are parameters)


def customer_page_apply(
    *,
    corp: Corp,
    run_id: int,
    items: Iterable[Mapping[str, Any]],
    member_pks: Mapping[str, int],
    tag_pks: Mapping[str, int],
    fetched_at: datetime,
) -> PageSeen:
    """Writes one batch/get_by_user page: customers, follows (with tags), then the customers' derived
    columns. Three statements whatever the page size; call inside a transaction."""
    # Reference: Doc 92994 (external_contact_list[]: external_contact, follow_info with tag_id[])
    contacts: dict[str, Mapping[str, Any]] = {}
    first_added: dict[str, datetime | None] = {}
    follows: dict[tuple[str, int], Mapping[str, Any]] = {}
    for item in items:
        contact = item.get("external_contact") or {}
        info = item.get("follow_info") or {}
        ext = str(contact.get("external_userid") or "")
        member_pk = member_pks.get(str(info.get("userid") or ""))
        if not ext or member_pk is None:
            continue
        contacts[ext] = contact  # a customer followed by two members of the chunk comes twice
        follows[(ext, member_pk)] = info
        added = _ts(info.get("createtime"))
        earliest = first_added.get(ext)
        if added is not None and (earliest is None or added < earliest):
            first_added[ext] = added
    if not contacts:
        return PageSeen(0, 0)
    now = timezone.now()
    exts = list(contacts)
    with connection.cursor() as cursor:
        cursor.execute(
            _CUSTOMERS_UPSERT,
            {
                "corp": corp.pk,
                "now": now,
                "ext": exts,
                "name": [str(contacts[e].get("name") or "")[:100] for e in exts],
                "avatar": [str(contacts[e].get("avatar") or "")[:500] for e in exts],
                "type": [int(contacts[e].get("type") or 0) for e in exts],
                "gender": [int(contacts[e].get("gender") or 0) for e in exts],
                "corp_name": [str(contacts[e].get("corp_name") or "")[:100] for e in exts],
                "corp_full_name": [str(contacts[e].get("corp_full_name") or "")[:200] for e in exts],
                "unionid": [str(contacts[e].get("unionid") or "")[:64] for e in exts],
                "first_added": [first_added.get(e) for e in exts],
            },
        )
        customer_pks: dict[str, int] = {ext: pk for pk, ext in cursor.fetchall()}
        ids = list(customer_pks.values())
        # What this run already saw (on an earlier page, or before a chunk was restarted) is not counted
        # again.
        cursor.execute(
            "SELECT customer_id, member_id FROM customers_follow"
            " WHERE corp_id = %s AND customer_id = ANY(%s) AND last_seen_sync = %s",
            [corp.pk, ids, run_id],
        )
        counted = {(row[0], row[1]) for row in cursor.fetchall()}
        keys = list(follows)
        cursor.execute(
            _FOLLOWS_UPSERT,
            {
                "corp": corp.pk,
                "now": now,
                "run": run_id,
                "event_key": int(fetched_at.timestamp()) * 10,
                "customer": [customer_pks[ext] for ext, _ in keys],
                "member": [member_pk for _, member_pk in keys],
                "remark": [str(follows[k].get("remark") or "")[:64] for k in keys],
                "description": [str(follows[k].get("description") or "")[:300] for k in keys],
                "mobiles": [json.dumps(list(follows[k].get("remark_mobiles") or [])) for k in keys],
                "add_way": [int(follows[k].get("add_way") or 0) for k in keys],
                "state": [str(follows[k].get("state") or "")[:64] for k in keys],
                "oper": [str(follows[k].get("oper_userid") or "")[:64] for k in keys],
                "added_at": [_ts(follows[k].get("createtime")) for k in keys],
                "tags": [_pg_array(follows[k].get("tag_id") or [], tag_pks) for k in keys],
            },
        )
    customers.customers_recompute(customer_ids=ids)
    pairs = {(customer_pks[ext], member_pk) for ext, member_pk in keys}
    return PageSeen(
        customers=len(set(ids) - {customer for customer, _ in counted}), follows=len(pairs - counted)
    )


def _pg_array(tag_ids: Iterable[Any], tag_pks: Mapping[str, int]) -> str:
    """WeCom tag ids → a sorted bigint[] literal of Tag pks (tags we don't hold wait for the next sync)."""
    pks = sorted({tag_pks[str(t)] for t in tag_ids if str(t) in tag_pks})
    return "{" + ",".join(map(str, pks)) + "}"


_GROUPS_UPSERT = """
INSERT INTO groups_customergroup AS g
    (corp_id, chat_id, name, owner_userid, notice, admin_userids, status, member_version, member_count,
     created_at_wecom, last_event_time, last_seen_sync, fetched_at, updated_at)
SELECT %(corp)s, u.chat_id, u.name, u.owner, u.notice, u.admins::jsonb, 'active', u.version, u.size,
       u.created, 0, %(run)s, %(now)s, %(now)s
FROM unnest(%(chat_id)s::text[], %(name)s::text[], %(owner)s::text[], %(notice)s::text[], %(admins)s::text[],
            %(version)s::text[], %(size)s::int[], %(created)s::timestamptz[])
    AS u(chat_id, name, owner, notice, admins, version, size, created)
ON CONFLICT (corp_id, chat_id) DO UPDATE SET
    name = EXCLUDED.name, owner_userid = EXCLUDED.owner_userid, notice = EXCLUDED.notice,
    admin_userids = EXCLUDED.admin_userids, status = 'active',
    member_version = COALESCE(NULLIF(EXCLUDED.member_version, ''), g.member_version),
    member_count = EXCLUDED.member_count, created_at_wecom = EXCLUDED.created_at_wecom,
    last_seen_sync = EXCLUDED.last_seen_sync, fetched_at = EXCLUDED.fetched_at,
    updated_at = EXCLUDED.updated_at
RETURNING g.id, g.chat_id
"""

# Unchanged members are not rewritten (a nightly run over unchanged groups writes almost nothing).
_GROUP_MEMBERS_UPSERT = """
INSERT INTO groups_groupmember AS m
    (corp_id, group_id, userid, type, join_time, join_scene, invitor_userid, state, group_nickname, name,
     unionid, is_active, left_at)
SELECT %(corp)s, u.group_id, u.userid, u.type, u.join_time, u.join_scene, u.invitor, u.state, u.nickname,
       u.name, u.unionid, true, NULL
FROM unnest(%(group)s::bigint[], %(userid)s::text[], %(type)s::int[], %(join_time)s::timestamptz[],
            %(join_scene)s::int[], %(invitor)s::text[], %(state)s::text[], %(nickname)s::text[],
            %(name)s::text[], %(unionid)s::text[])
    AS u(group_id, userid, type, join_time, join_scene, invitor, state, nickname, name, unionid)
ON CONFLICT (group_id, userid) DO UPDATE SET
    type = EXCLUDED.type, join_time = EXCLUDED.join_time, join_scene = EXCLUDED.join_scene,
    invitor_userid = EXCLUDED.invitor_userid, state = EXCLUDED.state,
    group_nickname = EXCLUDED.group_nickname, name = EXCLUDED.name, unionid = EXCLUDED.unionid,
    is_active = true, left_at = NULL
WHERE (m.type, m.join_time, m.join_scene, m.invitor_userid, m.state, m.group_nickname, m.name, m.unionid,
       m.is_active)
   IS DISTINCT FROM (EXCLUDED.type, EXCLUDED.join_time, EXCLUDED.join_scene, EXCLUDED.invitor_userid,
       EXCLUDED.state, EXCLUDED.group_nickname, EXCLUDED.name, EXCLUDED.unionid, true)
"""

# NOT IN over the page's (group, userid) pairs is a hashed subplan whatever the statistics say.
_GROUP_MEMBERS_LEFT = """
UPDATE groups_groupmember m SET is_active = false, left_at = %s
WHERE m.corp_id = %s AND m.group_id = ANY(%s::bigint[]) AND m.is_active
  AND (m.group_id, m.userid) NOT IN (SELECT * FROM unnest(%s::bigint[], %s::text[]))
"""


def groups_page_apply(
    *, corp: Corp, run_id: int, chats: Sequence[Mapping[str, Any]], fetched_at: datetime
) -> int:
    """groupchat/get answers for one page of groups: the bulk form of group_apply_details (the group and
    exactly its current members). A group changed by an event after our read keeps the event's state.
    Returns how many group members were written."""
    # Reference: Doc 92122 (group_chat: chat_id, name, owner, create_time, notice, member_list[],
    # admin_list[], member_version)
    if not chats:
        return 0
    by_id = {str(c["chat_id"]): c for c in chats}
    newer = set(
        CustomerGroup.objects.select_for_update()
        .filter(corp=corp, chat_id__in=list(by_id), last_event_time__gte=int(fetched_at.timestamp()))
        .values_list("chat_id", flat=True)
    )
    _groups_touch(corp=corp, run_id=run_id, chat_ids=sorted(newer))
    fresh = [c for chat_id, c in by_id.items() if chat_id not in newer]
    if not fresh:
        return 0
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _GROUPS_UPSERT,
            {
                "corp": corp.pk,
                "run": run_id,
                "now": now,
                "chat_id": [str(c["chat_id"]) for c in fresh],
                "name": [str(c.get("name") or "")[:100] for c in fresh],
                "owner": [str(c.get("owner") or "")[:64] for c in fresh],
                "notice": [str(c.get("notice") or "") for c in fresh],
                "admins": [
                    json.dumps([a["userid"] for a in c.get("admin_list") or [] if a.get("userid")])
                    for c in fresh
                ],
                "version": [str(c.get("member_version") or "")[:64] for c in fresh],
                "size": [len(c.get("member_list") or []) for c in fresh],
                "created": [_ts(c.get("create_time")) for c in fresh],
            },
        )
        group_pks = {chat_id: pk for pk, chat_id in cursor.fetchall()}
        members = {
            (group_pks[str(c["chat_id"])], str(m["userid"])): m
            for c in fresh
            for m in c.get("member_list") or []
        }
        rows = [(group, m) for (group, _), m in members.items()]
        if rows:
            cursor.execute(
                _GROUP_MEMBERS_UPSERT,
                {
                    "corp": corp.pk,
                    "group": [g for g, _ in rows],
                    "userid": [str(m["userid"])[:64] for _, m in rows],
                    "type": [int(m.get("type") or 2) for _, m in rows],
                    "join_time": [_ts(m.get("join_time")) for _, m in rows],
                    "join_scene": [m.get("join_scene") for _, m in rows],
                    "invitor": [str((m.get("invitor") or {}).get("userid") or "")[:64] for _, m in rows],
                    "state": [str(m.get("state") or "")[:64] for _, m in rows],
                    "nickname": [str(m.get("group_nickname") or "")[:100] for _, m in rows],
                    "name": [str(m.get("name") or "")[:100] for _, m in rows],
                    "unionid": [str(m.get("unionid") or "")[:64] for _, m in rows],
                },
            )
        cursor.execute(
            _GROUP_MEMBERS_LEFT,
            [
                now,
                corp.pk,
                list(group_pks.values()),
                [g for g, _ in rows],
                [str(m["userid"]) for _, m in rows],
            ],
        )
    return len(rows)


def _groups_touch(*, corp: Corp, run_id: int, chat_ids: Sequence[str]) -> None:
    """Groups WeCom listed that we don't rewrite still count as seen (never dismissed by this run)."""
    if chat_ids:
        CustomerGroup.objects.filter(corp=corp, chat_id__in=list(chat_ids)).update(last_seen_sync=run_id)


def follows_mark_lost(*, corp: Corp, run_id: int, before: datetime, limit: int) -> int:
    """Marks up to `limit` active follows that run `run_id` didn't see (and nothing touched since
    `before`) lost, and re-derives their customers. Returns how many."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH gone AS (
                SELECT id FROM customers_follow
                WHERE corp_id = %s AND status = 'active' AND last_seen_sync IS DISTINCT FROM %s
                  AND updated_at < %s
                ORDER BY id LIMIT %s FOR UPDATE)
            UPDATE customers_follow f SET status = 'lost', status_changed_at = %s, updated_at = %s
            FROM gone WHERE f.id = gone.id
            RETURNING f.customer_id
            """,
            [corp.pk, run_id, before, limit, now, now],
        )
        rows = cursor.fetchall()
    customers.customers_recompute(customer_ids=sorted({r[0] for r in rows}))
    return len(rows)


def groups_mark_dismissed(*, corp: Corp, run_id: int, before: datetime, owners: Sequence[str]) -> int:
    """Active groups of owners we asked WeCom about that it no longer lists are dismissed."""
    now = timezone.now()
    return (
        CustomerGroup.objects.filter(
            corp=corp,
            status=CustomerGroup.Status.ACTIVE,
            owner_userid__in=list(owners),
            updated_at__lt=before,
        )
        .exclude(last_seen_sync=run_id)
        .update(status=CustomerGroup.Status.DISMISSED, dismissed_at=now, updated_at=now)
    )
