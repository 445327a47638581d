"""Scenarios (seed, traffic), audit queries, the control API, snapshot, dashboard, QR scan page, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from wecom.sandbox import demo, snapshot
from wecom.sandbox.state import Sandbox
from wecom.sandbox.testing import CallbackReceiver, ControlError, SandboxServer, free_port

from .conftest import Env, make_env


def test_seed_members_customers_tags_groups(
    sandbox: SandboxServer, callback_receiver: CallbackReceiver
) -> None:
    env = make_env(sandbox, callback_receiver)
    res = sandbox.seed(
        env.corp_id, members=50, customers=5000, follows=8000, tag_groups=4, groups=20, group_size=100, seed=1
    )
    assert (res["members"], res["customers"], res["tags"], res["groups"]) == (50, 5000, 20, 20)
    assert 7000 <= res["follows"] <= 8000  # duplicates of an existing relationship are skipped
    counts = sandbox.control("GET", f"/sandbox/corps/{env.corp_id}")["counts"]
    assert counts["follows"] == res["follows"] and counts["customers"] == 5000
    total = 0
    for userid in env.ok("externalcontact/get_follow_user_list", method="GET")["follow_user"]:
        total += len(env.ok("externalcontact/list", method="GET", userid=userid)["external_userid"])
    assert total == res["follows"]


def test_traffic_drives_world_actions_at_a_rate(env: Env) -> None:
    env.sb.control(
        "POST",
        f"/sandbox/corps/{env.corp_id}/traffic",
        {
            "rate_per_min": 3000,
            "duration": 1.0,
            "mix": {"scan": 3, "join_group": 1, "edit_external_contact": 1},
        },
    )
    time.sleep(1.3)
    status = env.sb.control("GET", f"/sandbox/corps/{env.corp_id}/traffic")
    assert status["running"] is False
    done = sum(status["done"].values())
    assert 40 <= done <= 51 and set(status["done"]) <= {"scan", "join_group", "edit_external_contact"}
    env.sb.wait_deliveries(10)
    assert len(env.receiver.received) == done  # one event per action (the env has no join ways)
    assert env.sb.control("DELETE", f"/sandbox/corps/{env.corp_id}/traffic")["stopped"] is False
    with pytest.raises(ControlError):
        env.sb.control(
            "POST", f"/sandbox/corps/{env.corp_id}/traffic", {"rate_per_min": 10, "mix": {"fly": 1}}
        )


def test_audit_records_and_findings_over_http(env: Env) -> None:
    env.call("externalcontact/get_follow_user_list", method="GET")
    env.call("user/get", method="GET", userid="ghost")
    api = env.sb.control("GET", "/sandbox/audit", corp=env.corp_id, kind="api", limit=10)["records"]
    assert [r["name"] for r in api[:2]] == ["user/get", "externalcontact/get_follow_user_list"]
    assert api[0]["code"] == 60111
    everything = env.sb.control("GET", "/sandbox/audit/findings")
    assert [c["corp_id"] for c in everything["corps"]] == [env.corp_id]
    assert set(everything["corps"][0]) >= {"summary", "late_welcome", "over_quota", "capacity"}


def test_register_corp_validation_and_onboarding(
    sandbox: SandboxServer, callback_receiver: CallbackReceiver
) -> None:
    with pytest.raises(ControlError) as bad:
        sandbox.register_corp("ww1111111111111111", token="has space")
    assert bad.value.status == 400
    url = callback_receiver.add_corp("ww1111111111111111")
    made = sandbox.register_corp(
        "ww1111111111111111", callback_url=url, verify_callback=True, seed={"members": 3, "customers": 10}
    )
    assert made["verify"]["1000002"]["ok"] is True and made["counts"]["members"] == 3
    assert made["api_base"] == sandbox.api_base
    again = sandbox.register_corp("ww1111111111111111", callback_url=url)  # one click twice: idempotent
    assert again["counts"]["members"] == 3
    assert sandbox.control("DELETE", "/sandbox/corps/ww1111111111111111")["deleted"] == "ww1111111111111111"
    assert sandbox.control("GET", "/sandbox/corps")["corps"] == []


def test_snapshot_round_trip(env: Env, tmp_path: Path) -> None:
    env.world("scan")
    path = tmp_path / "state.pickle"
    saved = env.sb.control("POST", "/sandbox/snapshot", {"path": str(path)})
    assert saved["corps"] == 1 and path.stat().st_size > 0
    fresh = Sandbox()
    snapshot.load(fresh, str(path))
    corp = fresh.corps[env.corp_id]
    assert corp.follow_count == env.sb.control("GET", f"/sandbox/corps/{env.corp_id}")["counts"]["follows"]
    assert fresh.check_token(env.token).corp_id == env.corp_id


def test_dashboard_and_qr_scan_page(env: Env) -> None:
    page = httpx.get(f"{env.sb.base_url}/sandbox/")
    assert page.status_code == 200 and env.corp_id in page.text and "Audit findings" in page.text
    way = next(w for w in env.data("contact_ways"))
    form = httpx.get(f"{env.sb.base_url}/sandbox/scan/{way['config_id']}")
    assert form.status_code == 200 and "<form" in form.text
    svg = httpx.get(f"{env.sb.base_url}/sandbox/qr/{way['config_id']}.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    done = httpx.post(f"{env.sb.base_url}/sandbox/scan/{way['config_id']}")
    assert done.status_code == 200 and "scanned" in done.text
    event = env.receiver.wait_for(1, ChangeType="add_external_contact")[0]
    assert event["State"] == way["state"]
    assert httpx.get(f"{env.sb.base_url}/sandbox/qr/nope.png").status_code == 404


def test_control_index_and_clock(sandbox: SandboxServer) -> None:
    index = sandbox.control("GET", "/sandbox/api")
    assert "POST /sandbox/corps/{corp}/world/{action}" in index["routes"] and "scan" in index["world_actions"]
    before = sandbox.control("GET", "/sandbox/clock")["now"]
    after = sandbox.advance(3600)["now"]
    assert 3600 <= after - before < 3610


def test_demo_credentials_are_valid_wecom_shapes() -> None:
    import re

    assert re.fullmatch(r"ww[0-9a-f]{16}", demo.CORP_ID)
    assert re.fullmatch(r"[A-Za-z0-9]{1,32}", demo.TOKEN)
    assert re.fullmatch(r"[A-Za-z0-9]{43}", demo.ENCODING_AES_KEY)
    sb = Sandbox()
    corp = demo.install(sb)
    assert len(corp.members) == 8 and {g.name for g in corp.tag_groups.values()} == {
        "客户等级",
        "来源",
        "兴趣",
    }
    assert len(corp.groups) == 5 and 250 <= len(corp.customers) <= 350


@pytest.mark.slow
def test_cli_demo_with_trickle_and_snapshot(callback_receiver: CallbackReceiver, tmp_path: Path) -> None:
    port = free_port()
    url = callback_receiver.add_corp(demo.CORP_ID, demo.TOKEN, demo.ENCODING_AES_KEY)
    snap = tmp_path / "snap.pickle"
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps(
            {
                "corps": [
                    {"corp_id": "ww2222222222222222", "secret": "s2", "seed": {"members": 2, "customers": 5}}
                ]
            }
        )
    )
    cmd = [
        sys.executable,
        "-m",
        "wecom.sandbox",
        "--port",
        str(port),
        "--demo",
        "--trickle",
        "600",
        "--callback-url",
        url,
        "--snapshot",
        str(snap),
        "--scenario",
        str(scenario),
        "--callback-retry-interval",
        "0.1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=os.getcwd())
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/sandbox/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        token = httpx.get(
            f"{base}/cgi-bin/gettoken", params={"corpid": demo.CORP_ID, "corpsecret": demo.SECRET}
        ).json()
        assert token["errcode"] == 0
        users = httpx.get(
            f"{base}/cgi-bin/externalcontact/get_follow_user_list",
            params={"access_token": token["access_token"]},
        ).json()["follow_user"]
        assert len(users) == 8
        corps = {c["corp_id"] for c in httpx.get(f"{base}/sandbox/corps").json()["corps"]}
        assert corps == {demo.CORP_ID, "ww2222222222222222"}
        callback_receiver.wait_for(2, timeout=10, ToUserName=demo.CORP_ID)  # the trickle is alive
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=20)[0].decode()
    assert proc.returncode == 0, out
    assert snap.exists()
    restored = Sandbox()
    snapshot.load(restored, str(snap))
    assert set(restored.corps) == {demo.CORP_ID, "ww2222222222222222"}
