"""Group pages and API: list (name, owner, size, status), one group with its members and joins / leaves."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from scrm.customers import services as customers
from scrm.groups import services
from scrm.groups.models import CustomerGroup, GroupDailyStat
from scrm.groups.selectors import SHANGHAI
from tests.conftest import World, client_for


def seed(world: World) -> CustomerGroup:
    a = world.corp_a
    customers.member_apply_info(corp=a, info={"userid": "lilei", "name": "李雷"})
    customers.customer_apply_contact(
        corp=a, contact={"external_userid": "wmZHANG", "name": "张三"}, follow_users=[]
    )
    now = int(timezone.now().timestamp())
    group = services.group_apply_details(
        corp=a,
        chat={
            "chat_id": "wrFANS",
            "name": "粉丝一群",
            "owner": "lilei",
            "create_time": now - 86400 * 10,
            "member_version": "v1",
            "member_list": [
                {"userid": "lilei", "type": 1, "join_time": now - 86400 * 10},
                {"userid": "wmZHANG", "type": 2, "join_time": now - 3600, "invitor": {"userid": "lilei"}},
                {"userid": "wmSTRANGER", "type": 2, "join_time": now - 7200, "name": "路人甲"},
            ],
        },
    )
    services.group_apply_member_change(
        corp=a,
        chat_id="wrFANS",
        event_time=now - 60,
        detail="del_member",
        changed=["wmSTRANGER"],
        quit_scene=0,
    )
    today = timezone.now().astimezone(SHANGHAI).date()
    GroupDailyStat.objects.update_or_create(
        corp=a,
        group=group,
        day=today - timedelta(days=2),
        defaults={"joins": 5, "leaves": 2, "size_at_end": 9},
    )
    services.group_mark_dismissed(corp=a, chat_id="wrOLD", event_time=now)
    services.group_apply_details(
        corp=world.corp_b, chat={"chat_id": "wrBETA", "name": "乙方群", "member_list": []}
    )
    return group


@pytest.mark.django_db
def test_group_list(world: World) -> None:
    seed(world)
    client = client_for(world.victor)
    html = client.get("/groups/").content.decode()
    assert re.findall(r'data-chat="([^"]+)"', html) == ["wrFANS", "wrOLD"]  # largest first
    row = html[html.index('data-chat="wrFANS"') :].split("</tr>")[0]
    assert "粉丝一群" in row and "李雷" in row and ">2<" in row
    assert "乙方群" not in html
    assert re.findall(r'data-chat="([^"]+)"', client.get("/groups/?status=dismissed").content.decode()) == [
        "wrOLD"
    ]
    assert re.findall(r'data-chat="([^"]+)"', client.get("/groups/?q=粉丝").content.decode()) == ["wrFANS"]


@pytest.mark.django_db
def test_group_detail_members_and_chart(world: World) -> None:
    group = seed(world)
    client = client_for(world.alice)
    client.cookies["django_language"] = "en"
    response = client.get(f"/groups/{group.pk}/")
    html = response.content.decode()
    assert re.findall(r'data-userid="([^"]+)"', html) == ["wmZHANG", "lilei", "wmSTRANGER"]  # present first
    zhang = html[html.index('data-userid="wmZHANG"') :].split("</tr>")[0]
    assert "张三" in zhang and "/customers/" in zhang and "李雷" in zhang  # linked customer, invited by
    stranger = html[html.index('data-userid="wmSTRANGER"') :].split("</tr>")[0]
    assert "路人甲" in stranger and "left" in stranger
    match = re.search(r'<script id="group-chart" type="application/json">(.*?)</script>', html)
    assert match
    chart = json.loads(match.group(1))
    assert len(chart["labels"]) == 30
    joins, leaves = chart["series"][0]["data"], chart["series"][1]["data"]
    assert joins[-3] == 5 and leaves[-3] == -2  # leaves drawn below the axis
    assert leaves[-1] == -1  # today's del_member
    assert response.context["joins_total"] == 5 and response.context["leaves_total"] == 3


@pytest.mark.django_db
def test_group_api(world: World) -> None:
    group = seed(world)
    client = client_for(world.victor)
    body = client.get("/api/v1/groups/?page_size=1").json()
    assert len(body["results"]) == 1 and body["next"]
    listed = client.get("/api/v1/groups/").json()["results"]
    assert {g["chat_id"] for g in listed} == {"wrFANS", "wrOLD"}
    assert client.get("/api/v1/groups/?status=dismissed").json()["results"][0]["chat_id"] == "wrOLD"
    detail = client.get(f"/api/v1/groups/{group.pk}/").json()
    assert detail["name"] == "粉丝一群" and detail["member_count"] == 2 and detail["status"] == "active"
    members = {m["userid"]: m for m in detail["members"]}
    assert members["wmZHANG"]["customer_id"] is not None and members["wmZHANG"]["is_active"]
    assert members["wmSTRANGER"]["is_active"] is False and members["wmSTRANGER"]["customer_id"] is None
    assert len(detail["daily"]) == 30 and detail["daily"][-3]["joins"] == 5


@pytest.mark.django_db
def test_groups_are_corp_scoped(world: World) -> None:
    group = seed(world)
    charlie = client_for(world.charlie)
    assert charlie.get(f"/groups/{group.pk}/").status_code == 404
    assert charlie.get(f"/api/v1/groups/{group.pk}/").status_code == 404
    assert [g["chat_id"] for g in charlie.get("/api/v1/groups/").json()["results"]] == ["wrBETA"]
    html = charlie.get("/groups/").content.decode()
    assert "粉丝一群" not in html and "乙方群" in html
