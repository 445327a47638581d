"""A group code end to end in the browser: create it over three groups, people join through the sandbox
(callback → live server → a real events worker), the code swaps the filling group out, and the code's
page shows the swap and the joins."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from scrm.customers.services import member_apply_info
from scrm.groupcodes.models import GroupCode, PoolGroup, Rotation
from scrm.sync.services import group_refresh
from tests.browser.conftest import screenshot
from tests.browser.test_channel_codes import log_in
from tests.conftest import World
from tests.scrm.acquisition.conftest import link, wait_for, workers
from wecom.sandbox.testing import SandboxServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@override_settings(WECOM_CALLBACK_REPLAY_WINDOW=0)
def test_group_code_rotates_and_shows_its_stats(
    live_server: Any, page: Any, world: World, sandbox: SandboxServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    corp = world.corp_a
    acq = link(sandbox, corp)
    sandbox.register_corp(
        corp.corp_id,
        secret=corp.secret,
        agent_id=corp.agent_id,
        callback_url=f"{live_server.url}/wecom/callback/{corp.corp_id}/",
        token=corp.callback_token,
        encoding_aes_key=corp.encoding_aes_key,
    )
    sandbox.settings(corp.corp_id, qr_capacity=6)
    sandbox.seed(corp.corp_id, members=1, customers=0, follows=0, tag_groups=0, contact_ways=0)
    (m,) = sandbox.data(corp.corp_id, "members")
    member_apply_info(corp=corp, info={"userid": m["userid"], "name": m["name"]})
    chats = []
    for i in range(3):
        chat = acq.world("create_group", owner=m["userid"], name=f"读书会{i + 1}群", deliver=False)
        group_refresh(corp=corp, chat_id=chat["chat_id"])
        chats.append(chat["chat_id"])
    base = live_server.url

    log_in(page, base, "alice")
    page.goto(base + "/group-codes/")
    page.click("[data-testid=gcode-create]")
    page.fill("#id_name", "读书会")
    for label in ("读书会1群", "读书会2群", "读书会3群"):
        page.get_by_label(label, exact=False).check()
    page.fill("#id_capacity", "6")
    page.click("[data-testid=gcode-form] button[type=submit]")
    code = GroupCode.objects.get(corp=corp, name="读书会")
    assert code.applied_chat_ids == chats
    expect(page.locator("[data-testid=gcode-pool] tbody tr")).to_have_count(3)

    with workers("events", concurrency=1, tmp_path=tmp_path) as w:
        for _ in range(5):
            acq.world("join_group", config_id=code.config_id)
            time.sleep(1.0)  # a trickle: one join in flight at a time
            if Rotation.objects.filter(code=code, kind=Rotation.Kind.ROTATE).exists():
                break
        wait_for(
            lambda: Rotation.objects.filter(code=code, kind=Rotation.Kind.ROTATE).exists(),
            timeout=30,
            what=f"the rotation\n{w.output()}",
        )
    first = PoolGroup.objects.get(code=code, group__chat_id=chats[0])
    assert first.status == PoolGroup.Status.FULL
    assert [w["chat_id_list"] for w in acq.data("join_ways")] == [chats[1:]]
    page.goto(f"{base}/group-codes/{code.pk}/")
    expect(page.locator("[data-testid=gcode-rotations]")).to_have_text("1")
    expect(page.locator(f"[data-chat-id='{chats[0]}']")).to_have_attribute("data-status", "full")
    expect(page.locator("[data-testid=gcode-joins]")).not_to_have_text("+0")
    expect(page.locator("[data-testid=gcode-rotations-log] tbody tr").first).to_be_visible()
    screenshot(page, "group-code-rotated")
    assert sandbox.findings(corp.corp_id)["summary"]["capacity"] == 0
