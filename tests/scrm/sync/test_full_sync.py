"""The full sync against the sandbox: what it imports, resuming after a crash or a transient failure,
reconciliation, failures shown with their errcode, one run per corp."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from scrm.customers import services as customers
from scrm.customers.models import Customer, Follow, FollowStatus, Member, Tag
from scrm.groups.models import CustomerGroup, GroupMember
from scrm.sync import models as sync_models
from scrm.sync import services
from scrm.sync.models import SyncRun
from scrm.sync.selectors import sync_progress_get, sync_run_percent
from scrm.sync.services import SyncBusy, SyncInterrupted, full_sync_execute, full_sync_start
from tests.conftest import World
from tests.scrm.sync.conftest import Linked, link
from wecom.errors import TransientError

pytestmark = pytest.mark.django_db

SEED = {
    "members": 5,
    "customers": 60,
    "follows": 90,
    "groups": 5,
    "group_size": 8,
    "tag_groups": 2,
    "seed": 3,
}


class WorkerKilled(BaseException):
    """Stands for the worker process dying: nothing in the service catches it, the lease stays held."""


def sync(corp: Any) -> SyncRun:
    run, _ = full_sync_start(corp=corp)
    full_sync_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def ours(corp: Any) -> set[tuple[str, str]]:
    return set(
        Follow.objects.filter(corp=corp, status=FollowStatus.ACTIVE).values_list(
            "member__userid", "customer__external_userid"
        )
    )


def assert_matches(linked: Linked, run: SyncRun) -> None:
    """Our tables say what WeCom says: every live follow, each with its tags, and every group."""
    corp = linked.corp
    wecom = linked.follows()
    assert ours(corp) == wecom
    assert run.follows_seen == len(wecom)
    customers_seen = {ext for _, ext in wecom}
    assert run.customers_seen == len(customers_seen)
    assert Customer.objects.filter(corp=corp, active_follows__gt=0).count() == len(customers_seen)
    tag_pk = dict(Tag.objects.filter(corp=corp, deleted=False).values_list("tag_id", "pk"))
    for c in linked.data("customers"):
        for f in c["follows"]:
            row = Follow.objects.get(
                corp=corp, member__userid=f["userid"], customer__external_userid=c["external_userid"]
            )
            assert row.tag_ids == sorted(tag_pk[t] for t in f["tags"]), (f, row.tag_ids)
            assert row.last_seen_sync == run.pk
    groups = [g for g in linked.data("groups") if not g["dismissed"]]
    assert set(
        CustomerGroup.objects.filter(corp=corp, status=CustomerGroup.Status.ACTIVE).values_list(
            "chat_id", flat=True
        )
    ) == {g["chat_id"] for g in groups}
    for g in groups:
        group = CustomerGroup.objects.get(corp=corp, chat_id=g["chat_id"])
        assert group.member_count == g["members"]
        assert group.memberships.filter(is_active=True).count() == g["members"]
        assert group.member_version == g["member_version"]


def test_full_sync_imports_members_customers_follows_tags_and_groups(linked: Linked) -> None:
    seeded = linked.seed(**SEED)
    run = sync(linked.corp)

    assert (run.status, run.phase, run.error_code) == (SyncRun.Status.DONE, SyncRun.Phase.DONE, None)
    assert run.members_seen == run.members_total == seeded["members"]
    assert run.tags_seen == seeded["tags"] == Tag.objects.filter(corp=linked.corp, deleted=False).count()
    assert run.groups_seen == run.groups_total == seeded["groups"]
    assert run.follows_seen == seeded["follows"]
    assert run.customers_seen == seeded["customers"]
    # A first sync has no follows of ours to measure against: it counted WeCom's lists for the bar.
    assert run.follows_estimate == seeded["follows"]
    assert_matches(linked, run)
    names = {m["userid"]: m["name"] for m in linked.data("members")}
    assert dict(Member.objects.filter(corp=linked.corp).values_list("userid", "name")) == names
    # The derived columns the customer list filters on agree with the follows.
    customer = Customer.objects.filter(corp=linked.corp, active_follows__gt=1).first()
    assert customer is not None
    follows = Follow.objects.filter(customer=customer, status=FollowStatus.ACTIVE)
    assert customer.member_ids == sorted(f.member_id for f in follows)
    assert customer.tag_ids == sorted({t for f in follows for t in f.tag_ids})
    assert customer.first_added_at == min(f.added_at for f in follows if f.added_at)
    assert sync_run_percent(run=run) == 100
    assert run.lease_token == "" and run.lease_expires_at is None

    # A second run over unchanged data changes nothing and loses nothing.
    again = sync(linked.corp)
    assert (again.follows_lost, again.groups_dismissed) == (0, 0)
    assert again.follows_estimate == seeded["follows"]
    assert_matches(linked, again)
    assert Follow.objects.filter(corp=linked.corp).count() == seeded["follows"]


def test_a_killed_run_resumes_from_its_checkpoint_without_duplicates(
    linked: Linked, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = linked.seed(**SEED)
    # Small chunks and pages so the run spans many checkpoints.
    monkeypatch.setattr(sync_models, "CHUNK", 2)
    monkeypatch.setattr(services, "PAGE_LIMIT", 7)
    monkeypatch.setattr(services, "GROUP_PAGE_LIMIT", 2)
    real_apply = services.customer_page_apply
    written: list[int] = []  # follows in each page written
    killed: list[bool] = []

    def dying_apply(**kwargs: Any) -> Any:
        # The worker dies (once) writing a page in the middle of a chunk (a cursor is checkpointed).
        if not killed and len(written) >= 4 and SyncRun.objects.get(pk=kwargs["run_id"]).cursor:
            killed.append(True)
            raise WorkerKilled
        written.append(len(kwargs["items"]))
        return real_apply(**kwargs)

    monkeypatch.setattr(services, "customer_page_apply", dying_apply)
    run, _ = full_sync_start(corp=linked.corp)
    with pytest.raises(WorkerKilled):
        full_sync_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.phase) == (SyncRun.Status.RUNNING, SyncRun.Phase.CUSTOMERS)
    assert run.cursor
    # The pages before committed with their checkpoint; the one being written rolled back with its own.
    assert run.follows_seen == sum(written) > 0
    assert Follow.objects.filter(corp=linked.corp, last_seen_sync=run.pk).count() == sum(written)
    # The bar moves with the follows written (against the total counted from WeCom's lists), inside
    # the share of the chunk being read.
    chunks = -(-seeded["members"] // 2)
    expected = max(run.chunk / chunks, min(sum(written) / seeded["follows"], (run.chunk + 1) / chunks))
    assert sync_run_percent(run=run) == int(5 + 75 * expected)

    # The redelivered task finds the dead worker's lease still held, and waits for it.
    with pytest.raises(SyncBusy) as busy:
        full_sync_execute(run_id=run.pk)
    assert 1 <= busy.value.retry_after <= services.LEASE.total_seconds() + 1

    # Once it lapses the run continues from the checkpoint, and dies again in the groups phase.
    SyncRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    real_groups = services.groups_page_apply
    group_pages: list[int] = []

    def dying_groups(**kwargs: Any) -> Any:
        group_pages.append(1)
        if len(group_pages) == 2:
            raise WorkerKilled
        return real_groups(**kwargs)

    monkeypatch.setattr(services, "groups_page_apply", dying_groups)
    with pytest.raises(WorkerKilled):
        full_sync_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.phase, run.groups_seen) == (SyncRun.Phase.GROUPS, 2)
    # Every follow was written exactly once: the resume started at the page that had rolled back.
    assert sum(written) == seeded["follows"]

    SyncRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    full_sync_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.DONE
    # Counts are exact across the two crashes, nothing was duplicated and nothing marked lost.
    assert (run.follows_seen, run.customers_seen) == (seeded["follows"], seeded["customers"])
    assert (run.groups_seen, run.follows_lost, run.groups_dismissed) == (seeded["groups"], 0, 0)
    assert Follow.objects.filter(corp=linked.corp).count() == seeded["follows"]
    assert Customer.objects.filter(corp=linked.corp).count() == seeded["customers"]
    assert GroupMember.objects.filter(corp=linked.corp).count() == sum(
        g["members"] for g in linked.data("groups")
    )
    assert_matches(linked, run)


def test_resume_after_a_kill_still_reconciles(linked: Linked, monkeypatch: pytest.MonkeyPatch) -> None:
    linked.seed(**SEED)
    first = sync(linked.corp)
    assert first.status == SyncRun.Status.DONE
    gone = linked.world("del_external_contact")  # the member deletes a customer; no callback reaches us
    monkeypatch.setattr(sync_models, "CHUNK", 2)
    monkeypatch.setattr(services, "PAGE_LIMIT", 9)
    real_apply = services.customer_page_apply
    calls: list[int] = []

    def dying_apply(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise WorkerKilled
        return real_apply(**kwargs)

    monkeypatch.setattr(services, "customer_page_apply", dying_apply)
    run, _ = full_sync_start(corp=linked.corp)
    with pytest.raises(WorkerKilled):
        full_sync_execute(run_id=run.pk)
    SyncRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    full_sync_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.follows_lost) == (SyncRun.Status.DONE, 1)
    lost = Follow.objects.select_related("customer").get(
        corp=linked.corp, member__userid=gone["userid"], customer__external_userid=gone["external_userid"]
    )
    assert lost.status == FollowStatus.LOST
    assert lost.member_id not in lost.customer.member_ids  # recomputed without the lost follow
    assert (
        lost.customer.active_follows
        == Follow.objects.filter(customer=lost.customer, status=FollowStatus.ACTIVE).count()
    )
    assert_matches(linked, run)


def test_a_member_leaving_during_the_run_is_skipped_not_fatal(
    linked: Linked, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = linked.seed(**SEED)
    monkeypatch.setattr(sync_models, "CHUNK", 2)
    monkeypatch.setattr(services, "PAGE_LIMIT", 5)
    real_apply = services.customer_page_apply
    left: list[str] = []

    def apply_then_resign(**kwargs: Any) -> Any:
        result = real_apply(**kwargs)
        if not left:  # after the first page, its member leaves the company
            left.append(kwargs["items"][0]["follow_info"]["userid"])
            linked.world("resign", userid=left[0])
        return result

    monkeypatch.setattr(services, "customer_page_apply", apply_then_resign)
    run = sync(linked.corp)
    assert run.status == SyncRun.Status.DONE
    assert run.members_total == seeded["members"] - 1 and left[0] not in run.member_userids
    # Everyone else's follows are exactly WeCom's; the leaver keeps only what was read before they left,
    # and no follow was counted twice although their chunk was read again.
    extra = ours(linked.corp) - linked.follows()
    assert extra and {userid for userid, _ in extra} == {left[0]}
    assert linked.follows() <= ours(linked.corp)
    assert run.follows_seen == len(linked.follows()) + len(extra)


def test_reconcile_marks_lost_follows_dismissed_groups_and_deleted_tags(linked: Linked) -> None:
    linked.seed(**SEED)
    first = sync(linked.corp)
    corp = linked.corp
    # WeCom changes while the callbacks never reach us.
    gone = linked.world("del_external_contact")
    chat = linked.data("groups")[0]["chat_id"]
    linked.world("dismiss_group", chat_id=chat)
    tag_id = next(t["id"] for g in linked.data("tags") for t in g["tags"])
    linked.world("tag_edit", op="delete", id=tag_id)
    # A customer who deleted the member stays on the member's list in WeCom; the event recorded it.
    one_way = linked.world("del_follow_user")
    Follow.objects.filter(
        corp=corp, member__userid=one_way["userid"], customer__external_userid=one_way["external_userid"]
    ).update(status=FollowStatus.DELETED_BY_CUSTOMER)
    tag_pk = Tag.objects.get(corp=corp, tag_id=tag_id).pk

    run = sync(corp)
    assert run.status == SyncRun.Status.DONE
    assert (run.follows_lost, run.groups_dismissed) == (1, 1)
    lost = Follow.objects.select_related("customer").get(
        corp=corp, member__userid=gone["userid"], customer__external_userid=gone["external_userid"]
    )
    assert lost.status == FollowStatus.LOST and lost.last_seen_sync == first.pk
    # The customer's derived columns were recomputed without the lost follow.
    assert lost.member_id not in lost.customer.member_ids
    assert (
        lost.customer.active_follows
        == Follow.objects.filter(customer=lost.customer, status=FollowStatus.ACTIVE).count()
    )
    assert CustomerGroup.objects.get(corp=corp, chat_id=chat).status == CustomerGroup.Status.DISMISSED
    assert Tag.objects.get(pk=tag_pk).deleted
    assert not Follow.objects.filter(corp=corp, tag_ids__contains=[tag_pk]).exists()
    assert not Customer.objects.filter(corp=corp, tag_ids__contains=[tag_pk]).exists()
    kept = Follow.objects.get(
        corp=corp, member__userid=one_way["userid"], customer__external_userid=one_way["external_userid"]
    )
    assert kept.status == FollowStatus.DELETED_BY_CUSTOMER and kept.last_seen_sync == run.pk
    # A lost follow that WeCom lists again (re-added) comes back.
    Follow.objects.filter(pk=Follow.objects.filter(corp=corp, status=FollowStatus.ACTIVE).first().pk).update(  # type: ignore[union-attr]
        status=FollowStatus.LOST
    )
    again = sync(corp)
    assert again.follows_lost == 0
    assert ours(corp) == {
        (u, e) for u, e in linked.follows() if (u, e) != (one_way["userid"], one_way["external_userid"])
    }


def test_rows_written_by_callbacks_during_a_run_are_not_reconciled_away(linked: Linked) -> None:
    seeded = linked.seed(**SEED)
    run = sync(linked.corp)
    corp = linked.corp
    # What the first run wrote is old news by the time the next run starts…
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Follow.objects.filter(corp=corp).update(updated_at=an_hour_ago)
    CustomerGroup.objects.filter(corp=corp).update(updated_at=an_hour_ago)
    next_run_started = timezone.now() - timedelta(minutes=30)
    # …while an add event and a new group arrive during the next run, which could not have seen them.
    follow_id = customers.follow_apply_event(
        corp=corp,
        userid=Member.objects.filter(corp=corp).first().userid,  # type: ignore[union-attr]
        external_userid="wmNEWDURINGSYNC0000000000001",
        event_time=int(timezone.now().timestamp()),
        rank=customers.RANK_ADD,
        status=FollowStatus.ACTIVE,
        timeline_kind="added",
    )
    follow = Follow.objects.select_related("member").get(pk=follow_id)
    group = CustomerGroup.objects.create(
        corp=corp, chat_id="wrNEWDURINGSYNC", owner_userid=follow.member.userid
    )
    owners = list(Member.objects.filter(corp=corp).values_list("userid", flat=True))

    # Suppose the next run saw nothing at all: everything older than its start is reconciled…
    lost = services.follows_mark_lost(corp=corp, run_id=run.pk + 1, before=next_run_started, limit=10_000)
    dismissed = services.groups_mark_dismissed(
        corp=corp, run_id=run.pk + 1, before=next_run_started, owners=owners
    )
    assert (lost, dismissed) == (seeded["follows"], seeded["groups"])
    # …and what arrived during it is left alone.
    follow.refresh_from_db()
    group.refresh_from_db()
    assert follow.status == FollowStatus.ACTIVE and group.status == CustomerGroup.Status.ACTIVE
    assert Customer.objects.filter(corp=corp, active_follows__gt=0).count() == 1


def test_an_event_newer_than_the_read_wins_over_the_page(linked: Linked) -> None:
    linked.seed(**SEED)
    sync(linked.corp)
    corp = linked.corp
    row = Follow.objects.select_related("customer", "member").filter(corp=corp).first()
    assert row is not None
    read_at = timezone.now()
    # The member deleted the customer a moment after our page was read, and the event came in first.
    Follow.objects.filter(pk=row.pk).update(
        status=FollowStatus.DELETED_BY_MEMBER, last_event_time=(int(read_at.timestamp()) + 1) * 10 + 2
    )
    item = {
        "external_contact": {"external_userid": row.customer.external_userid, "name": "x"},
        "follow_info": {"userid": row.member.userid, "createtime": 1_700_000_000, "tag_id": []},
    }
    services.customer_page_apply(
        corp=corp,
        run_id=999,
        items=[item],
        member_pks={row.member.userid: row.member_id},
        tag_pks={},
        fetched_at=read_at,
    )
    row.refresh_from_db()
    assert row.status == FollowStatus.DELETED_BY_MEMBER and row.last_seen_sync == 999
    # An event older than the read does not hold the page back.
    services.customer_page_apply(
        corp=corp,
        run_id=1000,
        items=[item],
        member_pks={row.member.userid: row.member_id},
        tag_pks={},
        fetched_at=read_at + timedelta(seconds=5),
    )
    row.refresh_from_db()
    assert row.status == FollowStatus.ACTIVE


def test_a_transient_failure_retries_from_the_checkpoint(
    linked: Linked, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = linked.seed(**SEED)
    monkeypatch.setattr(services, "PAGE_LIMIT", 10)
    real_page = services._Sync._customer_page
    calls: list[int] = []

    def flaky_page(self: Any, userids: list[str], cursor: str) -> Any:
        calls.append(1)
        if len(calls) == 4:
            raise TransientError(-1, "system busy", api="externalcontact/batch/get_by_user")
        return real_page(self, userids, cursor)

    monkeypatch.setattr(services._Sync, "_customer_page", flaky_page)
    run, _ = full_sync_start(corp=linked.corp)
    with pytest.raises(SyncInterrupted) as interrupted:
        full_sync_execute(run_id=run.pk)
    assert interrupted.value.attempt == 1
    run.refresh_from_db()
    # Still running, the lease given back, the trouble shown while it waits to retry.
    assert run.status == SyncRun.Status.RUNNING and run.lease_token == "" and run.lease_expires_at is None
    assert (run.error_code, run.attempts) == (-1, 1)
    progress = sync_progress_get(corp=linked.corp, lang="en")
    assert progress is not None and "busy" in progress.error and "(errcode -1)" in progress.error
    committed = run.follows_seen
    assert 0 < committed < seeded["follows"]

    full_sync_execute(run_id=run.pk)  # the task's retry
    run.refresh_from_db()
    assert run.status == SyncRun.Status.DONE
    assert (run.attempts, run.error_code, run.follows_seen) == (0, None, seeded["follows"])
    assert_matches(linked, run)


def test_too_many_transient_failures_fail_the_run(linked: Linked, monkeypatch: pytest.MonkeyPatch) -> None:
    linked.seed(**SEED)

    def busy(self: Any, userids: list[str], cursor: str) -> Any:
        raise TransientError(-1, "system busy", api="externalcontact/batch/get_by_user")

    monkeypatch.setattr(services._Sync, "_customer_page", busy)
    run, _ = full_sync_start(corp=linked.corp)
    for attempt in range(1, services.MAX_ATTEMPTS + 1):
        with pytest.raises(SyncInterrupted) as interrupted:
            full_sync_execute(run_id=run.pk)
        assert interrupted.value.attempt == attempt
    full_sync_execute(run_id=run.pk)  # one too many: no retry is asked for
    run.refresh_from_db()
    assert (run.status, run.error_code) == (SyncRun.Status.FAILED, -1)
    assert run.finished_at is not None


def test_a_permanent_error_fails_the_run_with_its_errcode_and_reason(sandbox: Any, world: World) -> None:
    linked = link(sandbox, world.corp_a)
    linked.corp.secret = "not-the-secret"
    linked.corp.save()
    run = sync(linked.corp)
    assert (run.status, run.error_code) == (SyncRun.Status.FAILED, 40001)
    progress = sync_progress_get(corp=linked.corp, lang="zh-hans")
    assert progress is not None
    assert "Secret" in progress.error and "(errcode 40001)" in progress.error
    assert "secret" in sync_progress_get(corp=linked.corp, lang="en").error.lower()  # type: ignore[union-attr]
    # A failed run no longer blocks a new one.
    again, created = full_sync_start(corp=linked.corp)
    assert created and again.pk != run.pk


def test_one_run_per_corp_at_a_time(linked: Linked, world: World) -> None:
    first, created = full_sync_start(corp=linked.corp, user=world.alice)
    assert created and first.requested_by == world.alice
    second, created_again = full_sync_start(corp=linked.corp)
    assert (second.pk, created_again) == (first.pk, False)
    other, created_b = full_sync_start(corp=world.corp_b)
    assert created_b and other.corp == world.corp_b
    # Two workers given the same run: the second is told to wait for the first's lease.
    token = "a" * 32
    assert services._claim(run_id=first.pk, token=token) is not None
    with pytest.raises(SyncBusy):
        full_sync_execute(run_id=first.pk)
    # A worker that stalled past its lease and lost the run to another can no longer write.
    SyncRun.objects.filter(pk=first.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    stale = services._Sync(run=first, token=token, client=None, pool=None)  # type: ignore[arg-type]
    assert services._claim(run_id=first.pk, token="b" * 32) is not None
    with pytest.raises(services._LeaseLost):
        stale._checkpoint(chunk=5)
    assert SyncRun.objects.get(pk=first.pk).chunk == 0
    # A finished run makes a late duplicate a no-op.
    SyncRun.objects.filter(pk=first.pk).update(status=SyncRun.Status.DONE)
    assert services._claim(run_id=first.pk, token="c" * 32) is None
    full_sync_execute(run_id=first.pk)


def test_start_enqueues_on_the_bulk_lane_and_resends_a_stranded_run(
    world: World, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from tasks.sync import full_sync

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(full_sync, "apply_async", lambda **kw: sent.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = full_sync_start(corp=world.corp_a)
    assert sent == [{"args": (run.pk,), "queue": "bulk"}]
    # Pressing again while it is fresh sends nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        full_sync_start(corp=world.corp_a)
    assert len(sent) == 1
    # A run nobody worked on for a lease period (its message lost with Redis) is sent again.
    SyncRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() - 2 * services.LEASE)
    with django_capture_on_commit_callbacks(execute=True):
        again, created = full_sync_start(corp=world.corp_a)
    assert (again.pk, created) == (run.pk, False)
    assert sent[-1] == {"args": (run.pk,), "queue": "bulk"} and len(sent) == 2


def test_nightly_starts_one_run_per_corp_and_is_scheduled(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.celery import app

    monkeypatch.setattr(services, "_enqueue", lambda run_id: None)
    busy, _ = full_sync_start(corp=world.corp_a)
    assert services.full_sync_start_nightly() == 1  # corp A keeps its run in progress
    runs = SyncRun.objects.filter(status__in=SyncRun.ACTIVE)
    assert {(r.corp_id, r.trigger) for r in runs} == {
        (world.corp_a.pk, SyncRun.Trigger.MANUAL),
        (world.corp_b.pk, SyncRun.Trigger.NIGHTLY),
    }
    entry = app.conf.beat_schedule["full-sync-nightly"]
    assert entry["task"] == "tasks.sync.full_sync_nightly" and entry["options"]["queue"] == "bulk"
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({3}, {0})
    assert busy.pk in {r.pk for r in runs}


def test_the_task_retries_on_the_bulk_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    from celery.exceptions import Retry

    from tasks import sync as sync_tasks

    retries: list[dict[str, Any]] = []

    def fake_retry(**kwargs: Any) -> Retry:
        retries.append(kwargs)
        return Retry()

    monkeypatch.setattr(sync_tasks.full_sync, "retry", fake_retry)
    for raised, expected in ((SyncBusy(42.0), 42.0), (SyncInterrupted(1, 30.0), 31.0)):

        def execute(*, run_id: int, _raised: Exception = raised) -> None:
            raise _raised

        monkeypatch.setattr(services, "full_sync_execute", execute)
        with pytest.raises(Retry):
            sync_tasks.full_sync(7)
        assert retries[-1]["countdown"] == expected and retries[-1]["queue"] == "bulk"

    monkeypatch.setattr(
        services, "full_sync_execute", lambda *, run_id: (_ for _ in ()).throw(SyncInterrupted(3, None))
    )
    with pytest.raises(Retry):
        sync_tasks.full_sync(7)
    assert 1.0 <= retries[-1]["countdown"] <= 8.0  # backoff(2): jittered, capped
