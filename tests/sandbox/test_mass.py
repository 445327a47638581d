"""Mass messages: ≤10,000 ids, members confirm after a delay with a probability, per-customer results
0/1/2/3, the receive quota under each corp rule, 41063, remind (≤3 per 24 h) and cancel."""

from __future__ import annotations

import pytest

from .conftest import Env


@pytest.fixture
def fast(env: Env) -> Env:
    env.sb.settings(env.corp_id, confirm_delay=30, confirm_probability=1.0, distribute_seconds=1.0)
    return env


def _send(env: Env, sender: str, targets: list[str], **extra) -> dict:
    return env.call(
        "externalcontact/add_msg_template",
        {
            "chat_type": "single",
            "sender": sender,
            "external_userid": targets,
            "text": {"content": "新品上市"},
            **extra,
        },
    )


def _results(env: Env, msgid: str, userid: str) -> dict[str, int]:
    page = env.ok("externalcontact/get_groupmsg_send_result", {"msgid": msgid, "userid": userid})
    return {r["external_userid"]: r["status"] for r in page["send_list"]}


def test_template_is_delivered_when_the_member_confirms(fast: Env) -> None:
    env = fast
    sender = env.members()[0]
    targets = env.follows(sender)
    made = _send(env, sender, [*targets, "wmUNKNOWNxxxxxxxxxxxxxxxxxxxxxxxx"])
    assert made["errcode"] == 0 and made["fail_list"] == ["wmUNKNOWNxxxxxxxxxxxxxxxxxxxxxxxx"]
    assert (
        env.call("externalcontact/get_groupmsg_send_result", {"msgid": made["msgid"], "userid": sender})[
            "errcode"
        ]
        == 41063
    )  # still distributing right after creation
    env.sb.advance(2)
    assert set(_results(env, made["msgid"], sender).values()) == {0}
    task = env.ok("externalcontact/get_groupmsg_task", {"msgid": made["msgid"]})["task_list"]
    assert task == [{"userid": sender, "status": 0}]
    env.sb.advance(30)
    assert set(_results(env, made["msgid"], sender).values()) == {1}
    task = env.ok("externalcontact/get_groupmsg_task", {"msgid": made["msgid"]})["task_list"][0]
    assert task["status"] == 2 and task["send_time"] > 0
    listed = env.ok(
        "externalcontact/get_groupmsg_list_v2",
        {
            "chat_type": "single",
            "start_time": int(env.sb.control("GET", "/sandbox/clock")["now"]) - 3600,
            "end_time": int(env.sb.control("GET", "/sandbox/clock")["now"]),
        },
    )
    assert [m["msgid"] for m in listed["group_msg_list"]] == [made["msgid"]]
    assert listed["group_msg_list"][0]["text"]["content"] == "新品上市"


def test_template_validation(fast: Env) -> None:
    env = fast
    sender = env.members()[0]
    assert _send(env, sender, [f"wm{i:030d}" for i in range(10_001)])["errcode"] == 40058
    assert _send(env, sender, ["wmNOBODYxxxxxxxxxxxxxxxxxxxxxxxxx"])["errcode"] == 41048
    assert (
        env.call("externalcontact/add_msg_template", {"chat_type": "group", "text": {"content": "x"}})[
            "errcode"
        ]
        == 40058
    )  # group needs a sender
    assert _send(env, sender, env.follows(sender), text={"content": "字" * 1400})["errcode"] == 45002
    now = int(env.sb.control("GET", "/sandbox/clock")["now"])
    assert (
        env.call(
            "externalcontact/get_groupmsg_list_v2",
            {"chat_type": "single", "start_time": now - 40 * 86400, "end_time": now},
        )["errcode"]
        == 40058
    )


def test_members_confirm_with_the_configured_probability_and_remind(fast: Env) -> None:
    env = fast
    env.sb.settings(env.corp_id, confirm_probability=0.0)
    sender = env.members()[0]
    made = _send(env, sender, env.follows(sender))
    env.sb.advance(3600)
    assert set(_results(env, made["msgid"], sender).values()) == {0}
    env.sb.settings(env.corp_id, confirm_probability=1.0)
    for _ in range(3):
        env.ok("externalcontact/remind_groupmsg_send", {"msgid": made["msgid"]})
    assert env.call("externalcontact/remind_groupmsg_send", {"msgid": made["msgid"]})["errcode"] == 40058
    env.sb.advance(31)  # reminded, the member confirms after the usual delay
    assert set(_results(env, made["msgid"], sender).values()) == {1}
    env.sb.advance(86400)
    env.refresh_token()
    env.ok("externalcontact/remind_groupmsg_send", {"msgid": made["msgid"]})  # a new 24 h window


