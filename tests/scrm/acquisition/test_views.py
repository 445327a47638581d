"""Dashboard pages and API of channel codes and scripts: create / edit / delete kept in step with WeCom,
QR downloads, statistics, and who may do what."""

from __future__ import annotations

from typing import Any

import pytest

from scrm.acquisition import services
from scrm.acquisition.models import ChannelAdd, ChannelCode, WelcomeAttempt, WelcomeScript
from scrm.callbacks.apply import inbox_process
from scrm.customers.models import Follow, FollowStatus
from tests.conftest import World, client_for
from tests.scrm.acquisition.conftest import Acq

pytestmark = pytest.mark.django_db


def code_post(members: list[Any], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "地铁广告",
        "per_minute_cap": "20",
        "per_day_cap": "300",
        "skip_verify": "on",
        "remark_template": "{channel_name}",
        "seats-TOTAL_FORMS": str(len(members) + 1),
        "seats-INITIAL_FORMS": "0",
        "seats-MIN_NUM_FORMS": "0",
        "seats-MAX_NUM_FORMS": "50",
    }
    for i, m in enumerate(members):
        data[f"seats-{i}-member"] = str(m.pk)
    data.update(extra)
    return data


def test_admin_creates_edits_and_deletes_a_code_in_step_with_wecom(acq: Acq, world: World) -> None:
    a, b, c = acq.members(3)
    alice = client_for(world.alice)
    assert alice.get("/channel-codes/new/").status_code == 200
    response = alice.post(
        "/channel-codes/new/", code_post([a, b], **{"seats-1-backup": "on", "seats-1-weekdays": ["5", "6"]})
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    code = ChannelCode.objects.get(corp=acq.corp)
    (way,) = acq.data("contact_ways")
    assert way["config_id"] == code.config_id and way["state"] == code.state and way["type"] == 2
    assert way["user"] == [a.userid] and way["remark"] == "地铁广告" and way["skip_verify"] is True

    page = alice.get(f"/channel-codes/{code.pk}/")
    assert page.status_code == 200 and "地铁广告" in page.content.decode()
    png = alice.get(f"/channel-codes/{code.pk}/qr.png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert "filename*=utf-8''%E5%9C%B0%E9%93%81%E5%B9%BF%E5%91%8A.png" in png["Content-Disposition"]
    svg = alice.get(f"/channel-codes/{code.pk}/qr.svg")
    assert (
        svg["Content-Type"] == "image/svg+xml"
        and b"<svg" in svg.content
        and "地铁广告".encode() in svg.content
    )
    assert ".svg" in svg["Content-Disposition"]

    # Edit: c joins, skip_verify off; WeCom gets the new list (a and c; b stays a weekend backup).
    data = code_post([a, c, b], **{"seats-2-backup": "on", "name": "地铁广告二期"})
    del data["skip_verify"]
    assert alice.post(f"/channel-codes/{code.pk}/edit/", data).status_code == 302
    (way,) = acq.data("contact_ways")
    assert (
        way["user"] == [a.userid, c.userid]
        and way["skip_verify"] is False
        and way["remark"] == "地铁广告二期"
    )

    assert alice.post(f"/channel-codes/{code.pk}/delete/").status_code == 302
    assert acq.data("contact_ways") == []
    assert ChannelCode.objects.get(pk=code.pk).status == ChannelCode.Status.DELETED
    assert alice.get(f"/channel-codes/{code.pk}/").status_code == 404


def test_form_errors_are_plain_and_nothing_is_created(acq: Acq, world: World) -> None:
    (a,) = acq.members(1)
    alice = client_for(world.alice)
    only_backup = code_post([a], **{"seats-0-backup": "on"})
    response = alice.post("/channel-codes/new/", only_backup)
    assert response.status_code == 400
    assert "at least one member" in response.content.decode()
    caps_wrong = code_post([a], per_minute_cap="50", per_day_cap="40")
    assert "per-minute cap" in alice.post("/channel-codes/new/", caps_wrong).content.decode()
    assert not ChannelCode.objects.filter(corp=acq.corp).exists() and acq.data("contact_ways") == []


def test_wecom_refusal_is_shown_with_its_errcode(acq: Acq, world: World) -> None:
    (a,) = acq.members(1)
    acq.sb.faults(acq.corp.corp_id, rate=1.0, kinds=["busy"], apis=["externalcontact/add_contact_way"])
    response = client_for(world.alice).post("/channel-codes/new/", code_post([a]))
    assert response.status_code == 400
    assert "-1" in response.content.decode()  # WeCom busy, with its code
    assert not ChannelCode.objects.filter(corp=acq.corp).exists()


def test_operators_and_viewers_see_codes_but_only_admins_change_them(acq: Acq, world: World) -> None:
    (a,) = acq.members(1)
    code = services.code_create(
        corp=acq.corp, name="展会", seats=[services.SeatInput(member=a)], per_minute_cap=10, per_day_cap=100
    )
    victor = client_for(world.victor)
    assert victor.get("/channel-codes/").status_code == 200
    assert victor.get(f"/channel-codes/{code.pk}/").status_code == 200
    assert victor.get(f"/channel-codes/{code.pk}/qr.png").status_code == 200
    assert victor.get("/channel-codes/new/").status_code == 403
    assert client_for(world.bob).post(f"/channel-codes/{code.pk}/delete/").status_code == 403
    assert client_for(world.bob).get("/welcome-scripts/").status_code == 403
    assert client_for(world.charlie).get(f"/channel-codes/{code.pk}/qr.png").status_code == 404


def test_script_pages_preview_variants_and_attachments(acq: Acq, world: World) -> None:
    alice = client_for(world.alice)
    response = alice.post(
        "/welcome-scripts/new/", {"name": "新客", "text": "你好{customer_nickname}，我是{member_name}"}
    )
    assert response.status_code == 302
    script = WelcomeScript.objects.get(corp=acq.corp)
    page = alice.get(f"/welcome-scripts/{script.pk}/")
    assert "你好张三，我是alice" in page.content.decode()  # the preview, with sample values
    refused = alice.post(f"/welcome-scripts/{script.pk}/", {"name": "新客", "text": "稳赚不赔的机会"})
    assert refused.status_code == 400 and "稳赚不赔" in refused.content.decode()
    variant = alice.post(
        f"/welcome-scripts/{script.pk}/variants/",
        {"start_time": "18:00", "end_time": "09:00", "text": "下班啦，明早回复您", "weekdays": ["0", "1"]},
    )
    assert variant.status_code == 302
    night = alice.get(f"/welcome-scripts/{script.pk}/preview/", {"day": "0", "time": "22:30"})
    assert "下班啦，明早回复您" in night.content.decode()
    day = alice.get(f"/welcome-scripts/{script.pk}/preview/", {"day": "0", "time": "10:00"})
    assert "你好张三" in day.content.decode()
    link = alice.post(
        f"/welcome-scripts/{script.pk}/attachments/",
        {"kind": "link", "title": "新人礼包", "url": "https://example.com/gift"},
    )
    assert link.status_code == 302
    missing_file = alice.post(f"/welcome-scripts/{script.pk}/attachments/", {"kind": "image"})
    assert missing_file.status_code == 400 and "Choose a file" in missing_file.content.decode()
    assert "新人礼包" in alice.get(f"/welcome-scripts/{script.pk}/preview/").content.decode()


def test_stats_count_adds_deletions_members_and_welcomes(acq: Acq, world: World) -> None:
    a, b = acq.members(2)
    services.script_save(corp=acq.corp, script=None, name="默认", text="你好", is_default=True)
    code = services.code_create(
        corp=acq.corp,
        name="统计",
        seats=[services.SeatInput(member=a), services.SeatInput(member=b)],
        per_minute_cap=10,
        per_day_cap=100,
    )
    adds = [acq.scan(config_id=code.config_id) for _ in range(4)]
    for add in adds:
        event_id = acq.store(add)
        services.welcome_send(event_id=event_id)
        inbox_process(event_id=event_id)
        services.channel_add_followup(
            corp=acq.corp,
            external_userid=add["external_userid"],
            userid=add["userid"],
            state=add["state"],
            event_time=int(add["event_time"]),
        )
    gone = Follow.objects.get(corp=acq.corp, customer__external_userid=adds[0]["external_userid"])
    Follow.objects.filter(pk=gone.pk).update(status=FollowStatus.DELETED_BY_CUSTOMER)
    from scrm.acquisition.selectors import code_stats

    stats = code_stats(corp=acq.corp, code=code)
    assert stats.total_adds == 4 == ChannelAdd.objects.filter(code=code).count()
    assert stats.welcome_totals == {"sent": 4}
    assert sorted(m.adds for m in stats.members) == [2, 2]  # the sandbox's round robin
    assert stats.over_cap == 0 and stats.latency_p50 is not None
    assert stats.days[-1].adds == 4
    page = client_for(world.victor).get(f"/channel-codes/{code.pk}/")
    assert page.status_code == 200 and 'data-testid="total-adds">4<' in page.content.decode()
    assert WelcomeAttempt.objects.filter(code=code, status="sent").count() == 4

    api = client_for(world.victor)
    listed = api.get("/api/v1/channel-codes/").json()
    assert [c["name"] for c in listed["results"]] == ["统计"]
    detail = api.get(f"/api/v1/channel-codes/{code.pk}/").json()
    assert {m["userid"] for m in detail["members"]} == {a.userid, b.userid}
    assert api.get(f"/api/v1/channel-codes/{code.pk}/stats/").json()["total_adds"] == 4
    assert client_for(world.charlie).get(f"/api/v1/channel-codes/{code.pk}/").status_code == 404
