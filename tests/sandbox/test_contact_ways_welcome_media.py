"""Contact ways (state ≤30, users, QR the sandbox renders), send_welcome_msg (20 s, single use) and
temporary media (3 days)."""

from __future__ import annotations

import httpx

from .conftest import Env


def _way(env: Env, **body) -> dict:
    return env.call(
        "externalcontact/add_contact_way", {"type": 1, "scene": 2, "user": [env.members()[0]], **body}
    )


def test_add_get_list_update_delete_contact_way(env: Env) -> None:
    members = env.members()
    made = _way(env, state="spring_fair", remark="春季展会")
    assert (
        made["errcode"] == 0
        and made["config_id"]
        and made["qr_code"].endswith(f"/sandbox/qr/{made['config_id']}.png")
    )
    png = httpx.get(made["qr_code"])
    assert (
        png.status_code == 200
        and png.headers["content-type"] == "image/png"
        and png.content[:4] == b"\x89PNG"
    )
    way = env.ok("externalcontact/get_contact_way", {"config_id": made["config_id"]})["contact_way"]
    assert way["state"] == "spring_fair" and way["user"] == [members[0]] and way["skip_verify"] is True
    multi = env.ok("externalcontact/add_contact_way", {"type": 2, "scene": 1, "user": members[:3]})
    assert "qr_code" not in multi  # scene 1 (mini program) has no QR code
    listed = env.ok("externalcontact/list_contact_way", {"limit": 1})
    assert len(listed["contact_way"]) == 1 and listed["next_cursor"]
    rest = env.ok("externalcontact/list_contact_way", {"limit": 1, "cursor": listed["next_cursor"]})
    # Only API-made ways are listed (the seeded console way is not).
    assert {c["config_id"] for c in listed["contact_way"] + rest["contact_way"]} == {
        made["config_id"],
        multi["config_id"],
    }
    env.ok(
        "externalcontact/update_contact_way",
        {"config_id": multi["config_id"], "user": members[1:3], "state": "s2"},
    )
    assert (
        env.ok("externalcontact/get_contact_way", {"config_id": multi["config_id"]})["contact_way"]["user"]
        == members[1:3]
    )
    env.ok("externalcontact/del_contact_way", {"config_id": multi["config_id"]})
    assert env.call("externalcontact/get_contact_way", {"config_id": multi["config_id"]})["errcode"] == 40058


def test_contact_way_validation(env: Env) -> None:
    members = env.members()
    assert _way(env, state="x" * 31)["errcode"] == 40058
    assert _way(env, state="x" * 30)["errcode"] == 0
    assert _way(env, user=members[:2])["errcode"] == 40058  # type 1 takes exactly one user
    assert _way(env, type=3)["errcode"] == 40058
    assert _way(env, user=["ghost"])["errcode"] == 40003
    assert _way(env, remark="长" * 31)["errcode"] == 40058
    console = next(w for w in env.data("contact_ways") if w["creator"] == 0)
    assert (
        env.call("externalcontact/del_contact_way", {"config_id": console["config_id"]})["errcode"] == 60011
    )


def test_scan_sends_state_and_fresh_welcome_code(env: Env) -> None:
    way = _way(env, state="poster_a")
    result = env.world("scan", config_id=way["config_id"])
    event = env.receiver.wait_for(1, ChangeType="add_external_contact")[0]
    assert event["State"] == "poster_a" and event["WelcomeCode"] == result["welcome_code"]
    assert event["UserID"] == env.members()[0] and event["ExternalUserID"] == result["external_userid"]
    ok = env.call(
        "externalcontact/send_welcome_msg",
        {"welcome_code": event["WelcomeCode"], "text": {"content": "欢迎"}},
    )
    assert ok["errcode"] == 0
    sent = env.sb.control("GET", "/sandbox/audit", corp=env.corp_id, name="welcome_sent")["records"]
    assert sent[0]["detail"]["text"] == "欢迎"


def test_welcome_code_is_single_use_41051(env: Env) -> None:
    code = env.world("scan")["welcome_code"]
    body = {"welcome_code": code, "text": {"content": "hi"}}
    assert env.call("externalcontact/send_welcome_msg", body)["errcode"] == 0
    assert env.call("externalcontact/send_welcome_msg", body)["errcode"] == 41051


