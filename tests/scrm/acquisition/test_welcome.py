"""The welcome fast lane against the WeCom sandbox: precedence, variables, time slots, cached media,
the expired path, 41051 / 41050 / 41096, duplicates, and the follow-up on the events lane."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

import pytest
from django.test import override_settings

from scrm.acquisition import services
from scrm.acquisition.content import Attachment, ScriptContent, Variant, in_slot, render
from scrm.acquisition.models import ChannelAdd, MediaAsset, WelcomeAttempt
from scrm.callbacks.apply import inbox_process
from scrm.callbacks.models import InboxEvent
from scrm.customers.models import Follow, Tag, TimelineEntry
from scrm.customers.tag_services import tag_group_create
from tests.scrm.acquisition.conftest import Acq, ago
from tests.scrm.callbacks.helpers import post_callback

pytestmark = pytest.mark.django_db

SHANGHAI_WED_10 = datetime(2026, 11, 18, 10, 0)  # a Wednesday
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


def code_for(acq: Acq, members: list[Any], **kwargs: Any) -> Any:
    seats = [services.SeatInput(member=m) for m in members]
    return services.code_create(
        corp=acq.corp,
        name=kwargs.pop("name", "门店海报"),
        seats=seats,
        per_minute_cap=kwargs.pop("per_minute_cap", 20),
        per_day_cap=kwargs.pop("per_day_cap", 300),
        **kwargs,
    )


def send(acq: Acq, add: dict[str, Any], **store: Any) -> services.WelcomeResult | None:
    return services.welcome_send(event_id=acq.store(add, **store))


# -- pure rendering ------------------------------------------------------------------------------------------


def test_time_slots_match_weekdays_hours_and_midnight() -> None:
    wed = SHANGHAI_WED_10
    assert in_slot(now=wed, weekdays=[2], start=time(9), end=time(18))
    assert not in_slot(now=wed, weekdays=[5, 6], start=None, end=None)
    assert not in_slot(now=wed, weekdays=[], start=time(18), end=time(9))  # evening slot, 10:00 is outside
    assert in_slot(now=wed.replace(hour=23), weekdays=[], start=time(18), end=time(9))
    assert in_slot(now=wed.replace(hour=2), weekdays=[], start=time(18), end=time(9))
    assert in_slot(now=wed, weekdays=[], start=None, end=None)


def test_variant_wins_in_its_slot_and_brings_its_attachments() -> None:
    link = Attachment(kind="link", body={"title": "官网", "url": "https://example.com"})
    evening = Variant(weekdays=(), start=time(18), end=time(9), text="{member_name}下班了", attachments=())
    weekend = Variant(weekdays=(5, 6), start=time(0), end=time(23, 59), text="周末好", attachments=(link,))
    content = ScriptContent(
        script_id=1, text="你好{customer_nickname}", attachments=(), variants=(evening, weekend)
    )
    values = {"member_name": "小王", "customer_nickname": ""}
    day = render(content, now_local=SHANGHAI_WED_10, now_epoch=0, values=values)
    assert day.text == "你好"  # no fallback given: the variable renders empty
    night = render(content, now_local=SHANGHAI_WED_10.replace(hour=20), now_epoch=0, values=values)
    assert night.text == "小王下班了"
    saturday = render(content, now_local=datetime(2026, 11, 21, 12, 0), now_epoch=0, values=values)
    assert saturday.text == "周末好"
    assert saturday.attachments == [
        {"msgtype": "link", "link": {"title": "官网", "url": "https://example.com"}}
    ]


def test_media_close_to_expiry_is_left_out_never_uploaded() -> None:
    fresh = Attachment(kind="image", body={}, media_id="m1", media_expires=10_000.0)
    stale = Attachment(kind="file", body={}, media_id="m2", media_expires=1_000.0)
    content = ScriptContent(script_id=1, text="hi", attachments=(fresh, stale))
    out = render(content, now_local=SHANGHAI_WED_10, now_epoch=950.0, values={})
    assert out.attachments == [{"msgtype": "image", "image": {"media_id": "m1"}}]
    assert out.skipped_media == 1


# -- through the sandbox ---------------------------------------------------------------------------------


def test_channel_script_with_variables_and_cached_media_is_sent(acq: Acq) -> None:
    alice_m, bob_m = acq.members(2)
    script = services.script_save(
        corp=acq.corp,
        script=None,
        name="欢迎",
        text="你好{customer_nickname}，我是{member_name}，欢迎从「{channel_name}」来",
        nickname_fallback="朋友",
    )
    services.attachment_add(
        corp=acq.corp, script=script, kind="image", upload=services.Upload("hello.png", PNG * 2, "image/png")
    )
    services.attachment_add(
        corp=acq.corp, script=script, kind="link", title="新人礼", url="https://example.com/gift"
    )
    code = code_for(acq, [alice_m, bob_m], script=script)
    uploads = acq.calls("media/upload")
    assert uploads == 1 and MediaAsset.objects.get(corp=acq.corp).media_id

    add = acq.scan(config_id=code.config_id)
    assert add["state"] == code.state
    result = send(acq, add)

    assert result is not None and result.status == WelcomeAttempt.Status.SENT
    (welcome,) = acq.welcomes()
    member = alice_m if add["userid"] == alice_m.userid else bob_m
    customer = next(c for c in acq.data("customers") if c["external_userid"] == add["external_userid"])
    assert welcome["text"] == f"你好{customer['name']}，我是{member.name}，欢迎从「门店海报」来"
    assert welcome["attachments"] == 2
    assert acq.calls("media/upload") == uploads  # nothing uploaded on the welcome path
    attempt = WelcomeAttempt.objects.get(corp=acq.corp)
    assert attempt.code == code and attempt.script == script and attempt.latency_ms is not None


def test_precedence_channel_then_member_then_default(acq: Acq) -> None:
    m1, m2, m3 = acq.members(3)
    default = services.script_save(
        corp=acq.corp, script=None, name="默认", text="默认欢迎语", is_default=True
    )
    own = services.script_save(
        corp=acq.corp, script=None, name="专属", text="{member_name}的专属欢迎", members=[m2]
    )
    channel = services.script_save(corp=acq.corp, script=None, name="渠道", text="渠道欢迎语")
    with_script = code_for(acq, [m1], name="有话术", script=channel)
    without = code_for(acq, [m2], name="无话术")
    third = code_for(acq, [m3], name="默认")

    send(acq, acq.scan(config_id=with_script.config_id))
    send(acq, acq.scan(config_id=without.config_id))
    send(acq, acq.scan(config_id=third.config_id))
    texts = [w["text"] for w in acq.welcomes()]
    assert texts == ["渠道欢迎语", f"{m2.name}的专属欢迎", "默认欢迎语"]
    assert {a.script_id for a in WelcomeAttempt.objects.filter(corp=acq.corp)} == {
        channel.pk,
        own.pk,
        default.pk,
    }

    # Saving invalidates the caches at once: the next welcome uses the new default.
    services.script_save(corp=acq.corp, script=default, name="默认", text="新的默认欢迎语", is_default=True)
    send(acq, acq.scan(config_id=third.config_id))
    assert acq.welcomes()[-1]["text"] == "新的默认欢迎语"


def test_no_script_anywhere_sends_nothing(acq: Acq) -> None:
    (m,) = acq.members(1)
    code = code_for(acq, [m])
    result = send(acq, acq.scan(config_id=code.config_id))
    assert result is not None and result.status == WelcomeAttempt.Status.NO_SCRIPT
    assert acq.calls("externalcontact/send_welcome_msg") == 0


def test_event_older_than_18_seconds_is_recorded_expired_and_not_sent(acq: Acq) -> None:
    (m,) = acq.members(1)
    services.script_save(corp=acq.corp, script=None, name="默认", text="你好", is_default=True)
    code = code_for(acq, [m])
    result = send(acq, acq.scan(config_id=code.config_id), received_at=ago(18.5))
    assert result is not None and result.status == WelcomeAttempt.Status.EXPIRED
    assert acq.calls("externalcontact/send_welcome_msg") == 0
    assert acq.sb.findings(acq.corp.corp_id)["summary"]["late_welcome"] == 0


def test_41051_41050_and_41096_are_handled_as_documented(acq: Acq) -> None:
    (m,) = acq.members(1)
    services.script_save(corp=acq.corp, script=None, name="默认", text="你好", is_default=True)
    code = code_for(acq, [m])
    # 41051: the code was used already (another app, or the customer chatted first).
    add = acq.scan(config_id=code.config_id)
    token = acq.sb.token(acq.corp.corp_id, acq.corp.secret)
    first = acq.sb.api(
        "POST",
        "externalcontact/send_welcome_msg",
        token,
        {"welcome_code": add["welcome_code"], "text": {"content": "x"}},
    )
    assert first["errcode"] == 0
    assert send(acq, add).status == WelcomeAttempt.Status.ALREADY_SENT  # type: ignore[union-attr]
    # 41050: invalid code, not retried.
    bogus = {**acq.scan(config_id=code.config_id), "welcome_code": "not-a-code"}
    result = send(acq, bogus)
    assert result is not None and result.status == WelcomeAttempt.Status.INVALID and result.errcode == 41050
    # 41096: another app is sending for 1–3 s; we retry inside the window and get through.
    acq.sb.settings(acq.corp.corp_id, welcome_busy_rate=1.0)
    busy = acq.scan(config_id=code.config_id)
    result = send(acq, busy)
    assert result is not None and result.status == WelcomeAttempt.Status.SENT
    assert result.latency_ms is not None and result.latency_ms >= 900
    assert acq.sb.findings(acq.corp.corp_id)["summary"]["late_welcome"] == 0


def test_41096_is_not_retried_past_the_deadline(acq: Acq) -> None:
    (m,) = acq.members(1)
    services.script_save(corp=acq.corp, script=None, name="默认", text="你好", is_default=True)
    code = code_for(acq, [m])
    acq.sb.settings(acq.corp.corp_id, welcome_busy_rate=1.0)
    result = send(acq, acq.scan(config_id=code.config_id), received_at=ago(17.0))
    assert result is not None and result.status in (WelcomeAttempt.Status.BUSY, WelcomeAttempt.Status.EXPIRED)
    assert acq.welcomes() == []


def test_a_redelivered_task_never_sends_twice(acq: Acq) -> None:
    (m,) = acq.members(1)
    services.script_save(corp=acq.corp, script=None, name="默认", text="你好", is_default=True)
    code = code_for(acq, [m])
    event_id = acq.store(acq.scan(config_id=code.config_id))
    assert services.welcome_send(event_id=event_id).status == "sent"  # type: ignore[union-attr]
    assert services.welcome_send(event_id=event_id) is None
    assert len(acq.welcomes()) == 1
    assert acq.calls("externalcontact/send_welcome_msg") == 1
    assert WelcomeAttempt.objects.get(inbox_event_id=event_id).tries == 1


@override_settings(WECOM_CALLBACK_REPLAY_WINDOW=0)
def test_a_duplicated_callback_gets_one_welcome(acq: Acq, client: Any) -> None:
    from tasks.celery import app

    app.conf.task_always_eager = True
    try:
        _duplicated_callback(acq, client)
    finally:
        app.conf.task_always_eager = False


def _duplicated_callback(acq: Acq, client: Any) -> None:
    (m,) = acq.members(1)
    services.script_save(corp=acq.corp, script=None, name="默认", text="你好", is_default=True)
    code = code_for(acq, [m])
    add = acq.scan(config_id=code.config_id)
    xml = (
        f"<xml><ToUserName><![CDATA[{acq.corp.corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{int(add['event_time'])}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType>"
        f"<UserID><![CDATA[{add['userid']}]]></UserID><ExternalUserID><![CDATA[{add['external_userid']}]]></ExternalUserID>"
        f"<State><![CDATA[{add['state']}]]></State><WelcomeCode><![CDATA[{add['welcome_code']}]]></WelcomeCode></xml>"
    )
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert post_callback(client, acq.corp, xml).status_code == 200
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert post_callback(client, acq.corp, xml).status_code == 200  # WeCom's retry
    assert InboxEvent.objects.filter(corp=acq.corp).count() == 1
    assert len(acq.welcomes()) == 1
    assert WelcomeAttempt.objects.get(corp=acq.corp).status == WelcomeAttempt.Status.SENT
    # Handed on and applied on the events lane (eager here).
    assert InboxEvent.objects.get(corp=acq.corp).status == "done"


def test_followup_tags_remarks_and_puts_the_welcome_on_the_timeline(acq: Acq) -> None:
    m1, m2 = acq.members(2)
    group = tag_group_create(corp=acq.corp, name="来源", tag_names=["海报", "门店"])
    tags = list(Tag.objects.filter(corp=acq.corp, group=group))
    services.script_save(
        corp=acq.corp, script=None, name="默认", text="你好{customer_nickname}", is_default=True
    )
    code = code_for(acq, [m1, m2], tags=tags, remark_template="{channel_name}-{customer_nickname}")
    add = acq.scan(config_id=code.config_id)
    event_id = acq.store(add)
    assert services.welcome_send(event_id=event_id).status == "sent"  # type: ignore[union-attr]
    inbox_process(event_id=event_id)
    services.channel_add_followup(
        corp=acq.corp,
        external_userid=add["external_userid"],
        userid=add["userid"],
        state=add["state"],
        event_time=int(add["event_time"]),
    )
    # Running it again (a retried task) changes nothing and calls WeCom for no write.
    marks = acq.calls("externalcontact/mark_tag")
    services.channel_add_followup(
        corp=acq.corp,
        external_userid=add["external_userid"],
        userid=add["userid"],
        state=add["state"],
        event_time=int(add["event_time"]),
    )
    assert acq.calls("externalcontact/mark_tag") == marks == 1
    follow = Follow.objects.select_related("customer").get(
        corp=acq.corp, customer__external_userid=add["external_userid"]
    )
    sandbox_follow = next(
        f
        for c in acq.data("customers")
        if c["external_userid"] == add["external_userid"]
        for f in c["follows"]
    )
    assert set(sandbox_follow["tags"]) == {t.tag_id for t in tags}
    assert sorted(follow.tag_ids) == sorted(t.pk for t in tags)  # enrichment did not wipe our own marks
    assert follow.remark == sandbox_follow["remark"] == f"门店海报-{follow.customer.name}"[:20]
    assert follow.customer.name  # enriched
    kinds = set(TimelineEntry.objects.filter(customer=follow.customer).values_list("kind", flat=True))
    assert {"added", "welcome_sent", "channel_tags"} <= kinds
    entry = TimelineEntry.objects.get(customer=follow.customer, kind="welcome_sent")
    assert entry.data["text"] == f"你好{follow.customer.name}" and entry.data["latency_ms"] >= 0
    assert ChannelAdd.objects.get(code=code).tags_done


def test_sensitive_words_are_refused_on_save(acq: Acq) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="赌博"):
        services.script_save(corp=acq.corp, script=None, name="x", text="欢迎来 赌*博 平台")
    with pytest.raises(ValidationError, match="Unknown variable"):
        services.script_save(corp=acq.corp, script=None, name="x", text="你好{nickname}")


def test_media_is_renewed_a_day_before_it_expires(acq: Acq) -> None:
    from datetime import timedelta

    from django.utils import timezone

    script = services.script_save(corp=acq.corp, script=None, name="图", text="", is_default=True)
    services.attachment_add(
        corp=acq.corp, script=script, kind="image", upload=services.Upload("a.png", PNG * 2, "image/png")
    )
    asset = MediaAsset.objects.get(corp=acq.corp)
    first = asset.media_id
    assert asset.expires_at is not None and asset.expires_at > timezone.now() + timedelta(days=2, hours=23)
    assert services.media_refresh_due() == 0  # fresh: nothing to do
    MediaAsset.objects.filter(pk=asset.pk).update(expires_at=timezone.now() + timedelta(hours=5))
    assert services.media_refresh_due() == 1
    asset.refresh_from_db()
    assert asset.media_id != first and asset.expires_at > timezone.now() + timedelta(days=2, hours=23)
    # The welcome uses the new media_id straight away (the cache generation moved on).
    (m,) = acq.members(1)
    code = code_for(acq, [m])
    assert send(acq, acq.scan(config_id=code.config_id)).status == "sent"  # type: ignore[union-attr]
    assert acq.welcomes()[-1]["attachments"] == 1
