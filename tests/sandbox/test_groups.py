"""Customer groups: list/get (member_version, join_scene, state), join ways (≤5 chats, auto_create_room,
QR capacity 200, size cap 500), 81017, group welcome templates, statistics, group transfers."""

from __future__ import annotations

import pytest

from wecom.sandbox.testing import ControlError

from .conftest import Env, make_env


def _chats(env: Env) -> list[str]:
    return [g["chat_id"] for g in env.data("groups") if not g["dismissed"]]


def test_groupchat_list_pages_and_filters(env: Env) -> None:
    chats = _chats(env)
    page = env.ok("externalcontact/groupchat/list", {"limit": 2})
    assert len(page["group_chat_list"]) == 2 and page["next_cursor"]
    rest = env.ok("externalcontact/groupchat/list", {"limit": 2, "cursor": page["next_cursor"]})
    assert [g["chat_id"] for g in page["group_chat_list"] + rest["group_chat_list"]] == chats
    assert rest["next_cursor"] == ""
    owner = env.data("groups")[0]["owner"]
    mine = env.ok("externalcontact/groupchat/list", {"limit": 100, "owner_filter": {"userid_list": [owner]}})
    assert {g["chat_id"] for g in mine["group_chat_list"]} == {
        g["chat_id"] for g in env.data("groups") if g["owner"] == owner
    }
    assert env.call("externalcontact/groupchat/list", {})["errcode"] == 40058  # limit is required
    assert env.call("externalcontact/groupchat/list", {"limit": 1001})["errcode"] == 40058


def test_groupchat_list_needs_owner_filter_beyond_1000_owners(sandbox, callback_receiver) -> None:
    env = make_env(sandbox, callback_receiver, members=1001, customers=5, groups=1001, group_size=1, seed=5)
    assert env.call("externalcontact/groupchat/list", {"limit": 10})["errcode"] == 81017
    owners = env.members()[:100]
    page = env.ok("externalcontact/groupchat/list", {"limit": 1000, "owner_filter": {"userid_list": owners}})
    assert len(page["group_chat_list"]) == 100


def test_groupchat_get_shape(env: Env) -> None:
    chat_id = _chats(env)[0]
    chat = env.ok("externalcontact/groupchat/get", {"chat_id": chat_id, "need_name": 1})["group_chat"]
    assert {
        "chat_id",
        "name",
        "owner",
        "create_time",
        "notice",
        "member_list",
        "admin_list",
        "member_version",
    } <= set(chat)
    assert len(chat["member_version"]) == 32
    owner = next(m for m in chat["member_list"] if m["userid"] == chat["owner"])
    assert owner["type"] == 1 and "name" in owner
    customer = next(m for m in chat["member_list"] if m["type"] == 2)
    assert {"join_time", "join_scene", "invitor"} <= set(customer)
    no_name = env.ok("externalcontact/groupchat/get", {"chat_id": chat_id})["group_chat"]
    assert "name" not in no_name["member_list"][0]
    assert env.call("externalcontact/groupchat/get", {"chat_id": "wrNOPE"})["errcode"] == 40050


def test_join_way_crud_and_limits(env: Env) -> None:
    chats = _chats(env)
    made = env.ok(
        "externalcontact/groupchat/add_join_way",
        {"scene": 2, "chat_id_list": chats[:2], "state": "wx_group", "room_base_name": "福利群"},
    )
    way = env.ok("externalcontact/groupchat/get_join_way", {"config_id": made["config_id"]})["join_way"]
    assert way["chat_id_list"] == chats[:2] and way["state"] == "wx_group" and way["auto_create_room"] == 1
    assert way["qr_code"].endswith(f"/sandbox/qr/{made['config_id']}.png")
    six = (chats * 2)[:6]
    assert (
        env.call("externalcontact/groupchat/add_join_way", {"scene": 2, "chat_id_list": six})["errcode"]
        == 40058
    )
    assert (
        env.call("externalcontact/groupchat/add_join_way", {"scene": 2, "chat_id_list": []})["errcode"]
        == 40058
    )
    assert (
        env.call("externalcontact/groupchat/add_join_way", {"scene": 2, "chat_id_list": ["wrNOPE"]})[
            "errcode"
        ]
        == 40050
    )
    assert (
        env.call(
            "externalcontact/groupchat/add_join_way",
            {"scene": 2, "chat_id_list": chats[:1], "state": "s" * 31},
        )["errcode"]
        == 40058
    )
    env.ok(
        "externalcontact/groupchat/update_join_way",
        {"config_id": made["config_id"], "scene": 2, "chat_id_list": chats[2:3], "state": "v2"},
    )
    assert (
        env.ok("externalcontact/groupchat/get_join_way", {"config_id": made["config_id"]})["join_way"][
            "chat_id_list"
        ]
        == chats[2:3]
    )
    # Another app cannot manage this app's join way.
    env.sb.control("POST", f"/sandbox/corps/{env.corp_id}/apps", {"agent_id": 1000009, "secret": "app9"})
    other = env.sb.token(env.corp_id, "app9")
    assert (
        env.sb.api("POST", "externalcontact/groupchat/get_join_way", other, {"config_id": made["config_id"]})[
            "errcode"
        ]
        == 60011
    )
    env.ok("externalcontact/groupchat/del_join_way", {"config_id": made["config_id"]})
    assert (
        env.call("externalcontact/groupchat/get_join_way", {"config_id": made["config_id"]})["errcode"]
        == 40058
    )


