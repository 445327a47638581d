"""Approval and the content gate, exclusions in the preview, groups, remind and cancel, the churn guard."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from scrm.callbacks.apply import inbox_process
from scrm.callbacks.models import InboxEvent, InboxStatus
from scrm.campaigns import selectors, services
from scrm.campaigns.models import Broadcast, CampaignSettings, SendChunk
from scrm.compliance.services import corp_word_add, gate_policy_set
from scrm.customers.models import Customer, Follow, FollowStatus, Member
from tests.scrm.campaigns.conftest import Camp

pytestmark = pytest.mark.django_db

SEED = {"members": 3, "customers": 30, "follows": 40, "tag_groups": 2, "seed": 11}

DEL_XML = (
    "<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
    "<CreateTime>{t}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    "<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[del_follow_user]]></ChangeType>"
    "<UserID><![CDATA[{user}]]></UserID><ExternalUserID><![CDATA[{ext}]]></ExternalUserID></xml>"
)


def rules(camp: Camp, **values: object) -> None:
    current = {
        "quota_rule": "days_of_month",
        "churn_threshold": Decimal("1"),
        "approval_required": True,
        "dnd_tag": None,
        **values,
    }
    services.settings_save(corp=camp.corp, **current)  # type: ignore[arg-type]


def test_operator_drafts_admin_approves(camp: Camp) -> None:
    camp.seed(**SEED)
    b = camp.broadcast()
    b = services.broadcast_submit(corp=camp.corp, broadcast=b, user=camp.world.bob, is_admin=False)
    assert b.status == Broadcast.Status.PENDING
    assert services.broadcasts_dispatch() == 0  # nothing goes out before an admin approves
    b = services.broadcast_approve(corp=camp.corp, broadcast=b, user=camp.world.alice)
    assert b.status == Broadcast.Status.SCHEDULED and b.approved_by == camp.world.alice
    # Corp setting off: an operator's broadcast is scheduled at once.
    rules(camp, approval_required=False)
    other = services.broadcast_submit(
        corp=camp.corp, broadcast=camp.broadcast(name="二"), user=camp.world.bob, is_admin=False
    )
    assert other.status == Broadcast.Status.SCHEDULED


def test_gate_blocks(camp: Camp) -> None:
    camp.seed(**SEED)
    gate_policy_set(corp=camp.corp, action="block")
    corp_word_add(corp=camp.corp, word="内部价")
    b = camp.broadcast(text="今晚内部价，限时抢购")
    with pytest.raises(ValidationError) as exc:
        services.broadcast_submit(corp=camp.corp, broadcast=b, user=camp.world.alice, is_admin=True)
    assert "内部价" in str(exc.value)
    b.refresh_from_db()
    assert b.status == Broadcast.Status.DRAFT
    highlighted = str(selectors_highlight(camp, b.text))
    assert '<mark class="sensitive"' in highlighted and "内部价" in highlighted


def selectors_highlight(camp: Camp, text: str) -> object:
    from scrm.compliance.services import content_highlight

    return content_highlight(corp=camp.corp, text=text)


def test_gate_approval_forces_an_admin(camp: Camp) -> None:
    camp.seed(**SEED)
    rules(camp, approval_required=False)
    gate_policy_set(corp=camp.corp, action="approval")
    corp_word_add(corp=camp.corp, word="内部价")
    b = services.broadcast_submit(
        corp=camp.corp, broadcast=camp.broadcast(text="内部价"), user=camp.world.bob, is_admin=False
    )
    assert b.status == Broadcast.Status.PENDING and b.gate_action == "approval"
    assert b.gate_words == ["内部价"]
    b = services.broadcast_approve(corp=camp.corp, broadcast=b, user=camp.world.alice)
    assert b.status == Broadcast.Status.SCHEDULED


def test_preview_exclusions(camp: Camp) -> None:
    camp.seed(**SEED)
    tag = camp.tag(camp.corp.tags.order_by("pk").first().name)  # type: ignore[union-attr]
    rules(camp, dnd_tag=tag)
    dnd = Customer.objects.filter(corp=camp.corp, active_follows__gt=0, tag_ids__contains=[tag.pk]).count()
    assert dnd > 0
    excluded = list(
        Customer.objects.filter(corp=camp.corp, active_follows__gt=0)
        .exclude(tag_ids__contains=[tag.pk])
        .values_list("external_userid", flat=True)[:2]
    )
    member = Member.objects.filter(corp=camp.corp).order_by("userid").first()
    assert member is not None
    # One of the member's customers deleted them: no longer a friend of the chosen sender.
    follow = (
        Follow.objects.filter(corp=camp.corp, member=member, status=FollowStatus.ACTIVE)
        .exclude(customer__tag_ids__contains=[tag.pk])
        .exclude(customer__external_userid__in=excluded)
        .first()
    )
    assert follow is not None
    follow.status = FollowStatus.DELETED_BY_CUSTOMER
    follow.save()
    from scrm.customers.services import customers_recompute

    customers_recompute(customer_ids=[follow.customer_id])
    audience = selectors.Audience.from_params({"members": [member.pk], "exclude": ",".join(excluded)})
    preview = selectors.audience_preview(corp=camp.corp, audience=audience)
    assert preview.excluded.get("not_friend", 0) >= 1
    everyone = selectors.audience_preview(
        corp=camp.corp, audience=selectors.Audience.from_params({"exclude": ",".join(excluded)})
    )
    assert everyone.excluded["dnd"] == dnd
    assert everyone.excluded["excluded"] == 2
    assert everyone.total == camp.customers() - dnd - 2
    assert [s.member.pk for s in preview.senders] == [member.pk]


def test_group_broadcast(camp: Camp) -> None:
    camp.seed(members=3, customers=30, follows=30, groups=5, group_size=5, seed=4)
    owner = Member.objects.get(corp=camp.corp, userid=camp.corp.customer_groups.first().owner_userid)  # type: ignore[union-attr]
    owned = camp.corp.customer_groups.filter(owner_userid=owner.userid).count()
    b = camp.approved(chat_type="group", owners=[owner.pk], text="群公告：周末活动")
    preview = selectors.audience_preview(corp=camp.corp, audience=selectors.audience_of(b))
    assert preview.total == owned and [s.member.pk for s in preview.senders] == [owner.pk]
    services.broadcast_send(broadcast_id=b.pk)
    (chunk,) = SendChunk.objects.filter(broadcast=b)
    assert chunk.status == SendChunk.Status.CREATED and len(chunk.reserved) == owned
    (tpl,) = camp.templates()
    assert tpl["chat_type"] == "group" and tpl["tasks"][0]["userid"] == owner.userid
    services.broadcast_poll(broadcast_id=b.pk, now=timezone.now() + timedelta(seconds=5))
    assert selectors.broadcast_results(broadcast=b) == {1: owned}
    assert camp.findings()["over_quota"] == 0


def test_remind_at_most_three_per_day_and_cancel(camp: Camp) -> None:
    camp.seed(**SEED)
    camp.settings(confirm_delay=3600.0)  # members take their time
    b = camp.approved()
    services.broadcast_send(broadcast_id=b.pk)
    chunks = SendChunk.objects.filter(broadcast=b).count()
    for _ in range(3):
        outcome = services.broadcast_remind(corp=camp.corp, broadcast=b)
        assert outcome.reminded == chunks and not outcome.errors
    calls = camp.calls("externalcontact/remind_groupmsg_send")
    outcome = services.broadcast_remind(corp=camp.corp, broadcast=b)
    assert outcome.reminded == 0 and outcome.at_limit == chunks
    assert camp.calls("externalcontact/remind_groupmsg_send") == calls  # refused before calling WeCom
    services.broadcast_cancel(corp=camp.corp, broadcast=b)
    b.refresh_from_db()
    assert b.status == Broadcast.Status.CANCELLED
    assert all(t["cancelled"] for t in camp.templates())


def _deleted(camp: Camp, userid: str, ext: str) -> None:
    """The customer deletes the member in WeCom; the callback is stored and applied as in production."""
    camp.sb.world(camp.corp.corp_id, "del_follow_user", userid=userid, external_userid=ext, deliver=False)
    xml = DEL_XML.format(corp=camp.corp.corp_id, t=int(time.time()), user=userid, ext=ext)
    row = InboxEvent.objects.create(
        corp=camp.corp,
        digest=hashlib.sha256(xml.encode()).hexdigest(),
        kind="change_external_contact.del_follow_user",
        lane="events",
        payload=xml,
        event_time=int(time.time()),
        received_at=timezone.now(),
        status=InboxStatus.QUEUED,
    )
    inbox_process(event_id=row.pk)
    inbox_process(event_id=row.pk)  # a redelivery counts nothing twice


def test_churn_guard_pauses_and_resumes(camp: Camp) -> None:
    camp.seed(members=2, customers=60, follows=60, tag_groups=1, seed=6)
    rules(camp, churn_threshold=Decimal("2"))
    b = camp.approved()
    services.broadcast_send(broadcast_id=b.pk)
    later = camp.broadcast(name="下周")
    later = services.broadcast_submit(corp=camp.corp, broadcast=later, user=camp.world.alice, is_admin=True)
    Broadcast.objects.filter(pk=later.pk).update(scheduled_at=timezone.now() + timedelta(seconds=1))
    chunk = SendChunk.objects.filter(broadcast=b).first()
    assert chunk is not None
    _deleted(camp, chunk.sender.userid, chunk.reserved[0])  # 1 of 60: under 2 %
    b.refresh_from_db()
    assert b.deletions == 1 and not selectors.settings_get(corp=camp.corp).paused
    _deleted(camp, chunk.sender.userid, chunk.reserved[1])  # 2 of 60 = 3.3 %: over
    b.refresh_from_db()
    s = selectors.settings_get(corp=camp.corp)
    assert b.deletions == 2 and s.paused and s.paused_by_broadcast_id == b.pk
    assert "3.3%" in s.pause_reason
    at = timezone.now() + timedelta(seconds=5)
    assert not selectors.due_broadcasts(now=at).filter(pk=later.pk).exists()
    assert services.broadcast_start(broadcast_id=later.pk, now=at) is None
    services.churn_resume(corp=camp.corp)
    assert not CampaignSettings.objects.get(corp=camp.corp).paused
    assert selectors.due_broadcasts(now=at).filter(pk=later.pk).exists()
    # Deleting a member who sent nothing in the last 72 h counts against no broadcast.
    SendChunk.objects.filter(broadcast=b).update(called_at=timezone.now() - timedelta(hours=73))
    _deleted(camp, chunk.sender.userid, chunk.reserved[2])
    b.refresh_from_db()
    assert b.deletions == 2
