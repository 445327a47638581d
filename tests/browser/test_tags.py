"""Tags in the dashboard, with the WeCom sandbox playing WeCom over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scrm.customers.models import Tag, TagGroup
from tests.browser.conftest import screenshot
from tests.conftest import PASSWORD, World
from wecom.sandbox.testing import SandboxServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def wecom(world: World) -> Iterator[SandboxServer]:
    server = SandboxServer().start()
    corp = world.corp_a
    server.register_corp(corp.corp_id, secret=corp.secret, agent_id=corp.agent_id, name=corp.name)
    corp.api_base = server.api_base
    corp.save(update_fields=["api_base"])
    yield server
    server.stop()


def log_in(page: object, base: str, username: str) -> None:
    page.goto(base + "/accounts/login/")  # type: ignore[attr-defined]
    page.fill("#id_username", username)  # type: ignore[attr-defined]
    page.fill("#id_password", PASSWORD)  # type: ignore[attr-defined]
    page.click("[data-testid=login-submit]")  # type: ignore[attr-defined]


def test_admin_creates_and_renames_a_tag(
    live_server: object, page: object, world: World, wecom: SandboxServer
) -> None:
    from playwright.sync_api import expect

    base = live_server.url  # type: ignore[attr-defined]
    log_in(page, base, "alice")
    page.goto(base + "/tags/")  # type: ignore[attr-defined]
    page.click("[data-testid=group-create-open]")  # type: ignore[attr-defined]
    page.fill("#id_name", "客户等级")  # type: ignore[attr-defined]
    page.fill("#id_tags", "金卡\n银卡")  # type: ignore[attr-defined]
    page.click("[data-testid=group-create-submit]")  # type: ignore[attr-defined]

    group = page.locator("[data-testid=tag-group][data-group-name='客户等级']")  # type: ignore[attr-defined]
    expect(group).to_be_visible()
    expect(group.locator("[data-testid=tag-name]")).to_have_count(2)
    row = group.locator("[data-testid=tag-row][data-tag-name='金卡']")
    row.locator("[data-testid=tag-rename]").click()
    row.locator("[data-testid=tag-rename-input]").fill("黑金卡")
    row.locator("[data-testid=tag-rename-submit]").click()

    expect(group.locator("[data-testid=tag-row][data-tag-name='黑金卡']")).to_be_visible()
    expect(group.locator("[data-testid=tag-row][data-tag-name='金卡']")).to_have_count(0)
    screenshot(page, "tags-created-and-renamed")
    page.reload()  # type: ignore[attr-defined]
    expect(page.locator("[data-testid=tag-name]", has_text="黑金卡")).to_be_visible()  # type: ignore[attr-defined]

    # Persisted here and in WeCom, as a tag our app created (so ours to edit)
    tag = Tag.objects.get(corp=world.corp_a, name="黑金卡", deleted=False)
    assert tag.created_by_us and TagGroup.objects.get(pk=tag.group_id).name == "客户等级"
    [remote] = wecom.data(world.corp_a.corp_id, "tags")
    assert remote["group_name"] == "客户等级" and {t["name"] for t in remote["tags"]} == {"黑金卡", "银卡"}


def test_tags_page_fits_a_phone(
    live_server: object, browser: object, world: World, wecom: SandboxServer
) -> None:
    from playwright.sync_api import expect

    from scrm.customers.tag_services import tag_group_create

    tag_group_create(corp=world.corp_a, name="来源渠道", tag_names=["线下门店", "小程序", "直播间"])
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)  # type: ignore[attr-defined]
    page = context.new_page()
    base = live_server.url  # type: ignore[attr-defined]
    log_in(page, base, "alice")
    page.goto(base + "/tags/")
    expect(page.locator("[data-testid=tag-row]")).to_have_count(3)
    page.locator("[data-testid=tag-row][data-tag-name='小程序'] [data-testid=tag-rename]").click()
    expect(
        page.locator("[data-testid=tag-row][data-tag-name='小程序'] [data-testid=tag-rename-input]")
    ).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
    screenshot(page, "tags-phone")
    context.close()