def test_joining_through_a_join_way_sends_member_versions_and_records_state(env: Env) -> None:
    chat_id = _chats(env)[0]
    made = env.ok(
        "externalcontact/groupchat/add_join_way", {"scene": 2, "chat_id_list": [chat_id], "state": "qr7"}
    )
    before = env.ok("externalcontact/groupchat/get", {"chat_id": chat_id})["group_chat"]["member_version"]
    joined = env.world("scan", config_id=made["config_id"])  # scanning a join way's QR joins the group
    event = env.receiver.wait_for(1, Event="change_external_chat")[0]
    assert (
        event["ChangeType"] == "update"
        and event["UpdateDetail"] == "add_member"
        and event["JoinScene"] == "3"
    )
    assert event["MemChangeCnt"] == "1" and event["MemChangeList"] == [joined["external_userid"]]
    after = env.ok("externalcontact/groupchat/get", {"chat_id": chat_id})["group_chat"]
    assert event["LastMemVer"] == before and event["CurMemVer"] == after["member_version"] != before
    member = next(m for m in after["member_list"] if m["userid"] == joined["external_userid"])
    assert member["join_scene"] == 3 and member["state"] == "qr7"
    env.world("leave_group", chat_id=chat_id, external_userid=joined["external_userid"])
    left = env.receiver.wait_for(1, UpdateDetail="del_member")[0]
    assert left["QuitScene"] == "0" and left["LastMemVer"] == after["member_version"]


def test_auto_create_room_opens_a_new_group_at_qr_capacity(env: Env) -> None:
    env.sb.settings(env.corp_id, qr_capacity=12)  # the seeded group has 11 members
    chat_id = _chats(env)[0]
    made = env.ok(
        "externalcontact/groupchat/add_join_way",
        {"scene": 2, "chat_id_list": [chat_id], "room_base_name": "福利群", "room_base_id": 7},
    )
    env.world("join_group", config_id=made["config_id"])  # the 12th member: the group is now at capacity
    second = env.world("join_group", config_id=made["config_id"])
    assert second["chat_id"] != chat_id
    way = env.ok("externalcontact/groupchat/get_join_way", {"config_id": made["config_id"]})["join_way"]
    assert way["chat_id_list"] == [chat_id, second["chat_id"]] and way["room_base_id"] == 8
    new = env.ok("externalcontact/groupchat/get", {"chat_id": second["chat_id"]})["group_chat"]
    assert new["name"] == "福利群7" and len(new["member_list"]) == 2
    assert (
        env.receiver.wait_for(1, Event="change_external_chat", ChangeType="create")[0]["ChatId"]
        == second["chat_id"]
    )
    assert env.sb.findings(env.corp_id)["summary"]["capacity"] == 0


def test_full_groups_refuse_joins_and_are_audited(env: Env) -> None:
    env.sb.settings(env.corp_id, qr_capacity=11)
    chat_id = _chats(env)[0]
    made = env.ok(
        "externalcontact/groupchat/add_join_way",
        {"scene": 2, "chat_id_list": [chat_id], "auto_create_room": 0},
    )
    with pytest.raises(ControlError) as full:
        env.world("join_group", config_id=made["config_id"])
    assert full.value.status == 409
    env.sb.settings(env.corp_id, group_size_cap=12)
    env.world("join_group", chat_id=chat_id)  # invited: not bound by the QR capacity, only the size cap
    with pytest.raises(ControlError) as capped:
        env.world("join_group", chat_id=chat_id)
    assert capped.value.status == 409
    findings = env.sb.findings(env.corp_id)
    assert findings["summary"]["capacity"] == 2 and len(findings["capacity"]) == 2


