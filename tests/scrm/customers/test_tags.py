"""Two-way tags and bulk marking against the WeCom sandbox over real HTTP (no mocked client)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from scrm.callbacks.apply import inbox_process
from scrm.callbacks.models import InboxEvent
from scrm.core.redis import get_redis
from scrm.customers import tag_services
from scrm.customers.models import BulkTagJob, Customer, Follow, Member, Tag, TagGroup, TimelineEntry
from scrm.customers.services import customer_apply_contact
from scrm.customers.tag_services import TagChangeRefused
from scrm.sync.services import tags_refresh
from scrm.tenancy.models import Corp
from tests.conftest import World, client_for
from tests.scrm.callbacks.helpers import fixture_xml, post_callback
from wecom.errors import RateLimited
from wecom.sandbox.testing import SandboxServer, sandbox, sandbox_server  # noqa: F401  (fixtures)

MARK = "externalcontact/mark_tag"
WRITES = ("externalcontact/add_corp_tag", "externalcontact/edit_corp_tag", "externalcontact/del_corp_tag")


def forget_rate_limits(corp: Corp) -> None:
    """Our limiter's windows and breakers for the corp live in Redis across tests: start clean."""
    redis = get_redis()
    for key in redis.scan_iter(f"*rl:{{{corp.corp_id}:*"):
        redis.delete(key)


@pytest.fixture
def wecom(world: World, sandbox: SandboxServer) -> Iterator[SandboxServer]:  # noqa: F811  (fixture by name)
    """Corp A registered in the sandbox with its own CorpID, secret and AgentId, and pointed at it."""
    corp = world.corp_a
    sandbox.register_corp(corp.corp_id, secret=corp.secret, agent_id=corp.agent_id, name=corp.name)
    corp.api_base = sandbox.api_base
    corp.save(update_fields=["api_base"])
    forget_rate_limits(corp)
    yield sandbox
    forget_rate_limits(corp)


def calls(server: SandboxServer, corp: Corp, api: str, *, ok_only: bool = False) -> int:
    records = server.control("GET", "/sandbox/audit", corp=corp.corp_id, kind="api", name=api, limit=100000)
    return sum(1 for r in records["records"] if not ok_only or r["code"] == 0)


def wecom_tags(server: SandboxServer, corp: Corp) -> dict[str, dict[str, Any]]:
    """WeCom's own view (get_corp_tag_list through the sandbox's API): id -> tag with group and order."""
    token = server.token(corp.corp_id, corp.secret)
    answer = server.api("POST", "externalcontact/get_corp_tag_list", token, {})
    assert answer["errcode"] == 0, answer
    return {
        t["id"]: {**t, "group_id": g["group_id"], "group_name": g["group_name"], "group_order": g["order"]}
        for g in answer["tag_group"]
        for t in g["tag"]
    }


def wecom_follow_tags(server: SandboxServer, corp: Corp) -> dict[tuple[str, str], set[str]]:
    return {
        (f["userid"], c["external_userid"]): set(f["tags"])
        for c in server.data(corp.corp_id, "customers")
        for f in c["follows"]
    }


def pull_customers(server: SandboxServer, corp: Corp) -> None:
    """Our copy of the sandbox's customers and follows (what the full sync will do)."""
    tag_services.tags_resync(corp=corp)
    for c in server.data(corp.corp_id, "customers"):
        follows = [
            {"userid": f["userid"], "tags": [{"tag_id": t, "type": 1} for t in f["tags"]]}
            for f in c["follows"]
            if not f["deleted_by_customer"]
        ]
        contact = {"external_userid": c["external_userid"], "name": c["name"]}
        customer_apply_contact(corp=corp, contact=contact, follow_users=follows)


def shown(corp: Corp, group: TagGroup | None = None) -> list[str]:
    """Names in display order (WeCom: larger order first)."""
    if group is None:
        return list(TagGroup.objects.filter(corp=corp, deleted=False).values_list("name", flat=True))
    return list(Tag.objects.filter(corp=corp, group=group, deleted=False).values_list("name", flat=True))


# -- tag groups and tags: dashboard → WeCom → local -----------------------------------------------