def test_cancel_stops_unconfirmed_sends(fast: Env) -> None:
    env = fast
    sender = env.members()[0]
    made = _send(env, sender, env.follows(sender))
    env.ok("externalcontact/cancel_groupmsg_send", {"msgid": made["msgid"]})
    env.sb.advance(60)
    assert set(_results(env, made["msgid"], sender).values()) == {0}
    assert env.call("externalcontact/remind_groupmsg_send", {"msgid": made["msgid"]})["errcode"] == 40058


def test_status_2_when_the_customer_deleted_the_member(fast: Env) -> None:
    env = fast
    sender = env.members()[0]
    gone, stays = env.follows(sender)[:2]
    made = _send(env, sender, [gone, stays])
    env.world("del_follow_user", userid=sender, external_userid=gone)
    env.sb.advance(31)
    assert _results(env, made["msgid"], sender) == {gone: 2, stays: 1}


def test_receive_quota_one_per_day(fast: Env) -> None:
    env = fast
    env.sb.control("POST", "/sandbox/clock/set", {"now": 1_717_214_400})  # 2024-06-01 12:00 Asia/Shanghai
    env.refresh_token()
    env.sb.settings(env.corp_id, quota_rule="1_per_day")
    sender = env.members()[0]
    x = env.follows(sender)[0]
    first = _send(env, sender, [x])["msgid"]
    env.sb.advance(31)
    second = _send(env, sender, [x])["msgid"]  # the product should not have done this
    env.sb.advance(31)
    assert _results(env, first, sender) == {x: 1}
    assert _results(env, second, sender) == {x: 3}  # WeCom skips it: already received today
    findings = env.sb.findings(env.corp_id)
    assert findings["summary"]["over_quota"] == 1 and findings["over_quota"][0]["target"] == x
    env.sb.advance(12 * 3600)  # next calendar day in Asia/Shanghai
    env.refresh_token()
    third = _send(env, sender, [x])["msgid"]
    env.sb.advance(31)
    assert _results(env, third, sender) == {x: 1}
    assert env.sb.findings(env.corp_id)["summary"]["over_quota"] == 1


@pytest.mark.parametrize(
    ("rule", "allowance", "start"),
    [
        ("days_of_month", 30, 1_717_171_200),  # June 2024 has 30 days (2024-06-01 00:00 +08:00)
        ("7_per_week", 7, 1_717_344_000),  # Monday 2024-06-03 00:00 +08:00
    ],
)
def test_receive_quota_rules(fast: Env, rule: str, allowance: int, start: int) -> None:
    env = fast
    env.sb.control("POST", "/sandbox/clock/set", {"now": start + 60})
    env.refresh_token()
    env.sb.settings(env.corp_id, quota_rule=rule, confirm_delay=1)
    sender = env.members()[0]
    x = env.follows(sender)[0]
    ids = []
    for _ in range(allowance + 1):
        ids.append(_send(env, sender, [x])["msgid"])
        env.sb.advance(2)
    statuses = [_results(env, m, sender)[x] for m in ids]
    assert statuses == [1] * allowance + [3]
    assert env.sb.findings(env.corp_id)["summary"]["over_quota"] == 1


def test_cancelled_templates_do_not_count_towards_the_audit(fast: Env) -> None:
    env = fast
    env.sb.settings(env.corp_id, quota_rule="1_per_day")
    sender = env.members()[0]
    x = env.follows(sender)[0]
    first = _send(env, sender, [x])["msgid"]
    env.ok("externalcontact/cancel_groupmsg_send", {"msgid": first})
    _send(env, sender, [x])
    assert env.sb.findings(env.corp_id)["summary"]["over_quota"] == 0


def test_group_mass_message_and_tag_filter(fast: Env) -> None:
    env = fast
    group = env.data("groups")[0]
    made = env.ok(
        "externalcontact/add_msg_template",
        {
            "chat_type": "group",
            "sender": group["owner"],
            "chat_id_list": [group["chat_id"], "wrNOPE"],
            "text": {"content": "群发"},
        },
    )
    assert made["fail_list"] == ["wrNOPE"]
    env.sb.advance(31)
    sent = env.ok(
        "externalcontact/get_groupmsg_send_result", {"msgid": made["msgid"], "userid": group["owner"]}
    )
    assert sent["send_list"] == [
        {
            "chat_id": group["chat_id"],
            "userid": group["owner"],
            "status": 1,
            "send_time": sent["send_list"][0]["send_time"],
        }
    ]
    sender = env.members()[1]
    customers = env.data("customers", userid=sender)
    tag = next(t for c in customers for f in c["follows"] if f["userid"] == sender for t in f["tags"])
    tagged = {
        c["external_userid"]
        for c in customers
        for f in c["follows"]
        if f["userid"] == sender and tag in f["tags"]
    }
    made = env.ok(
        "externalcontact/add_msg_template",
        {
            "sender": sender,
            "text": {"content": "标签群发"},
            "tag_filter": {"group_list": [{"tag_list": [tag]}]},
        },
    )
    env.sb.advance(2)
    assert set(_results(env, made["msgid"], sender)) == tagged
