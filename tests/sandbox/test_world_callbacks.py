"""The world driver: what WeCom sends, encrypted, with its delivery rules (5 s timeout, up to 3
retries, every delivery counted), for every kind of event the product handles."""

from __future__ import annotations

from defusedxml.ElementTree import fromstring

from wecom.crypto import CallbackCrypto
from wecom.sandbox.testing import TEST_AES_KEY, TEST_TOKEN

from .conftest import Env


def test_deliveries_are_encrypted_and_signed_like_wecom(env: Env) -> None:
    env.world("scan")
    env.receiver.wait_for(1)
    got = env.receiver.received[0]
    assert not got.error
    assert set(got.query) == {"msg_signature", "timestamp", "nonce"}
    envelope = fromstring(got.body)
    assert envelope.findtext("ToUserName") == env.corp_id and envelope.findtext("AgentID") == "1000002"
    crypto = CallbackCrypto(TEST_TOKEN, TEST_AES_KEY, env.corp_id)
    assert (
        crypto.signature(got.query["timestamp"], got.query["nonce"], envelope.findtext("Encrypt"))
        == got.query["msg_signature"]
    )
    assert got.event["ToUserName"] == env.corp_id and got.event["FromUserName"] == "sys"
    assert got.event["MsgType"] == "event" and got.event["CreateTime"].isdigit()


def test_failed_deliveries_are_retried_three_times(env: Env) -> None:
    env.receiver.mode, env.receiver.fail_times = "fail", None
    env.world("scan")
    stats = env.sb.wait_deliveries(10)
    corp = stats["per_corp"][env.corp_id]
    assert corp["attempts"] == 4 and corp["failed_attempts"] == 4 and corp["gave_up"] == 1
    assert env.receiver.attempts == 4 and env.receiver.received == []
    records = env.sb.control("GET", "/sandbox/audit", corp=env.corp_id, kind="callback")["records"]
    assert sorted(r["detail"]["attempt"] for r in records) == [1, 2, 3, 4]
    assert {r["name"] for r in records} == {"change_external_contact:add_external_contact"}


def test_a_retry_that_succeeds_stops_retrying(env: Env) -> None:
    env.receiver.mode, env.receiver.fail_times = "fail", 2
    env.world("scan")
    corp = env.sb.wait_deliveries(10)["per_corp"][env.corp_id]
    assert corp["attempts"] == 3 and corp["delivered"] == 1 and "gave_up" not in corp
    assert len(env.receiver.received) == 1


def test_timeouts_count_as_failures(env: Env) -> None:
    env.sb.control("POST", "/sandbox/deliveries/config", {"timeout": 0.2})
    env.receiver.mode, env.receiver.fail_times, env.receiver.hang_seconds = "timeout", 1, 0.6
    env.world("scan")
    corp = env.sb.wait_deliveries(10)["per_corp"][env.corp_id]
    assert corp["timeouts"] == 1 and corp["attempts"] == 2 and corp["delivered"] == 1


def test_add_half_del_follow_user_del_external_contact_edit(env: Env) -> None:
    half = env.world("add_half")
    ev = env.receiver.wait_for(1, ChangeType="add_half_external_contact")[0]
    assert ev["WelcomeCode"] == half["welcome_code"] and ev["State"]
    userid = env.members()[1]
    x, y = env.follows(userid)[:2]
    env.world("del_follow_user", userid=userid, external_userid=x)
    ev = env.receiver.wait_for(1, ChangeType="del_follow_user")[0]
    assert (ev["UserID"], ev["ExternalUserID"]) == (userid, x)
    env.world("del_external_contact", userid=userid, external_userid=y)
    ev = env.receiver.wait_for(1, ChangeType="del_external_contact")[0]
    assert (ev["UserID"], ev["ExternalUserID"]) == (userid, y) and "Source" not in ev
    assert y not in env.follows(userid)
    env.world("edit_external_contact", userid=userid, external_userid=x, remark="老客户")
    ev = env.receiver.wait_for(1, ChangeType="edit_external_contact")[0]
    assert ev["ExternalUserID"] == x


