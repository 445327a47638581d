"""Landing pages (switching at the threshold, expiry warnings), group welcome templates (WeCom, the
content gate, the 100 limit), duplicates, the API, and tenancy."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from scrm.compliance.services import corp_word_add
from scrm.groupcodes import selectors, services
from scrm.groupcodes.models import GroupCode, GroupWelcomeTemplate, Notice, PoolGroup
from scrm.groups.models import CustomerGroup, GroupMember
from scrm.groups.services import group_apply_details
from tests.conftest import World, client_for
from tests.scrm.groupcodes.conftest import Gc

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _group(world: World, chat_id: str, members: int) -> CustomerGroup:
    return group_apply_details(
        corp=world.corp_a,
        chat={
            "chat_id": chat_id,
            "name": chat_id,
            "owner": "lilei",
            "member_version": "v0",
            "member_list": [{"userid": f"wm{chat_id}{i}", "type": 2} for i in range(members)],
        },
    )


def _landing(world: World) -> tuple[GroupCode, list[PoolGroup]]:
    code = services.code_create(corp=world.corp_a, name="落地页", mode=GroupCode.Mode.LANDING, capacity=5)
    entries = [
        services.pool_add_image(
            corp=world.corp_a,
            code=code,
            group=_group(world, f"wrL{i}", 2),
            image=PNG,
            content_type="image/png",
        )
        for i in range(2)
    ]
    return code, entries


def _join_event(world: World, chat_id: str, who: str, ver: str) -> str:
    from wecom.sandbox.events import change_external_chat

    return change_external_chat(
        world.corp_a.corp_id, time.time(), chat_id, "update", update_detail="add_member",
        join_scene=3, members=[who], last_mem_ver="v0", cur_mem_ver=ver,
    )  # fmt: skip


@pytest.mark.django_db
def test_landing_page_switches_at_the_threshold(
    world: World, django_capture_on_commit_callbacks: object
) -> None:
    from django.db import transaction

    from scrm.callbacks.apply import event_apply
    from wecom import events as ev

    code, (first, second) = _landing(world)
    anonymous = Client()
    page = anonymous.get(f"/g/{code.slug}/")
    assert page.status_code == 200 and f'data-entry="{first.pk}"' in page.content.decode()
    assert world.corp_a.name not in page.content.decode()
    image = anonymous.get(f"/g/{code.slug}/{first.pk}.img")
    assert image.status_code == 200 and image.content == PNG
    for i, ver in enumerate(("v1", "v2")):  # 2 → 4 members: 4 + margin 1 reaches capacity 5
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():  # type: ignore[operator]
            event_apply(corp=world.corp_a, event=ev.parse_event(_join_event(world, "wrL0", f"wmNEW{i}", ver)))
    assert PoolGroup.objects.get(pk=first.pk).status == PoolGroup.Status.FULL
    page = anonymous.get(f"/g/{code.slug}/")
    assert f'data-entry="{second.pk}"' in page.content.decode()
    assert anonymous.get(f"/g/{code.slug}/{first.pk}.img").status_code == 404  # only the current one
    assert Notice.objects.filter(code=code, kind=Notice.Kind.EXHAUSTED).exists()  # the last one is showing
    # The second image expires: nothing is left to show.
    PoolGroup.objects.filter(pk=second.pk).update(qr_expires_at=timezone.now() - timedelta(minutes=1))
    page = anonymous.get(f"/g/{code.slug}/")
    assert 'data-testid="landing-none"' in page.content.decode()
    assert anonymous.get("/g/no-such-code/").status_code == 404


@pytest.mark.django_db
def test_expiry_warned_a_day_ahead_once(world: World) -> None:
    code, (_first, second) = _landing(world)
    assert services.landing_expiry_check() == 0
    PoolGroup.objects.filter(pk=second.pk).update(qr_expires_at=timezone.now() + timedelta(hours=20))
    assert services.landing_expiry_check() == 1
    assert services.landing_expiry_check() == 0
    (notice,) = Notice.objects.filter(corp=world.corp_a, kind=Notice.Kind.EXPIRY)
    assert "wrL1" in notice.text
    # A new image for the group replaces the old one, and will be warned about again.
    services.pool_add_image(
        corp=world.corp_a, code=code, group=second.group, image=PNG, content_type="image/png"
    )
    assert PoolGroup.objects.get(pk=second.pk).expiry_warned_at is None
    with pytest.raises(ValidationError):
        services.pool_add_image(
            corp=world.corp_a, code=code, group=second.group, image=b"GIF89a", content_type="image/gif"
        )
    alice = client_for(world.alice)
    assert "wrL1" in alice.get("/group-codes/").content.decode()


def test_group_welcome_templates(gc: Gc) -> None:
    corp = gc.corp
    t = services.template_save(corp=corp, template=None, name="欢迎", text="欢迎加入本群！", approver=False)
    assert t.template_id
    token = gc.sb.token(corp.corp_id, corp.secret)
    got = gc.sb.api(
        "POST", "externalcontact/group_welcome_template/get", token, {"template_id": t.template_id}
    )
    assert got["text"]["content"] == "欢迎加入本群！"
    services.template_save(corp=corp, template=t, name="欢迎", text="新的欢迎语", approver=False)
    got = gc.sb.api(
        "POST", "externalcontact/group_welcome_template/get", token, {"template_id": t.template_id}
    )
    assert got["text"]["content"] == "新的欢迎语"
    corp_word_add(corp=corp, word="加我私聊")
    with pytest.raises(ValidationError) as err:
        services.template_save(corp=corp, template=t, name="欢迎", text="有事加我私聊", approver=False)
    assert err.value.code == "sensitive"
    # Through the page: bob (operator) sees the plain-language refusal.
    bob = client_for(gc.world_user("bob"))
    response = bob.post(f"/group-welcome-templates/{t.pk}/", {"name": "x", "text": "有事加我私聊"})
    assert response.status_code == 400 and "加我私聊" in response.content.decode()
    GroupWelcomeTemplate.objects.bulk_create(
        GroupWelcomeTemplate(corp=corp, name=f"t{i}", text="x") for i in range(99)
    )
    with pytest.raises(ValidationError) as err:
        services.template_save(corp=corp, template=None, name="多", text="第101个", approver=False)
    assert err.value.code == "too_many"
    services.template_delete(corp=corp, template=t)
    got = gc.sb.api(
        "POST", "externalcontact/group_welcome_template/get", token, {"template_id": t.template_id}
    )
    assert got["errcode"] != 0


def test_duplicates_reported_and_owners_told(gc: Gc) -> None:
    pool = gc.groups(2)
    code = services.code_create(corp=gc.corp, name="重复", groups=pool, capacity=200)
    for g in pool:
        GroupMember.objects.create(corp=gc.corp, group=g, userid="wmTWICE", type=GroupMember.Type.CUSTOMER)
    GroupMember.objects.create(corp=gc.corp, group=pool[0], userid="wmONCE", type=GroupMember.Type.CUSTOMER)
    (dup,) = selectors.pool_duplicates(corp=gc.corp, code=code)
    assert dup.external_userid == "wmTWICE" and {g.pk for g in dup.groups} == {p.pk for p in pool}
    alice = client_for(gc.world_user("alice"))
    assert "wmTWICE" in alice.get(f"/group-codes/{code.pk}/duplicates/").content.decode()
    alice.post(f"/group-codes/{code.pk}/duplicates/")
    (notice,) = Notice.objects.filter(corp=gc.corp, kind=Notice.Kind.DUPLICATES)
    assert notice.owner_userid == gc.owner and "wmTWICE" in notice.text
    assert "wmTWICE" in alice.get(f"/groups/{pool[0].pk}/").content.decode()  # shown to the owner
    assert GroupMember.objects.filter(userid="wmTWICE", is_active=True).count() == 2  # nobody kicked


def test_pages_api_and_tenancy(gc: Gc) -> None:
    pool = gc.groups(2)
    alice = client_for(gc.world_user("alice"))
    response = alice.post(
        "/group-codes/new/",
        {"name": "页面建的码", "mode": "official", "groups": [pool[0].pk], "capacity": 200},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    code = GroupCode.objects.get(corp=gc.corp, name="页面建的码")
    page = alice.get(f"/group-codes/{code.pk}/").content.decode()
    assert pool[0].chat_id in page and "gcode-flow" in page
    assert alice.post(f"/group-codes/{code.pk}/pool/", {"groups": [pool[1].pk]}).status_code == 302
    assert gc.way(code.config_id)["chat_id_list"] == [pool[0].chat_id, pool[1].chat_id]
    assert alice.get(f"/group-codes/{code.pk}/qr.png").status_code == 200
    api = alice.get("/api/v1/group-codes/").json()
    assert [c["name"] for c in api["results"]] == ["页面建的码"]
    detail = alice.get(f"/api/v1/group-codes/{code.pk}/").json()
    assert [p["chat_id"] for p in detail["pool"]] == [pool[0].chat_id, pool[1].chat_id]
    assert re.search(
        r"invalid|must|至少|least",
        alice.post("/group-codes/new/", {"name": "空", "mode": "official", "capacity": 200}).content.decode(),
    )
    # charlie (corp B) sees nothing of it and cannot change it.
    charlie = client_for(gc.world_user("charlie"))
    assert charlie.get(f"/group-codes/{code.pk}/").status_code == 404
    assert charlie.post(f"/group-codes/{code.pk}/delete/").status_code == 404
    assert charlie.get(f"/api/v1/group-codes/{code.pk}/").status_code == 404
    assert charlie.get("/api/v1/group-codes/").json()["results"] == []
    with pytest.raises(CustomerGroup.DoesNotExist):
        other = CustomerGroup.objects.create(corp=gc.other_corp(), chat_id="wrB")
        services.pool_add(corp=gc.corp, code=code, groups=[other])
    # bob (operator) may not create codes.
    assert client_for(gc.world_user("bob")).post("/group-codes/new/", {"name": "x"}).status_code == 403
    group_page = alice.get("/groups/stats/")
    assert group_page.status_code == 200 and "gs-flow" in group_page.content.decode()


def test_group_statistics_pulled_from_wecom(gc: Gc) -> None:
    from scrm.groups.models import CorpGroupDayStat
    from scrm.groups.services import group_statistics_pull

    gc.groups(2)
    # Closed days only: the groups were created today, so WeCom's figures for the last 3 days are zeros.
    assert group_statistics_pull(corp=gc.corp, days=3) == 3
    assert CorpGroupDayStat.objects.filter(corp=gc.corp).count() == 3
    assert gc.calls("externalcontact/groupchat/statistic_group_by_day") == 1