@pytest.mark.django_db
def test_create_rename_reorder_and_delete_reach_wecom_then_local(world: World, wecom: SandboxServer) -> None:
    corp = world.corp_a
    group = tag_services.tag_group_create(corp=corp, name="客户等级", tag_names=["高", "中", "低"])
    assert group.created_by_us and not group.deleted
    tags = {t.name: t for t in Tag.objects.filter(corp=corp, group=group)}
    assert set(tags) == {"高", "中", "低"} and all(t.created_by_us for t in tags.values())
    remote = wecom_tags(wecom, corp)
    assert {remote[t.tag_id]["name"] for t in tags.values()} == {"高", "中", "低"}
    assert {r["group_name"] for r in remote.values()} == {"客户等级"}
    created = wecom.data(corp.corp_id, "tags")
    assert created[0]["creator"] == corp.agent_id  # made by our app, so ours to edit

    [vip] = tag_services.tag_create(corp=corp, group=group, names=["VIP"])
    assert wecom_tags(wecom, corp)[vip.tag_id]["name"] == "VIP"

    renamed = tag_services.tag_edit(corp=corp, tag=tags["高"], name="高价值")
    assert renamed.name == "高价值" and wecom_tags(wecom, corp)[renamed.tag_id]["name"] == "高价值"
    tag_services.tag_group_edit(corp=corp, group=group, name="价值分层")
    assert {r["group_name"] for r in wecom_tags(wecom, corp).values()} == {"价值分层"}
    group.refresh_from_db()
    assert group.name == "价值分层"

    # Reorder: the bottom tag moves up one place; WeCom's orders agree with what we show
    before = shown(corp, group)
    bottom = Tag.objects.get(corp=corp, group=group, name=before[-1])
    tag_services.tag_move(corp=corp, item=bottom, direction="up")
    after = shown(corp, group)
    assert after == [*before[:-2], before[-1], before[-2]]
    remote = wecom_tags(wecom, corp)
    by_remote_order = sorted(
        Tag.objects.filter(corp=corp, group=group, deleted=False), key=lambda t: -remote[t.tag_id]["order"]
    )
    assert [t.name for t in by_remote_order] == after
    assert len({remote[t.tag_id]["order"] for t in by_remote_order}) == len(after)  # no ties left
    tag_services.tag_move(corp=corp, item=Tag.objects.get(corp=corp, name=after[0]), direction="up")
    assert shown(corp, group) == after  # already first: nothing changes

    # Deleting a tag removes it from WeCom and from every follow and customer here
    member = Member.objects.create(corp=corp, userid="zhangsan")
    customer = Customer.objects.create(corp=corp, external_userid="wmC1", tag_ids=[vip.pk])
    follow = Follow.objects.create(corp=corp, customer=customer, member=member, tag_ids=[vip.pk])
    tag_services.tag_delete(corp=corp, tag=vip)
    assert vip.tag_id not in wecom_tags(wecom, corp)
    assert Tag.objects.get(pk=vip.pk).deleted
    follow.refresh_from_db()
    customer.refresh_from_db()
    assert follow.tag_ids == [] and customer.tag_ids == []

    tag_services.tag_group_delete(corp=corp, group=group)
    assert wecom_tags(wecom, corp) == {}
    assert TagGroup.objects.get(pk=group.pk).deleted
    assert not Tag.objects.filter(corp=corp, deleted=False).exists()


@pytest.mark.django_db
def test_deleting_the_last_tag_of_a_group_deletes_the_group(world: World, wecom: SandboxServer) -> None:
    corp = world.corp_a
    group = tag_services.tag_group_create(corp=corp, name="临时", tag_names=["唯一"])
    tag_services.tag_delete(corp=corp, tag=Tag.objects.get(corp=corp, group=group))
    assert wecom.data(corp.corp_id, "tags") == []
    assert TagGroup.objects.get(pk=group.pk).deleted


@pytest.mark.django_db
def test_groups_move_around_console_groups_without_touching_them(world: World, wecom: SandboxServer) -> None:
    corp = world.corp_a
    wecom.seed(corp.corp_id, members=1, customers=0, tag_groups=[{"name": "控制台组", "tags": ["甲"]}])
    tag_services.tags_resync(corp=corp)
    console = TagGroup.objects.get(corp=corp, name="控制台组")
    tag_services.tag_group_create(corp=corp, name="A组", tag_names=["a"])
    tag_services.tag_group_create(corp=corp, name="B组", tag_names=["b"])
    before = shown(corp)
    i = before.index("B组")
    if i == 0:  # make B movable: put it last first
        tag_services.tag_move(corp=corp, item=TagGroup.objects.get(corp=corp, name="B组"), direction="down")
        before = shown(corp)
        i = before.index("B组")
    tag_services.tag_move(corp=corp, item=TagGroup.objects.get(corp=corp, name="B组"), direction="up")
    after = shown(corp)
    assert after[i - 1] == "B组" and after[i] == before[i - 1]
    remote = {g["group_name"]: g["group_order"] for g in wecom_tags(wecom, corp).values()}
    assert remote["控制台组"] == console.order  # never edited
    # WeCom shows what we show: strictly by order, larger first
    assert sorted(after, key=lambda name: -remote[name]) == after
    assert len({remote["A组"], remote["B组"]}) == 2