def test_group_welcome_templates(env: Env) -> None:
    made = env.ok(
        "externalcontact/group_welcome_template/add",
        {"text": {"content": "欢迎入群"}, "link": {"title": "福利", "url": "https://example.com"}},
    )
    got = env.ok("externalcontact/group_welcome_template/get", {"template_id": made["template_id"]})
    assert got["text"]["content"] == "欢迎入群" and got["link"]["title"] == "福利"
    env.ok(
        "externalcontact/group_welcome_template/edit",
        {"template_id": made["template_id"], "text": {"content": "新"}},
    )
    assert (
        env.ok("externalcontact/group_welcome_template/get", {"template_id": made["template_id"]})["text"][
            "content"
        ]
        == "新"
    )
    env.sb.control("POST", f"/sandbox/corps/{env.corp_id}/apps", {"agent_id": 1000010, "secret": "app10"})
    other = env.sb.token(env.corp_id, "app10")
    assert (
        env.sb.api(
            "POST", "externalcontact/group_welcome_template/del", other, {"template_id": made["template_id"]}
        )["errcode"]
        == 60011
    )
    env.ok("externalcontact/group_welcome_template/del", {"template_id": made["template_id"]})
    for i in range(100):
        env.ok("externalcontact/group_welcome_template/add", {"text": {"content": f"t{i}"}})
    assert (
        env.call("externalcontact/group_welcome_template/add", {"text": {"content": "101"}})["errcode"]
        == 41055
    )


def test_group_statistics(env: Env) -> None:
    now = int(env.sb.control("GET", "/sandbox/clock")["now"])
    owner = env.data("groups")[0]["owner"]
    by_owner = env.ok(
        "externalcontact/groupchat/statistic", {"day_begin_time": now - 86400, "day_end_time": now}
    )
    assert by_owner["total"] == len({g["owner"] for g in env.data("groups")})
    item = next(i for i in by_owner["items"] if i["owner"] == owner)
    assert item["data"]["chat_total"] >= 1 and item["data"]["member_total"] >= 2
    by_day = env.ok(
        "externalcontact/groupchat/statistic_group_by_day",
        {"day_begin_time": now - 86400, "day_end_time": now, "owner_filter": {"userid_list": [owner]}},
    )
    assert len(by_day["items"]) == 2 and by_day["items"][0]["stat_time"] % 3600 == 0
    assert (
        env.call(
            "externalcontact/groupchat/statistic", {"day_begin_time": now - 40 * 86400, "day_end_time": now}
        )["errcode"]
        == 40058
    )


def test_group_transfers(env: Env) -> None:
    groups = env.data("groups")
    owner, chat_id = groups[0]["owner"], groups[0]["chat_id"]
    heir = next(m for m in env.members() if m != owner)
    res = env.ok("externalcontact/groupchat/transfer", {"chat_id_list": [chat_id], "new_owner": heir})
    assert res["failed_chat_list"][0]["errcode"] == 90500  # the owner has not resigned
    for _ in range(2):
        env.ok("externalcontact/groupchat/onjob_transfer", {"chat_id_list": [chat_id], "new_owner": heir})
        heir, owner = owner, heir
    third = env.ok("externalcontact/groupchat/onjob_transfer", {"chat_id_list": [chat_id], "new_owner": heir})
    assert third["failed_chat_list"][0]["errcode"] == 40128  # twice per 90 days
    env.world("resign", userid=owner)
    listed = env.ok("externalcontact/groupchat/list", {"limit": 100, "status_filter": 1})["group_chat_list"]
    assert chat_id in [g["chat_id"] for g in listed]
    done = env.ok(
        "externalcontact/groupchat/transfer", {"chat_id_list": [chat_id, "wrNOPE"], "new_owner": heir}
    )
    assert [f["chat_id"] for f in done["failed_chat_list"]] == ["wrNOPE"]
    assert env.ok("externalcontact/groupchat/get", {"chat_id": chat_id})["group_chat"]["owner"] == heir
