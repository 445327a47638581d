"""Handovers against the sandbox: chunking, the 300-a-day group spread on Asia/Shanghai days, refusal and
cap outcomes, the 90-day guard, requests never repeated, transfer_fail, the member-left hook."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone

from scrm.callbacks.apply import event_apply
from scrm.customers.models import Customer, Follow, FollowStatus, Member, TimelineEntry
from scrm.groups.models import CustomerGroup
from scrm.succession import services
from scrm.succession.models import Handover, HandoverItem, ItemStatus, TransferBatch
from scrm.succession.services import SHANGHAI
from tests.scrm.succession.conftest import Succ
from wecom import events as ev

pytestmark = pytest.mark.django_db

S = ItemStatus


def _xml(corp_id: str, change: str, body: str, event: str = "change_external_contact") -> str:
    return (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{int(timezone.now().timestamp())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><ChangeType><![CDATA[{change}]]></ChangeType>{body}</xml>"
    )


def _statuses(handover: Handover, target: str = "customer") -> Counter[str]:
    return Counter(
        HandoverItem.objects.filter(handover=handover, target=target).values_list("status", flat=True)
    )


def test_groups_spread_300_a_day_on_shanghai_days(world: object) -> None:
    corp = world.corp_a  # type: ignore[attr-defined]
    leaver = Member.objects.create(corp=corp, userid="leaver", status=Member.Status.RESIGNED)
    heir = Member.objects.create(corp=corp, userid="heir")
    CustomerGroup.objects.bulk_create(
        [CustomerGroup(corp=corp, chat_id=f"wr{i:05d}", owner_userid="leaver") for i in range(750)]
    )
    # 23:30 in Shanghai is 15:30 UTC the same date: "today" is the Shanghai date, whatever UTC says.
    now = datetime(2025, 3, 1, 23, 30, tzinfo=SHANGHAI)
    handover = services.handover_create(
        corp=corp, kind="resigned", member=leaver, rule="member", takeover=heir, now=now
    )
    days = Counter(HandoverItem.objects.filter(handover=handover).values_list("not_before", flat=True))
    assert days == {date(2025, 3, 1): 300, date(2025, 3, 2): 300, date(2025, 3, 3): 150}
    # A second leaver's groups fill what the first left of each day.
    second = Member.objects.create(corp=corp, userid="second", status=Member.Status.RESIGNED)
    CustomerGroup.objects.bulk_create(
        [CustomerGroup(corp=corp, chat_id=f"wq{i:05d}", owner_userid="second") for i in range(200)]
    )
    other = services.handover_create(
        corp=corp,
        kind="resigned",
        member=second,
        rule="member",
        takeover=heir,
        now=now + timedelta(minutes=1),
    )
    days2 = Counter(HandoverItem.objects.filter(handover=other).values_list("not_before", flat=True))
    assert days2 == {date(2025, 3, 3): 150, date(2025, 3, 4): 50}
    # On-job group transfers have a budget of their own (another API).
    plan = services.handover_plan(
        corp=corp,
        kind="onjob",
        member=heir,
        rule="member",
        takeover=Member.objects.create(corp=corp, userid="x"),
        now=now,
    )
    assert plan.group_days == []


def test_group_requests_never_exceed_300_a_day(succ: Succ) -> None:
    leaver, (heir, _) = succ.setup(customers=5, groups=350)
    leaver = succ.resign(leaver)
    day1 = timezone.now()
    handover = services.handover_create(
        corp=succ.corp,
        kind="resigned",
        member=leaver,
        rule="member",
        takeover=heir,
        include_customers=False,
        now=day1,
    )
    services.handover_run(handover_id=handover.pk, now=day1)
    services.handover_run(handover_id=handover.pk, now=day1 + timedelta(minutes=5))  # same day: nothing more
    calls = succ.calls("externalcontact/groupchat/transfer")
    assert len(calls) == 3  # 100 per call
    assert _statuses(handover, "group") == {S.DONE: 300, S.PENDING: 50}
    owners = Counter(g["owner"] for g in succ.data("groups"))
    assert owners[heir.userid] >= 300
    assert CustomerGroup.objects.filter(corp=succ.corp, owner_userid=heir.userid).count() >= 300
    services.handover_run(handover_id=handover.pk, now=day1 + timedelta(days=1))
    assert _statuses(handover, "group") == {S.DONE: 350}
    assert len(succ.calls("externalcontact/groupchat/transfer")) == 4
    assert Handover.objects.get(pk=handover.pk).status == Handover.Status.DONE


def test_leaver_customers_chunked_with_refusals_and_cap(succ: Succ) -> None:
    leaver, (a, b) = succ.setup(customers=250)
    leaver = succ.resign(leaver)
    # Successors start with no customers; the cap lets each take over about 40 of their 125.
    succ.sb.settings(succ.corp.corp_id, transfer_refuse_rate=0.3, member_customer_cap=40)
    handover = services.handover_create(
        corp=succ.corp, kind="resigned", member=leaver, rule="least_loaded", candidates=[a, b]
    )
    services.handover_run(handover_id=handover.pk)
    requests = succ.transfer_requests()
    assert sorted(len(r["customer"]) for r in requests) == [25, 25, 100, 100]  # 125 each, ≤100 per call
    assert len(succ.calls("externalcontact/resigned/transfer_customer")) == 4
    assert _statuses(handover) == {S.WAITING: 250}
    succ.sb.advance(25 * 3600)  # past the 24-hour window
    services.handover_poll(handover_id=handover.pk)
    got = _statuses(handover)
    truth = Counter(t["status"] for t in succ.data("transfers"))
    assert got[S.DONE] == truth[1] and got[S.REFUSED] == truth[3] and got[S.OVER_CAP] == truth[4]
    assert got[S.DONE] and got[S.REFUSED] and got[S.OVER_CAP]
    assert sum(got.values()) == 250
    done = HandoverItem.objects.filter(handover=handover, status=S.DONE).select_related("customer")
    item = done.first()
    assert item is not None
    assert Follow.objects.get(customer=item.customer, member=item.takeover).status == FollowStatus.ACTIVE
    assert Follow.objects.get(customer=item.customer, member=leaver).status == FollowStatus.TRANSFERRED
    assert Handover.objects.get(pk=handover.pk).status == Handover.Status.DONE


def test_onjob_ninety_day_guard_counts_our_history(succ: Succ) -> None:
    owner, (heir, other) = succ.setup(customers=3)
    customers = list(Customer.objects.filter(follows__member=owner, follows__status="active").order_by("pk"))
    moved_twice, moved_long_ago, fresh = customers
    old = Handover.objects.create(corp=succ.corp, kind="onjob", member=other)
    now = timezone.now()
    for c, ages in ((moved_twice, (10, 80)), (moved_long_ago, (10, 95))):
        for k, age in enumerate(ages):
            HandoverItem.objects.create(
                corp=succ.corp,
                handover=old
                if k == 0
                else Handover.objects.create(corp=succ.corp, kind="onjob", member=other),
                target="customer",
                customer=c,
                wecom_id=c.external_userid,
                takeover=other,
                status=S.DONE,
                requested_at=now - timedelta(days=age),
            )
    handover = services.handover_create(
        corp=succ.corp, kind="onjob", member=owner, rule="member", takeover=heir, transfer_success_msg="您好"
    )
    items = {i.wecom_id: i for i in HandoverItem.objects.filter(handover=handover)}
    assert items[moved_twice.external_userid].status == S.GUARDED
    assert "possible again from" in items[moved_twice.external_userid].note
    assert items[moved_long_ago.external_userid].status == S.PENDING
    services.handover_run(handover_id=handover.pk)
    assert moved_twice.external_userid not in succ.requested()  # enforced before calling
    assert sorted(succ.requested()) == sorted([moved_long_ago.external_userid, fresh.external_userid])


def test_a_lapsed_claim_is_reconciled_not_requested_again(succ: Succ) -> None:
    leaver, (heir, _) = succ.setup(customers=150)
    leaver = succ.resign(leaver)
    handover = services.handover_create(
        corp=succ.corp, kind="resigned", member=leaver, rule="member", takeover=heir
    )
    now = timezone.now()
    # A worker claims the first batch, WeCom accepts it, and the worker dies before recording the answer.
    batch = services._claim_batch(handover=handover, now=now)
    assert batch is not None and batch.size == 100
    client = services.wecom_client(corp=succ.corp, lane="bulk")
    services._call(
        client=client, handover=handover, batch=batch, ids=[i.wecom_id for i in services._batch_items(batch)]
    )
    # While its lease holds, another run leaves that batch alone and takes the rest.
    services.handover_run(handover_id=handover.pk, now=now + timedelta(seconds=30))
    assert TransferBatch.objects.get(pk=batch.pk).status == TransferBatch.Status.CLAIMED
    # Once it lapsed, the next run asks WeCom what happened instead of requesting again.
    services.handover_run(handover_id=handover.pk, now=now + services.BATCH_LEASE + timedelta(seconds=1))
    assert TransferBatch.objects.get(pk=batch.pk).status == TransferBatch.Status.RECONCILED
    assert _statuses(handover) == {S.WAITING: 150}
    requested = succ.requested()
    assert len(requested) == 150 and len(set(requested)) == 150


def test_a_claim_that_never_reached_wecom_is_requested_once(succ: Succ) -> None:
    leaver, (heir, _) = succ.setup(customers=30)
    leaver = succ.resign(leaver)
    handover = services.handover_create(
        corp=succ.corp, kind="resigned", member=leaver, rule="member", takeover=heir
    )
    now = timezone.now()
    batch = services._claim_batch(handover=handover, now=now)  # the worker dies before calling
    assert batch is not None
    services.handover_run(handover_id=handover.pk, now=now + services.BATCH_LEASE + timedelta(seconds=1))
    services.handover_run(handover_id=handover.pk, now=now + services.BATCH_LEASE + timedelta(seconds=2))
    assert _statuses(handover) == {S.WAITING: 30}
    assert sorted(succ.requested()) == sorted(
        HandoverItem.objects.filter(handover=handover).values_list("wecom_id", flat=True)
    )


def test_one_open_transfer_per_customer_across_handovers(succ: Succ) -> None:
    owner, (a, b) = succ.setup(customers=4)
    first = services.handover_create(corp=succ.corp, kind="onjob", member=owner, rule="member", takeover=a)
    second = services.handover_create(corp=succ.corp, kind="onjob", member=owner, rule="member", takeover=b)
    assert set(_statuses(second)) == {S.SKIPPED}
    assert Handover.objects.get(pk=second.pk).status == Handover.Status.DONE
    services.handover_run(handover_id=first.pk)
    services.handover_run(handover_id=second.pk)
    assert len(succ.requested()) == len(set(succ.requested())) == _statuses(first)[S.WAITING]


def test_transfer_fail_event_updates_the_item(succ: Succ) -> None:
    owner, (heir, _) = succ.setup(customers=2)
    handover = services.handover_create(
        corp=succ.corp, kind="onjob", member=owner, rule="member", takeover=heir
    )
    services.handover_run(handover_id=handover.pk)
    refused, full = HandoverItem.objects.filter(handover=handover).order_by("pk")
    for item, reason in ((refused, "customer_refused"), (full, "customer_limit_exceed")):
        xml = _xml(
            succ.corp.corp_id,
            "transfer_fail",
            f"<UserID><![CDATA[{heir.userid}]]></UserID><ExternalUserID><![CDATA[{item.wecom_id}]]></ExternalUserID>"
            f"<FailReason><![CDATA[{reason}]]></FailReason>",
        )
        event_apply(corp=succ.corp, event=ev.parse_event(xml))
    refused.refresh_from_db()
    full.refresh_from_db()
    assert (refused.status, full.status) == (S.REFUSED, S.OVER_CAP)
    assert TimelineEntry.objects.filter(customer=refused.customer, kind="transfer_failed").exists()
    assert Handover.objects.get(pk=handover.pk).status == Handover.Status.DONE


def test_member_left_event_and_unassigned_list(succ: Succ) -> None:
    leaver, _ = succ.setup(customers=12)
    succ.world("resign", userid=leaver.userid)
    xml = _xml(
        succ.corp.corp_id, "delete_user", f"<UserID><![CDATA[{leaver.userid}]]></UserID>", "change_contact"
    )
    event_apply(corp=succ.corp, event=ev.parse_event(xml))
    leaver.refresh_from_db()
    assert leaver.status == Member.Status.RESIGNED
    Follow.objects.filter(member=leaver).delete()  # as if we had missed them
    assert services.unassigned_refresh(corp=succ.corp) == 12
    assert Follow.objects.filter(member=leaver, status="active").count() == 12
    from scrm.succession.selectors import leavers

    row = leavers(corp=succ.corp).get(pk=leaver.pk)
    assert row.customers_left == 12  # type: ignore[attr-defined]


def test_same_department_rule_needs_a_known_department(world: object) -> None:
    from django.core.exceptions import ValidationError

    corp = world.corp_a  # type: ignore[attr-defined]
    leaver = Member.objects.create(corp=corp, userid="l", status="resigned")
    with pytest.raises(ValidationError, match="department"):
        services.handover_plan(corp=corp, kind="resigned", member=leaver, rule="same_department")
    leaver.departments = [3]
    leaver.save()
    near = Member.objects.create(corp=corp, userid="near", departments=[3, 5])
    Member.objects.create(corp=corp, userid="far", departments=[4])
    plan = services.handover_plan(corp=corp, kind="resigned", member=leaver, rule="same_department")
    assert [m.pk for m in plan.candidates] == [near.pk]