@pytest.mark.django_db
def test_console_tags_are_refused_before_any_call(world: World, wecom: SandboxServer) -> None:
    corp = world.corp_a
    wecom.seed(corp.corp_id, members=1, customers=0, tag_groups=[{"name": "来源", "tags": ["展会", "官网"]}])
    tag_services.tags_resync(corp=corp)
    group = TagGroup.objects.get(corp=corp, name="来源")
    tag = Tag.objects.get(corp=corp, name="展会")
    assert not group.created_by_us and not tag.created_by_us
    attempts = [
        lambda: tag_services.tag_edit(corp=corp, tag=tag, name="展会2"),
        lambda: tag_services.tag_delete(corp=corp, tag=tag),
        lambda: tag_services.tag_move(corp=corp, item=tag, direction="down"),
        lambda: tag_services.tag_group_edit(corp=corp, group=group, name="渠道"),
        lambda: tag_services.tag_group_delete(corp=corp, group=group),
        lambda: tag_services.tag_create(corp=corp, group=group, names=["地推"]),
    ]
    for attempt in attempts:
        with pytest.raises(TagChangeRefused) as refused, translation.override("en"):
            attempt()
        assert "WeCom admin console" in refused.value.message
    assert sum(calls(wecom, corp, api) for api in WRITES) == 0
    assert {t["name"] for g in wecom.data(corp.corp_id, "tags") for t in g["tags"]} == {"展会", "官网"}


@pytest.mark.django_db
def test_names_and_the_3000_tag_cap_are_checked_before_calling(world: World, wecom: SandboxServer) -> None:
    corp = world.corp_a
    with pytest.raises(TagChangeRefused, match="30"):
        tag_services.tag_group_create(corp=corp, name="x" * 31, tag_names=["a"])
    with pytest.raises(TagChangeRefused):
        tag_services.tag_group_create(corp=corp, name="组", tag_names=["a", "a"])
    with pytest.raises(TagChangeRefused):
        tag_services.tag_group_create(corp=corp, name="组", tag_names=[" ", ""])
    # 30 characters is fine for WeCom too
    group = tag_services.tag_group_create(corp=corp, name="g" * 30, tag_names=["t" * 30])
    with pytest.raises(TagChangeRefused):
        tag_services.tag_create(corp=corp, group=group, names=["t" * 30])  # already in the group
    with pytest.raises(TagChangeRefused):
        tag_services.tag_group_create(corp=corp, name="g" * 30, tag_names=["other"])  # group name taken
    assert calls(wecom, corp, "externalcontact/add_corp_tag") == 1

    filler = TagGroup.objects.create(corp=corp, group_id="filler", name="filler", created_by_us=True)
    Tag.objects.bulk_create(
        Tag(corp=corp, group=filler, tag_id=f"f{i}", name=f"f{i}", created_by_us=True) for i in range(2998)
    )
    assert Tag.objects.filter(corp=corp, deleted=False).count() == 2999
    with pytest.raises(TagChangeRefused, match="3000"):
        tag_services.tag_group_create(corp=corp, name="多", tag_names=["一", "二"])
    with pytest.raises(TagChangeRefused, match="3000"):
        tag_services.tag_create(corp=corp, group=group, names=["一", "二"])
    assert calls(wecom, corp, "externalcontact/add_corp_tag") == 1
    [last] = tag_services.tag_create(corp=corp, group=group, names=["第三千"])
    assert last.tag_id in wecom_tags(wecom, corp)


def test_order_plan_keeps_console_positions_and_refuses_when_there_is_no_room() -> None:
    def item(pk: int, order: int, ours: bool) -> Tag:
        return Tag(pk=pk, name=f"t{pk}", order=order, created_by_us=ours)

    # Ours around a console tag of order 3: the top one must go above 3, the bottom one below it
    plan = tag_services._plan_orders([item(1, 0, True), item(2, 3, False), item(3, 0, True)])
    assert plan[1] > 3 and 2 not in plan and 3 not in plan  # bottom keeps 0, which already fits
    # Already in order: nothing to edit
    assert tag_services._plan_orders([item(1, 9, True), item(2, 3, False), item(3, 1, True)]) == {}
    # Two console tags of the same order leave no room between them
    with pytest.raises(TagChangeRefused):
        tag_services._plan_orders([item(1, 5, False), item(2, 0, True), item(3, 5, False)])


# -- console-side changes: callback → inbox → refresh ---------------------------------------------


def deliver(corp: Corp, name: str, **fields: str) -> InboxEvent:
    before = set(InboxEvent.objects.values_list("pk", flat=True))
    assert post_callback(Client(), corp, fixture_xml(name, corp, **fields)).status_code == 200
    row = InboxEvent.objects.exclude(pk__in=before).get()
    inbox_process(event_id=row.pk)
    return row