def test_console_tag_edits(env: Env) -> None:
    # Deliveries run in parallel, so (as with WeCom) their order is not guaranteed: compare as sets.
    created = env.world("tag_edit", op="create", group_name="活动", tags=["双十一", "618"])
    events = env.receiver.wait_for(3, Event="change_external_tag")
    group_id, tag_id, other_id = (e["id"] for e in created["events"])
    assert {(e["ChangeType"], e["Id"], e["TagType"]) for e in events} == {
        ("create", group_id, "tag_group"),
        ("create", tag_id, "tag"),
        ("create", other_id, "tag"),
    }
    env.world("tag_edit", op="update", id=tag_id, name="双11")
    env.receiver.wait_for(1, Event="change_external_tag", ChangeType="update")
    env.world("tag_edit", op="shuffle", group_id=group_id)
    shuffle = env.receiver.wait_for(1, Event="change_external_tag", ChangeType="shuffle")[0]
    assert shuffle["Id"] == group_id and "TagType" not in shuffle
    env.world("tag_edit", op="delete", id=group_id)
    deleted = env.receiver.wait_for(1, Event="change_external_tag", ChangeType="delete")[0]
    assert (deleted["Id"], deleted["TagType"]) == (group_id, "tag_group")
    assert group_id not in {g["group_id"] for g in env.data("tags")}


def test_members_joining_and_groups_created_and_dismissed(env: Env) -> None:
    env.world("add_member", userid="xiaoming", name="小明")
    ev = env.receiver.wait_for(1, Event="change_contact")[0]
    assert ev["ChangeType"] == "create_user" and ev["UserID"] == "xiaoming"
    made = env.world("create_group", owner="xiaoming", name="新群")
    assert env.receiver.wait_for(1, ChangeType="create")[0]["ChatId"] == made["chat_id"]
    env.world("dismiss_group", chat_id=made["chat_id"])
    assert env.receiver.wait_for(1, ChangeType="dismiss")[0]["ChatId"] == made["chat_id"]
    assert env.call("externalcontact/groupchat/get", {"chat_id": made["chat_id"]})["errcode"] == 40050


def test_callback_url_verification(env: Env) -> None:
    res = env.sb.control("POST", f"/sandbox/corps/{env.corp_id}/apps/1000002/verify")
    assert res["ok"] is True and res["got"] == res["expected"]


def test_events_without_a_callback_url_are_counted(sandbox) -> None:
    sandbox.register_corp("ww00000000000000aa", secret="s")
    sandbox.seed("ww00000000000000aa", members=2, customers=2)
    sandbox.world("ww00000000000000aa", "scan")
    summary = sandbox.findings("ww00000000000000aa")["summary"]
    assert summary["callbacks"] == {"no_callback_url": 1}


def test_add_half_then_confirm_carries_a_welcome_code_only_if_unused(env: Env) -> None:
    unused = env.world("add_half")
    env.world("confirm_half", userid=unused["userid"], external_userid=unused["external_userid"])
    used = env.world("add_half")
    env.ok(
        "externalcontact/send_welcome_msg", {"welcome_code": used["welcome_code"], "text": {"content": "hi"}}
    )
    env.world("confirm_half", userid=used["userid"], external_userid=used["external_userid"])
    adds = env.receiver.wait_for(2, ChangeType="add_external_contact")
    by_customer = {e["ExternalUserID"]: e for e in adds}
    assert by_customer[unused["external_userid"]]["WelcomeCode"] not in ("", unused["welcome_code"])
    assert "WelcomeCode" not in by_customer[used["external_userid"]]


def test_a_customer_who_deleted_the_member_can_add_them_again(env: Env) -> None:
    userid = env.members()[0]
    ext = env.follows(userid)[0]
    env.world("del_follow_user", userid=userid, external_userid=ext)
    again = env.world("scan", userid=userid, external_userid=ext)
    assert again["welcome_code"]
    follow = next(
        f
        for c in env.data("customers", userid=userid)
        if c["external_userid"] == ext
        for f in c["follows"]
        if f["userid"] == userid
    )
    assert follow["deleted_by_customer"] is False
