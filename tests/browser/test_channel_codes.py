"""A channel code end to end in the browser: create it with two members and a welcome script, see and
download its QR, a customer scans it in the sandbox (callback → live server → real workers), and the
customer shows up with the code's tag and the welcome on its timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from scrm.acquisition.models import ChannelCode, WelcomeScript
from scrm.customers.models import Customer, Tag, TimelineEntry
from scrm.customers.tag_services import tag_group_create
from tests.browser.conftest import screenshot
from tests.conftest import PASSWORD, World
from tests.scrm.acquisition.conftest import link, wait_for, workers
from wecom.sandbox.testing import SandboxServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page: Any, base: str, username: str) -> None:
    page.goto(base + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("[data-testid=login-submit]")


@override_settings(WECOM_CALLBACK_REPLAY_WINDOW=0)
def test_channel_code_from_creation_to_welcomed_customer(
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
    first, second = acq.members(2)
    tag_group_create(corp=corp, name="渠道来源", tag_names=["地推"])
    tag = Tag.objects.get(corp=corp, name="地推")
    base = live_server.url

    log_in(page, base, "alice")
    page.goto(base + "/channel-codes/")
    page.click("[data-testid=scripts-link]")
    page.fill("#id_name", "地推欢迎")
    page.fill("#id_text", "你好{customer_nickname}，我是{member_name}，感谢扫码「{channel_name}」")
    page.click("[data-testid=script-submit]")
    expect(page.locator("[data-testid=preview-text]")).to_contain_text("你好张三")
    script = WelcomeScript.objects.get(corp=corp)

    page.goto(base + "/channel-codes/new/")
    page.fill("#id_name", "地推二维码")
    page.select_option("#id_script", str(script.pk))
    page.check(f"input[name=tags][value='{tag.pk}']")
    page.select_option("#id_seats-0-member", str(first.pk))
    page.select_option("#id_seats-1-member", str(second.pk))
    page.click("[data-testid=code-submit]")

    expect(page.locator("[data-testid=code-name]")).to_contain_text("地推二维码")
    qr = page.locator("[data-testid=code-qr]")
    expect(qr).to_be_visible()
    assert page.evaluate("document.querySelector('[data-testid=code-qr]').naturalWidth") > 0
    expect(page.locator("[data-testid=routed]")).to_have_count(2)
    screenshot(page, "channel-code-created")
    with page.expect_download() as png:
        page.click("[data-testid=qr-download-png]")
    assert png.value.suggested_filename == "地推二维码.png"
    assert Path(png.value.path()).read_bytes()[:4] == b"\x89PNG"
    with page.expect_download() as svg:
        page.click("[data-testid=qr-download-svg]")
    assert svg.value.suggested_filename == "地推二维码.svg"

    code = ChannelCode.objects.get(corp=corp)
    with workers("realtime,events", concurrency=2, tmp_path=tmp_path) as w:
        scan = acq.world("scan", config_id=code.config_id)
        customer = wait_for(
            lambda: (
                Customer.objects.filter(corp=corp, external_userid=scan["external_userid"])
                .exclude(name="")
                .filter(tag_ids__contains=[tag.pk])
                .first()
            ),
            timeout=30,
            what=f"the customer, enriched and tagged\n{w.output()}",
        )
        wait_for(
            lambda: TimelineEntry.objects.filter(customer=customer, kind="welcome_sent").exists(),
            timeout=20,
            what="the welcome on the timeline",
        )
    (welcome,) = acq.welcomes()
    member = first if scan["userid"] == first.userid else second
    assert welcome["text"] == f"你好{customer.name}，我是{member.name}，感谢扫码「地推二维码」"

    page.goto(f"{base}/customers/{customer.pk}/")
    expect(page.locator("[data-testid=follow-tag]", has_text="地推")).to_be_visible()
    entry = page.locator("[data-testid=timeline] li[data-kind=welcome_sent]")
    expect(entry).to_be_visible()
    expect(entry).to_contain_text(f"你好{customer.name}")
    screenshot(page, "channel-code-customer-welcomed")

    # The phone layout: the code page still reads.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/channel-codes/{code.pk}/")
    expect(page.locator("[data-testid=code-qr]")).to_be_visible()
    expect(page.locator("[data-testid=total-adds]")).to_have_text("1")
    screenshot(page, "channel-code-phone")