@pytest.mark.django_db
def test_console_changes_arrive_as_callbacks_and_refresh_from_wecom(
    world: World, wecom: SandboxServer
) -> None:
    corp = world.corp_a
    made = wecom.world(corp.corp_id, "tag_edit", op="create", group_name="活动", tags=["双十一"])
    group_id, tag_id = made["events"][0]["id"], made["events"][1]["id"]
    deliver(corp, "change_external_tag.create", Id=group_id, TagType="tag_group")
    tags_refresh(corp=corp, kind="group", wecom_id=group_id)
    tag = Tag.objects.get(corp=corp, tag_id=tag_id)
    assert tag.name == "双十一" and tag.group.name == "活动" and not tag.created_by_us

    wecom.world(corp.corp_id, "tag_edit", op="update", id=tag_id, name="双十二")
    deliver(corp, "change_external_tag.update", Id=tag_id, TagType="tag", CreateTime="1716790500")
    tags_refresh(corp=corp, kind="tag", wecom_id=tag_id)
    tag.refresh_from_db()
    assert tag.name == "双十二"

    wecom.world(corp.corp_id, "tag_edit", op="delete", id=tag_id)
    deliver(corp, "change_external_tag.delete", Id=tag_id)
    tag.refresh_from_db()
    assert tag.deleted
    # And an app-made tag renamed in the console keeps being ours
    ours = tag_services.tag_group_create(corp=corp, name="我们的", tag_names=["原名"])
    mine = Tag.objects.get(corp=corp, group=ours)
    wecom.world(corp.corp_id, "tag_edit", op="update", id=mine.tag_id, name="控制台改名")
    deliver(corp, "change_external_tag.update", Id=mine.tag_id, TagType="tag", CreateTime="1716790900")
    tags_refresh(corp=corp, kind="tag", wecom_id=mine.tag_id)
    mine.refresh_from_db()
    assert mine.name == "控制台改名" and mine.created_by_us


# -- marking one follow ---------------------------------------------------------------------------


@pytest.fixture
def seeded(world: World, wecom: SandboxServer) -> SandboxServer:
    wecom.seed(world.corp_a.corp_id, members=3, customers=24, follows=30, tag_groups=0, seed=5)
    pull_customers(wecom, world.corp_a)
    tag_services.tag_group_create(corp=world.corp_a, name="意向", tag_names=["高意向", "低意向", "已成交"])
    return wecom


def tag(corp: Corp, name: str) -> Tag:
    return Tag.objects.get(corp=corp, name=name, deleted=False)


@pytest.mark.django_db
def test_mark_and_unmark_one_follow_records_who_did_it(world: World, seeded: SandboxServer) -> None:
    corp = world.corp_a
    follow = Follow.objects.select_related("member", "customer").filter(corp=corp).order_by("pk").first()
    assert follow is not None
    key = (follow.member.userid, follow.customer.external_userid)
    high, low = tag(corp, "高意向"), tag(corp, "低意向")
    assert tag_services.follow_tags_change(
        corp=corp, follow=follow, add=[high, low], remove=[], user=world.bob
    )
    assert wecom_follow_tags(seeded, corp)[key] == {high.tag_id, low.tag_id}
    follow.refresh_from_db()
    assert follow.tag_ids == sorted([high.pk, low.pk])
    assert set(Customer.objects.get(pk=follow.customer_id).tag_ids) >= {high.pk, low.pk}
    entry = TimelineEntry.objects.get(customer=follow.customer, kind="tags_changed")
    assert entry.data["by"] == "bob" and sorted(entry.data["added"]) == sorted(["高意向", "低意向"])
    assert entry.member_id == follow.member_id

    assert tag_services.follow_tags_change(corp=corp, follow=follow, add=[], remove=[high], user=world.bob)
    assert wecom_follow_tags(seeded, corp)[key] == {low.tag_id}
    follow.refresh_from_db()
    assert follow.tag_ids == [low.pk]
    # Asking for what is already true costs no call
    before = calls(seeded, corp, MARK)
    assert not tag_services.follow_tags_change(
        corp=corp, follow=follow, add=[low], remove=[high], user=world.bob
    )
    assert calls(seeded, corp, MARK) == before


