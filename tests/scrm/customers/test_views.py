"""Customer pages: the filtered list (AND / OR / NOT tags, member, dates, status, search, order), CSV export,
one customer's page, members and the duplicates report; and that none of it shows another corp's data."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from scrm.customers import services
from scrm.customers.models import Customer, FollowStatus, Member, Tag, TagGroup
from scrm.tenancy.models import Corp
from tests.conftest import World, client_for

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ts(day: str) -> int:
    return int(datetime.fromisoformat(day + "T10:00").replace(tzinfo=SHANGHAI).timestamp())


@dataclass
class Seed:
    tags: dict[str, Tag]
    members: dict[str, Member]
    customers: dict[str, Customer]


def _contact(corp: Corp, extid: str, name: str, follows: list[dict[str, object]]) -> Customer:
    return services.customer_apply_contact(
        corp=corp,
        contact={"external_userid": extid, "name": name, "type": 1, "gender": 2, "corp_name": ""},
        follow_users=follows,
    )


def _follow(
    userid: str, day: str, tags: Sequence[str] = (), remark: str = "", state: str = ""
) -> dict[str, object]:
    return {
        "userid": userid,
        "createtime": ts(day),
        "remark": remark,
        "state": state,
        "tags": [{"tag_id": t, "type": 1} for t in tags],
    }


def seed_customers(world: World) -> Seed:
    """Corp A: five customers of three members with tags in two groups; corp B: one look-alike customer."""
    a = world.corp_a
    level = TagGroup.objects.create(corp=a, group_id="g-level", name="等级", order=2)
    region = TagGroup.objects.create(corp=a, group_id="g-region", name="地区", order=1)
    tags = {
        name: Tag.objects.create(corp=a, group=group, tag_id=f"t-{key}", name=name)
        for key, name, group in [
            ("vip", "VIP", level),
            ("normal", "普通", level),
            ("bj", "北京", region),
            ("sh", "上海", region),
            ("risk", "流失风险", region),
        ]
    }
    for userid, name in [("lilei", "李雷"), ("hanmm", "韩梅梅"), ("wang", "王老师")]:
        services.member_apply_info(corp=a, info={"userid": userid, "name": name})
    customers = {
        "c1": _contact(
            a,
            "wmZHANG",
            "张三",
            [
                _follow("lilei", "2026-01-05", ["t-vip", "t-bj"], state="ch-spring"),
                _follow("hanmm", "2026-01-06", ["t-sh"]),
            ],
        ),
        "c2": _contact(
            a, "wmLISI", "李四", [_follow("lilei", "2026-02-10", ["t-vip", "t-sh"], remark="老客户")]
        ),
        "c3": _contact(
            a, "wmWANGWU", "王五", [_follow("hanmm", "2026-03-01", ["t-normal", "t-bj", "t-risk"])]
        ),
        "c4": _contact(a, "wmZHAOLIU", "赵六", [_follow("wang", "2026-01-20", ["t-vip"])]),
        "c5": _contact(a, "wmEVE", "Eve", [_follow("wang", "2026-03-15")]),
    }
    # 赵六 deleted the member: no live follow left, so the customer is "lost".
    services.follow_apply_event(
        corp=a,
        userid="wang",
        external_userid="wmZHAOLIU",
        event_time=ts("2026-03-20"),
        rank=services.RANK_DELETE,
        status=FollowStatus.DELETED_BY_CUSTOMER,
        timeline_kind="deleted_by_customer",
    )
    # A timeline for 张三: the add event, then an edit.
    for kind, rank, day in [
        ("added", services.RANK_ADD, "2026-01-05"),
        ("edited", services.RANK_EDIT, "2026-01-07"),
    ]:
        services.follow_apply_event(
            corp=a,
            userid="lilei",
            external_userid="wmZHANG",
            event_time=ts(day),
            rank=rank,
            status=FollowStatus.ACTIVE,
            state="ch-spring" if kind == "added" else None,
            timeline_kind=kind,
            timeline_data={"state": "ch-spring"} if kind == "added" else None,
        )
    # Corp B has a customer with the same kind of data; corp A's pages must never show it.
    b_group = TagGroup.objects.create(corp=world.corp_b, group_id="g-level", name="等级B")
    Tag.objects.create(corp=world.corp_b, group=b_group, tag_id="t-vip", name="VIP-B")
    _contact(
        world.corp_b, "wmBETA", "秘密客户B", [_follow("bmember", "2026-01-05", ["t-vip"], remark="老客户")]
    )
    members = {m.userid: m for m in Member.objects.filter(corp=a)}
    for c in customers.values():
        c.refresh_from_db()
    return Seed(tags=tags, members=members, customers=customers)


def streamed(response: Any) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode("utf-8")


def listed(client: Client, query: str = "") -> list[str]:
    response = client.get("/customers/" + (f"?{query}" if query else ""))
    assert response.status_code == 200
    return re.findall(r'data-customer="([^"]+)"', response.content.decode())


@pytest.fixture
def seeded(world: World) -> Seed:
    return seed_customers(world)


@pytest.mark.django_db
def test_list_shows_each_customer_once_with_all_members_and_tags(world: World, seeded: Seed) -> None:
    client = client_for(world.alice)
    response = client.get("/customers/")
    html = response.content.decode()
    # Active customers, newest first added; 赵六 (lost) is not listed by default.
    assert listed(client) == ["wmEVE", "wmWANGWU", "wmLISI", "wmZHANG"]
    row = html[html.index('data-customer="wmZHANG"') :].split("</tr>")[0]
    assert "李雷" in row and "韩梅梅" in row
    assert "VIP" in row and "北京" in row and "上海" in row
    assert "秘密客户B" not in html and "VIP-B" not in html
    # Tag pickers grouped by tag group, for AND / OR / NOT
    assert '<optgroup label="等级">' in html and '<optgroup label="地区">' in html
    for name in ("tags_all", "tags_any", "tags_none"):
        assert f'name="{name}"' in html


@pytest.mark.django_db
def test_tag_filters_and_or_not(world: World, seeded: Seed) -> None:
    client = client_for(world.alice)
    t = {name: tag.pk for name, tag in seeded.tags.items()}
    assert listed(client, f"tags_all={t['VIP']}&tags_all={t['北京']}") == ["wmZHANG"]
    assert listed(client, f"tags_all={t['VIP']},{t['北京']}") == ["wmZHANG"]  # comma form
    assert set(listed(client, f"tags_any={t['上海']}&tags_any={t['流失风险']}")) == {
        "wmZHANG",
        "wmLISI",
        "wmWANGWU",
    }
    assert set(listed(client, f"tags_none={t['VIP']}")) == {"wmWANGWU", "wmEVE"}
    # The benchmark's shape: two tags AND, one excluded
    assert listed(client, f"tags_all={t['北京']}&tags_all={t['普通']}&tags_none={t['VIP']}") == ["wmWANGWU"]
    assert listed(client, f"tags_all={t['VIP']}&tags_none={t['上海']}") == []


@pytest.mark.django_db
def test_member_date_status_search_and_order_filters(world: World, seeded: Seed) -> None:
    client = client_for(world.alice)
    han = seeded.members["hanmm"].pk
    assert set(listed(client, f"members={han}")) == {"wmZHANG", "wmWANGWU"}
    assert set(listed(client, "added_from=2026-02-01")) == {"wmLISI", "wmWANGWU", "wmEVE"}
    assert listed(client, "added_to=2026-01-31") == ["wmZHANG"]
    assert listed(client, "added_from=2026-02-10&added_to=2026-02-10") == ["wmLISI"]
    assert listed(client, "status=lost") == ["wmZHAOLIU"]
    assert listed(client, "status=deleted_by_customer") == ["wmZHAOLIU"]
    assert len(listed(client, "status=all")) == 5
    assert listed(client, "q=老客户") == ["wmLISI"]  # a member's remark
    assert listed(client, "q=张") == ["wmZHANG"]  # the name
    assert listed(client, "order=added") == ["wmZHANG", "wmLISI", "wmWANGWU", "wmEVE"]
    by_name = listed(client, "order=name")
    assert sorted(by_name) == sorted(listed(client)) and listed(client, "order=-name") == by_name[::-1]


@pytest.mark.django_db
def test_filter_state_is_kept_in_the_query_string(world: World, seeded: Seed) -> None:
    client = client_for(world.alice)
    vip = seeded.tags["VIP"].pk
    response = client.get(f"/customers/?tags_all={vip}&q=张&page=1")
    assert response.context["filter_querystring"] == f"tags_all={vip}&q=%E5%BC%A0"
    html = response.content.decode()
    assert f'<option value="{vip}" selected>VIP</option>' in html
    assert 'value="张"' in html
    assert f"/customers/export.csv?tags_all={vip}&amp;q=%E5%BC%A0" in html


@pytest.mark.django_db
def test_a_bad_filter_is_explained_not_crashed(world: World, seeded: Seed) -> None:
    client = client_for(world.alice)
    client.cookies["django_language"] = "en"
    response = client.get("/customers/?added_from=yesterday")
    assert response.status_code == 200
    assert "added_from must be a date like" in response.content.decode()
    assert listed(client, "tags_all=abc") == []


@pytest.mark.django_db
def test_pages_of_25(world: World, seeded: Seed) -> None:
    for i in range(30):
        services.follow_apply_event(
            corp=world.corp_a,
            userid="lilei",
            external_userid=f"wmBULK{i:02}",
            event_time=ts("2025-12-01") + i,
            rank=services.RANK_ADD,
            status=FollowStatus.ACTIVE,
            timeline_kind="added",
        )
    client = client_for(world.alice)
    first, second = listed(client), listed(client, "page=2")
    assert len(first) == 25 and len(second) == 34 - 25 and not set(first) & set(second)


@pytest.mark.django_db
def test_csv_export_streams_every_page_of_the_filter_with_a_bom(world: World, seeded: Seed) -> None:
    client = client_for(world.bob)
    vip = seeded.tags["VIP"].pk
    response = client.get(f"/customers/export.csv?tags_all={vip}&status=all")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    body = streamed(response)
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body[1:])))
    assert rows[0][0] == "external_userid" and len(rows[0]) == 10
    by_id = {r[0]: r for r in rows[1:]}
    # 赵六's VIP was on a follow that is gone: a customer's tags are those of its live follows.
    assert set(by_id) == {"wmZHANG", "wmLISI"}
    zhang = by_id["wmZHANG"]
    assert zhang[1] == "张三" and zhang[3] == "female"
    assert set(zhang[5].split("; ")) == {"李雷", "韩梅梅"}
    assert set(zhang[7].split("; ")) == {"VIP", "北京", "上海"}
    assert zhang[9] == "2026-01-05 10:00"
    assert by_id["wmLISI"][6] == "老客户"
    assert "秘密客户B" not in body
    lost = streamed(client.get("/customers/export.csv?status=lost"))
    assert [r[0] for r in csv.reader(io.StringIO(lost[1:]))][1:] == ["wmZHAOLIU"]
    assert lost.rstrip().endswith(",0,2026-01-20 10:00")


@pytest.mark.django_db
def test_csv_cells_cannot_become_formulas(world: World) -> None:
    _contact(world.corp_a, "wmEVIL", '=HYPERLINK("http://x")', [_follow("m1", "2026-01-01")])
    body = streamed(client_for(world.alice).get("/customers/export.csv"))
    assert "'=HYPERLINK" in body


@pytest.mark.django_db
def test_csv_export_is_for_operators_and_up(world: World) -> None:
    assert client_for(world.victor).get("/customers/export.csv").status_code == 403
    response = client_for(world.alice).get("/customers/export.csv?added_from=nope")
    assert response.status_code == 400 and b"added_from" in response.content


@pytest.mark.django_db
def test_customer_page_has_profile_follows_tags_groups_and_timeline(world: World, seeded: Seed) -> None:
    from scrm.groups import services as groups

    groups.group_apply_details(
        corp=world.corp_a,
        chat={
            "chat_id": "wrFANS",
            "name": "粉丝群",
            "owner": "lilei",
            "member_list": [{"userid": "wmZHANG", "type": 2, "join_time": ts("2026-01-08")}],
        },
    )
    client = client_for(world.alice)
    client.cookies["django_language"] = "en"
    customer = seeded.customers["c1"]
    response = client.get(f"/customers/{customer.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "张三" in html and "wmZHANG" in html and "Female" in html and "WeChat user" in html
    follows = html[html.index('data-testid="follows"') : html.index('data-testid="groups"')]
    assert "李雷" in follows and "韩梅梅" in follows and "ch-spring" in follows
    assert "VIP" in follows and "上海" in follows
    assert "粉丝群" in html
    timeline = html[html.index('data-testid="timeline"') :]
    # newest first, with readable labels
    assert timeline.index("Remark or tags edited") < timeline.index("Added as a friend")
    assert "state: ch-spring" in timeline


@pytest.mark.django_db
def test_timeline_shows_unknown_kinds_raw(world: World, seeded: Seed) -> None:
    customer = seeded.customers["c4"]
    services.timeline_add(
        corp=world.corp_a, customer=customer, kind="welcome_sent", at=datetime.now(SHANGHAI)
    )
    client = client_for(world.alice)
    client.cookies["django_language"] = "en"
    html = client.get(f"/customers/{customer.pk}/").content.decode()
    assert "welcome_sent" in html and "Deleted the member" in html and "No member left" in html


@pytest.mark.django_db
def test_members_page_counts_live_customers(world: World, seeded: Seed) -> None:
    html = client_for(world.victor).get("/customers/members/").content.decode()
    counts = dict(re.findall(r'data-userid="([^"]+)".*?data-testid="live-count">(\d+)<', html, re.S))
    assert counts == {"lilei": "2", "hanmm": "2", "wang": "1"}
    assert "bmember" not in html


@pytest.mark.django_db
def test_duplicates_report_lists_customers_of_several_members(world: World, seeded: Seed) -> None:
    html = client_for(world.alice).get("/customers/duplicates/").content.decode()
    assert re.findall(r'data-customer="([^"]+)"', html) == ["wmZHANG"]
    row = html[html.index('data-customer="wmZHANG"') :].split("</tr>")[0]
    assert "李雷" in row and "韩梅梅" in row


@pytest.mark.django_db
def test_another_corp_sees_none_of_it(world: World, seeded: Seed) -> None:
    charlie = client_for(world.charlie)
    assert listed(charlie, "status=all") == ["wmBETA"]
    assert charlie.get(f"/customers/{seeded.customers['c1'].pk}/").status_code == 404
    body = streamed(charlie.get("/customers/export.csv?status=all"))
    assert "wmBETA" in body and "wmZHANG" not in body
    html = (
        charlie.get("/customers/members/").content.decode()
        + charlie.get("/customers/duplicates/").content.decode()
    )
    assert "李雷" not in html and "张三" not in html