def test_welcome_code_expires_after_20_seconds_41050(env: Env) -> None:
    on_time = env.world("scan")["welcome_code"]
    late = env.world("scan")["welcome_code"]
    env.sb.advance(19.5)
    assert (
        env.call("externalcontact/send_welcome_msg", {"welcome_code": on_time, "text": {"content": "a"}})[
            "errcode"
        ]
        == 0
    )
    env.sb.advance(1)
    assert (
        env.call("externalcontact/send_welcome_msg", {"welcome_code": late, "text": {"content": "b"}})[
            "errcode"
        ]
        == 41050
    )
    assert (
        env.call("externalcontact/send_welcome_msg", {"welcome_code": "made-up", "text": {"content": "c"}})[
            "errcode"
        ]
        == 41050
    )
    findings = env.sb.findings(env.corp_id)
    assert findings["summary"]["late_welcome"] == 1
    assert findings["late_welcome"][0]["welcome_code"] == late and findings["late_welcome"][0]["delay"] > 20


def test_welcome_after_chatting_41051_and_busy_41096(env: Env) -> None:
    scanned = env.world("scan")
    env.world("chat", userid=scanned["userid"], external_userid=scanned["external_userid"])
    body = {"welcome_code": scanned["welcome_code"], "text": {"content": "hi"}}
    assert env.call("externalcontact/send_welcome_msg", body)["errcode"] == 41051
    env.sb.settings(env.corp_id, welcome_busy_rate=1.0)
    busy = env.world("scan")["welcome_code"]
    assert (
        env.call("externalcontact/send_welcome_msg", {"welcome_code": busy, "text": {"content": "x"}})[
            "errcode"
        ]
        == 41096
    )
    env.sb.advance(3.1)
    assert (
        env.call("externalcontact/send_welcome_msg", {"welcome_code": busy, "text": {"content": "x"}})[
            "errcode"
        ]
        == 0
    )


def test_welcome_message_validation(env: Env) -> None:
    code = env.world("scan")["welcome_code"]
    assert env.call("externalcontact/send_welcome_msg", {"welcome_code": code})["errcode"] == 40058
    long = {"welcome_code": code, "text": {"content": "字" * 1334}}  # 4,002 bytes
    assert env.call("externalcontact/send_welcome_msg", long)["errcode"] == 45002
    ten = [{"msgtype": "link", "link": {"title": "t", "url": "https://example.com"}}] * 10
    assert (
        env.call("externalcontact/send_welcome_msg", {"welcome_code": code, "attachments": ten})["errcode"]
        == 40058
    )
    bad_image = [{"msgtype": "image", "image": {"media_id": "nope"}}]
    assert (
        env.call("externalcontact/send_welcome_msg", {"welcome_code": code, "attachments": bad_image})[
            "errcode"
        ]
        == 40007
    )
    # None of the failed attempts used the code up.
    assert (
        env.call("externalcontact/send_welcome_msg", {"welcome_code": code, "attachments": ten[:9]})[
            "errcode"
        ]
        == 0
    )


def _upload(env: Env, kind: str, name: str, data: bytes) -> dict:
    return env.sb.api(
        "POST",
        "media/upload",
        env.token,
        params={"type": kind},
        files={"media": (name, data, "application/octet-stream")},
    )


def test_media_upload_valid_three_days(env: Env) -> None:
    up = _upload(env, "image", "logo.png", b"\x89PNG" + b"\0" * 100)
    assert up["errcode"] == 0 and up["type"] == "image" and up["media_id"] and up["created_at"].isdigit()
    raw = httpx.get(
        f"{env.sb.api_base}media/get", params={"access_token": env.token, "media_id": up["media_id"]}
    )
    assert raw.status_code == 200 and raw.content.startswith(b"\x89PNG")
    attach = [{"msgtype": "image", "image": {"media_id": up["media_id"]}}]
    assert (
        env.call(
            "externalcontact/send_welcome_msg",
            {"welcome_code": env.world("scan")["welcome_code"], "attachments": attach},
        )["errcode"]
        == 0
    )
    env.sb.advance(3 * 86400 + 1)
    env.refresh_token()
    code = env.world("scan")["welcome_code"]
    assert (
        env.call("externalcontact/send_welcome_msg", {"welcome_code": code, "attachments": attach})["errcode"]
        == 40007
    )


def test_media_upload_validation(env: Env) -> None:
    assert _upload(env, "sticker", "a.png", b"x" * 10)["errcode"] == 40004
    assert _upload(env, "image", "a.gif", b"x" * 10)["errcode"] == 40005
    assert _upload(env, "image", "a.png", b"x" * 3)["errcode"] == 40006
    assert _upload(env, "voice", "a.amr", b"x" * (2 * 1024 * 1024 + 1))["errcode"] == 40006
    assert _upload(env, "file", "report.pdf", b"%PDF-1.4 ...")["errcode"] == 0