@pytest.mark.django_db
def test_follow_tags_view_answers_the_partial_and_shows_wecom_errors(
    world: World, seeded: SandboxServer
) -> None:
    corp = world.corp_a
    follow = Follow.objects.filter(corp=corp).order_by("pk").first()
    assert follow is not None
    high = tag(corp, "高意向")
    url = f"/tags/follow/{follow.pk}/"
    response = client_for(world.bob).post(url, {"add": [high.pk]}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="follow-tags"' in html and "高意向" in html and 'name="remove"' in html
    follow.refresh_from_db()
    assert follow.tag_ids == [high.pk]
    assert client_for(world.victor).post(url, {"add": [high.pk]}).status_code == 403
    # The tag disappears from WeCom behind our back: 40068 is shown in plain words, and tags are re-read
    seeded.world(corp.corp_id, "tag_edit", op="delete", id=tag(corp, "已成交").tag_id)
    gone = tag(corp, "已成交")
    response = client_for(world.bob).post(url, {"add": [gone.pk]}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "40068" in html and 'role="alert"' in html
    assert Tag.objects.get(pk=gone.pk).deleted
    # Another corp's tag pk is refused
    other = TagGroup.objects.create(corp=world.corp_b, group_id="gB", name="B")
    b_tag = Tag.objects.create(corp=world.corp_b, group=other, tag_id="tB", name="B标签")
    response = client_for(world.bob).post(url, {"add": [b_tag.pk]}, HTTP_HX_REQUEST="true")
    assert "B标签" not in response.content.decode() and 'role="alert"' in response.content.decode()


def render_follow_tags(world: World, user_name: str, follow: Follow) -> str:
    """The partial as a page including it renders it: only `follow` given, the request's corp and role."""
    from django.contrib.auth.models import User
    from django.template.loader import render_to_string
    from django.test import RequestFactory

    from scrm.tenancy.models import Membership

    request = RequestFactory().get("/customers/1/")
    request.user = User.objects.get(username=user_name)
    request.membership = Membership.objects.get(user=request.user, corp=world.corp_a)  # type: ignore[attr-defined]
    request.corp = world.corp_a  # type: ignore[attr-defined]
    return render_to_string("customers/_follow_tags.html", {"follow": follow}, request=request)


@pytest.mark.django_db
def test_follow_tags_partial_is_self_contained(world: World, seeded: SandboxServer) -> None:
    corp = world.corp_a
    follow = Follow.objects.filter(corp=corp).order_by("pk").first()
    assert follow is not None
    high, low = tag(corp, "高意向"), tag(corp, "低意向")
    tag_services.follow_tags_change(corp=corp, follow=follow, add=[high], remove=[], user=world.bob)
    follow.refresh_from_db()
    html = render_follow_tags(world, "bob", follow)
    assert html.count('data-testid="follow-tag"') == 1 and "高意向" in html
    assert f'<option value="{low.pk}">低意向</option>' in html  # offered: not on the follow yet
    assert f'<option value="{high.pk}">' not in html  # already on it
    assert f'name="remove" value="{high.pk}"' in html and f"/tags/follow/{follow.pk}/" in html
    html = render_follow_tags(world, "victor", follow)
    assert "高意向" in html and 'name="remove"' not in html and 'name="add"' not in html


# -- bulk jobs ------------------------------------------------------------------------------------


def start_job(world: World, data: dict[str, Any]) -> BulkTagJob:
    response = client_for(world.bob).post("/tags/bulk/", data)
    assert response.status_code == 302, response.content
    job = BulkTagJob.objects.get(corp=world.corp_a)
    assert response["Location"] == f"/tags/jobs/{job.pk}/"
    return job


def selected_follows(world: World, member: Member) -> list[Follow]:
    """Live follows of the customers member follows (what members=<member> selects)."""
    customers = Customer.objects.filter(corp=world.corp_a, member_ids__contains=[member.pk])
    return list(
        Follow.objects.filter(corp=world.corp_a, customer__in=customers, status="active")
        .select_related("member", "customer")
        .order_by("pk")
    )


@pytest.mark.django_db
def test_bulk_job_end_to_end_with_a_restart_in_the_middle(
    world: World, seeded: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    corp = world.corp_a
    monkeypatch.setattr(tag_services, "CHUNK", 4)
    member = Member.objects.filter(corp=corp).order_by("userid").first()
    assert member is not None
    high = tag(corp, "高意向")
    expected = selected_follows(world, member)
    assert len(expected) >= 9
    job = start_job(world, {"members": [str(member.pk)], "status": "active", "add": [high.pk]})
    assert job.status == BulkTagJob.Status.QUEUED and job.filter_params == {
        "members": [str(member.pk)],
        "status": ["active"],
    }

    # First run stops after 7 follows (a worker slice); progress is on the row
    assert tag_services.tag_bulk_job_run(job_id=job.pk, max_follows=7) is True
    job.refresh_from_db()
    assert job.status == BulkTagJob.Status.RUNNING and job.total == len(expected)
    assert (job.done, job.failed, job.cursor) == (7, 0, expected[6].pk)
    assert calls(seeded, corp, MARK) == 7
    page = client_for(world.victor).get(f"/tags/jobs/{job.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and f"7 of {len(expected)} done" in page.content.decode()
    assert 'hx-trigger="every 2s"' in page.content.decode()

    # The next run resumes after the cursor: every follow is marked exactly once
    assert tag_services.tag_bulk_job_run(job_id=job.pk) is False
    job.refresh_from_db()
    assert job.status == BulkTagJob.Status.DONE and job.done == len(expected) and job.failed == 0
    assert calls(seeded, corp, MARK) == len(expected)
    remote = wecom_follow_tags(seeded, corp)
    marked = {k for k, v in remote.items() if high.tag_id in v}
    assert marked == {(f.member.userid, f.customer.external_userid) for f in expected}
    assert all(high.pk in f.tag_ids for f in Follow.objects.filter(pk__in=[f.pk for f in expected]))
    assert TimelineEntry.objects.filter(corp=corp, kind="tags_changed", data__job=job.pk).count() == len(
        expected
    )
    # A late duplicate delivery of the task does nothing
    assert tag_services.tag_bulk_job_run(job_id=job.pk) is False
    assert calls(seeded, corp, MARK) == len(expected)
    html = client_for(world.victor).get(f"/tags/jobs/{job.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "every 2s" not in html and f"{len(expected)} of {len(expected)} done" in html


@pytest.mark.django_db
def test_a_worker_dying_mid_chunk_repeats_at_most_the_unrecorded_part(
    world: World, seeded: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    corp = world.corp_a
    monkeypatch.setattr(tag_services, "CHUNK", 3)
    job = start_job(world, {"add": [tag(corp, "低意向").pk]})
    real_mark = tag_services._mark
    count = {"n": 0}

    def dying(**kwargs: Any) -> None:
        count["n"] += 1
        if count["n"] == 5:
            raise SystemExit("worker lost")
        real_mark(**kwargs)

    monkeypatch.setattr(tag_services, "_mark", dying)
    with pytest.raises(SystemExit):
        tag_services.tag_bulk_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.done == 3  # the last chunk recorded; the 4th follow was marked but not yet recorded
    monkeypatch.setattr(tag_services, "_mark", real_mark)
    assert tag_services.tag_bulk_job_run(job_id=job.pk) is False
    job.refresh_from_db()
    live = Follow.objects.filter(corp=corp, status="active").count()
    assert job.status == BulkTagJob.Status.DONE and job.done == job.total == live
    assert calls(seeded, corp, MARK) == live + 1  # only the unrecorded 4th one twice


@pytest.mark.django_db
def test_bulk_job_waits_out_rate_limits_and_skips_on_40068(
    world: World, seeded: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    corp = world.corp_a
    seeded.limits(corp.corp_id, api=MARK, per_minute=5)
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # the window passes: WeCom's (virtual clock) and our breaker's
        slept.append(seconds)
        seeded.limits(corp.corp_id, api=MARK, per_minute=10_000)
        seeded.advance(61)
        forget_rate_limits(corp)

    monkeypatch.setattr(tag_services, "sleep", sleep)
    high, done = tag(corp, "高意向"), tag(corp, "已成交")
    job = start_job(world, {"add": [high.pk, done.pk]})
    # Before it starts, "已成交" is deleted in the console (no callback reaches us)
    tag_services.tag_bulk_job_run(job_id=job.pk, max_follows=6)
    seeded.world(corp.corp_id, "tag_edit", op="delete", id=done.tag_id)
    assert tag_services.tag_bulk_job_run(job_id=job.pk) is False
    job.refresh_from_db()
    live = Follow.objects.filter(corp=corp, status="active").count()
    assert len(slept) == 1 and 0 < slept[0] <= 61
    assert job.status == BulkTagJob.Status.DONE and job.total == live
    assert job.failed == 1 and job.done == live - 1
    assert job.errors["40068"]["count"] == 1
    assert Tag.objects.get(pk=done.pk).deleted  # re-read from WeCom
    assert calls(seeded, corp, MARK, ok_only=True) == live - 1
    assert sum(high.tag_id in v for v in wecom_follow_tags(seeded, corp).values()) == live - 1  # one skipped
    page = client_for(world.bob).get(f"/tags/jobs/{job.pk}/").content.decode()
    assert "40068" in page and 'data-testid="job-error"' in page


@pytest.mark.django_db
def test_a_long_rate_limit_ends_the_run_and_the_task_resumes_later(
    world: World, seeded: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    corp = world.corp_a
    seeded.limits(corp.corp_id, api=MARK, per_minute=5)
    monkeypatch.setattr(tag_services, "MAX_SLEEP_S", 0.0)
    job = start_job(world, {"add": [tag(corp, "高意向").pk]})
    with pytest.raises(RateLimited) as limited:
        tag_services.tag_bulk_job_run(job_id=job.pk)
    assert limited.value.retry_after is not None and limited.value.retry_after > 0
    job.refresh_from_db()
    assert job.status == BulkTagJob.Status.RUNNING and job.done == 5 and job.failed == 0


@pytest.mark.django_db
def test_the_task_runs_a_slice_and_queues_the_rest(
    world: World, seeded: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks import tags as tag_tasks

    monkeypatch.setattr(tag_tasks, "SLICE_FOLLOWS", 5)
    job = start_job(world, {"add": [tag(world.corp_a, "高意向").pk]})
    queued = get_redis().llen("bulk")
    tag_tasks.run_bulk_tag_job.apply(args=(job.pk,))
    job.refresh_from_db()
    assert job.done == 5 and job.status == BulkTagJob.Status.RUNNING
    assert get_redis().llen("bulk") == queued + 1  # the next slice is on the bulk queue


@pytest.mark.django_db
def test_cancel_stops_the_job(world: World, seeded: SandboxServer) -> None:
    corp = world.corp_a
    job = start_job(world, {"add": [tag(corp, "高意向").pk]})
    tag_services.tag_bulk_job_run(job_id=job.pk, max_follows=3)
    assert client_for(world.victor).post(f"/tags/jobs/{job.pk}/cancel/").status_code == 403
    assert client_for(world.bob).post(f"/tags/jobs/{job.pk}/cancel/").status_code == 302
    assert tag_services.tag_bulk_job_run(job_id=job.pk) is False
    job.refresh_from_db()
    assert job.status == BulkTagJob.Status.CANCELLED and job.done == 3
    assert calls(seeded, corp, MARK) == 3


@pytest.mark.django_db
def test_bulk_form_refusals_are_plain(world: World, seeded: SandboxServer) -> None:
    bob = client_for(world.bob)
    response = bob.post(
        "/tags/bulk/", {"q": "张", "added_from": "not a date", "add": [tag(world.corp_a, "高意向").pk]}
    )
    assert response.status_code == 302 and response["Location"].startswith("/customers/?")
    assert "q=" in response["Location"]
    assert bob.post("/tags/bulk/", {"status": "active"}).status_code == 302
    assert not BulkTagJob.objects.exists()
    high = tag(world.corp_a, "高意向")
    response = bob.post(
        "/tags/bulk/", {"add": [high.pk], "remove": [high.pk]}, follow=True, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "added and removed at once" in response.content.decode()
    assert not BulkTagJob.objects.exists()
    assert client_for(world.victor).post("/tags/bulk/", {"add": [high.pk]}).status_code == 403


@pytest.mark.django_db
def test_bulk_form_replays_the_list_filter(world: World, seeded: SandboxServer) -> None:
    from django.template.loader import render_to_string
    from django.test import RequestFactory

    from scrm.customers.selectors import tag_groups_for_picker
    from scrm.tenancy.models import Membership

    request = RequestFactory().get(
        "/customers/", {"q": "张", "tags_any": ["1", "2"], "page": "3", "add": "9"}
    )
    request.user = world.bob
    request.membership = Membership.objects.get(user=world.bob, corp=world.corp_a)  # type: ignore[attr-defined]
    request.corp = world.corp_a  # type: ignore[attr-defined]
    context = {"tag_groups": tag_groups_for_picker(corp=world.corp_a)}
    html = render_to_string("customers/_bulk_tag_form.html", context, request=request)
    assert '<input type="hidden" name="q" value="张">' in html
    assert html.count('<input type="hidden" name="tags_any"') == 2
    assert 'name="page"' not in html and '<input type="hidden" name="add"' not in html
    assert 'action="/tags/bulk/"' in html and "高意向" in html
    request.membership = Membership.objects.get(user=world.victor, corp=world.corp_a)  # type: ignore[attr-defined]
    assert "bulk-tag-form" not in render_to_string("customers/_bulk_tag_form.html", context, request=request)


# -- corp isolation -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_corp_b_can_neither_see_nor_touch_corp_a_tags(world: World, seeded: SandboxServer) -> None:
    corp_a, corp_b = world.corp_a, world.corp_b
    high = tag(corp_a, "高意向")
    group = high.group
    charlie = client_for(world.charlie)
    assert "高意向" not in charlie.get("/tags/").content.decode()
    assert charlie.post(f"/tags/{high.pk}/rename/", {"name": "偷改"}).status_code == 404
    assert charlie.post(f"/tags/groups/{group.pk}/delete/").status_code == 404
    assert charlie.get("/api/v1/tags/").json()["results"] == []
    assert (
        charlie.patch(f"/api/v1/tags/{high.pk}/", {"name": "x"}, content_type="application/json").status_code
        == 404
    )
    with pytest.raises(Tag.DoesNotExist):
        tag_services.tag_edit(corp=corp_b, tag=high, name="偷改")
    follow = Follow.objects.filter(corp=corp_a).first()
    assert follow is not None
    with pytest.raises(Follow.DoesNotExist):
        tag_services.follow_tags_change(corp=corp_b, follow=follow, add=[high], remove=[], user=world.charlie)
    # A bulk job of corp B never reaches corp A's follows, even naming corp A's tag in its filter
    response = charlie.post("/tags/bulk/", {"tags_any": [str(high.pk)], "add": [high.pk]})
    assert response.status_code == 302 and not BulkTagJob.objects.exists()
    b_group = TagGroup.objects.create(corp=corp_b, group_id="gB", name="B", created_by_us=True)
    b_tag = Tag.objects.create(corp=corp_b, group=b_group, tag_id="tB", name="B", created_by_us=True)
    job = tag_services.tag_bulk_job_create(
        corp=corp_b, user=world.charlie, filter_params={}, add=[b_tag], remove=[]
    )
    assert tag_services.tag_bulk_job_run(job_id=job.pk) is False
    job.refresh_from_db()
    assert job.total == 0 and job.status == BulkTagJob.Status.DONE
    assert calls(seeded, corp_a, MARK) == 0
    assert high.name == Tag.objects.get(pk=high.pk).name


# -- dashboard and API ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_tag_page_roles_and_form_errors(world: World, wecom: SandboxServer) -> None:
    alice, bob, victor = client_for(world.alice), client_for(world.bob), client_for(world.victor)
    response = alice.post("/tags/groups/new/", {"name": "会员", "tags": "金卡\n银卡, 铜卡"})
    assert response.status_code == 302
    assert {t["name"] for g in wecom.data(world.corp_a.corp_id, "tags") for t in g["tags"]} == {
        "金卡",
        "银卡",
        "铜卡",
    }
    assert bob.post("/tags/groups/new/", {"name": "x", "tags": "y"}).status_code == 403
    page = victor.get("/tags/").content.decode()
    assert "金卡" in page and 'data-testid="group-create-form"' not in page and "tag-rename" not in page
    page = alice.get("/tags/").content.decode()
    assert 'data-testid="group-create-form"' in page and "tag-rename" in page
    response = alice.post("/tags/groups/new/", {"name": "会员", "tags": "钻石"})
    assert response.status_code == 400 and "会员" in response.content.decode()
    assert calls(wecom, world.corp_a, "externalcontact/add_corp_tag") == 1
    # WeCom's own refusal is shown in plain words with its errcode: a console tag took the name
    gold = tag(world.corp_a, "金卡")
    wecom.world(world.corp_a.corp_id, "tag_edit", op="create", group_id=gold.group.group_id, tags=["黑卡"])
    response = alice.post(f"/tags/{gold.pk}/rename/", {"name": "黑卡"}, follow=True)
    assert "40071" in response.content.decode()
    assert Tag.objects.get(pk=gold.pk).name == "金卡"


@pytest.mark.django_db
def test_api_creates_renames_reorders_and_deletes(world: World, wecom: SandboxServer) -> None:
    alice, bob = client_for(world.alice), client_for(world.bob)
    response = alice.post(
        "/api/v1/tag-groups/", {"name": "行业", "tags": ["教育", "金融"]}, content_type="application/json"
    )
    assert response.status_code == 201, response.json()
    group = response.json()
    assert {t["name"] for t in group["tags"]} == {"教育", "金融"}
    response = alice.post(
        "/api/v1/tags/", {"group": group["id"], "name": "医疗", "order": 9}, content_type="application/json"
    )
    assert response.status_code == 201
    medical = response.json()
    assert wecom_tags(wecom, world.corp_a)[medical["tag_id"]]["order"] == 9
    response = alice.patch(
        f"/api/v1/tags/{medical['id']}/", {"name": "医药", "order": 3}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["name"] == "医药"
    remote = wecom_tags(wecom, world.corp_a)[medical["tag_id"]]
    assert (remote["name"], remote["order"]) == ("医药", 3)
    assert (
        bob.patch(
            f"/api/v1/tags/{medical['id']}/", {"name": "x"}, content_type="application/json"
        ).status_code
        == 403
    )
    assert len(bob.get("/api/v1/tags/").json()["results"]) == 3
    response = alice.patch(
        f"/api/v1/tag-groups/{group['id']}/", {"order": 5}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["order"] == 5
    assert alice.delete(f"/api/v1/tags/{medical['id']}/").status_code == 204
    assert medical["tag_id"] not in wecom_tags(wecom, world.corp_a)
    response = alice.post(
        "/api/v1/tag-groups/", {"name": "y" * 31, "tags": ["a"]}, content_type="application/json"
    )
    assert response.status_code == 400
    wecom.faults(world.corp_a.corp_id, rate=1.0, kinds=["busy"], apis=["externalcontact/del_corp_tag"])
    response = alice.delete(f"/api/v1/tag-groups/{group['id']}/")
    assert response.status_code == 503 and response.json()["errcode"] == -1
    assert not TagGroup.objects.get(pk=group["id"]).deleted


@pytest.mark.django_db
def test_api_bulk_job_create_and_status(world: World, seeded: SandboxServer) -> None:
    bob = client_for(world.bob)
    high = tag(world.corp_a, "高意向")
    response = bob.post(
        "/api/v1/tag-jobs/",
        {"filters": {"status": "active", "tags_none": [high.pk]}, "add": [high.pk]},
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    job = response.json()
    assert job["status"] == "queued" and job["filters"] == {"status": ["active"], "tags_none": [str(high.pk)]}
    tag_services.tag_bulk_job_run(job_id=job["id"])
    status = bob.get(f"/api/v1/tag-jobs/{job['id']}/").json()
    live = Follow.objects.filter(corp=world.corp_a, status="active").count()
    assert status["status"] == "done" and status["done"] == status["total"] == live
    response = bob.post("/api/v1/tag-jobs/", {"add": [999999]}, content_type="application/json")
    assert response.status_code == 400
    assert (
        client_for(world.victor)
        .post("/api/v1/tag-jobs/", {"add": [high.pk]}, content_type="application/json")
        .status_code
        == 403
    )
