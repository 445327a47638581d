from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot
from tests.conftest import PASSWORD, World

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_switch_language_and_see_dashboard(live_server: object, page: object, world: World) -> None:
    from playwright.sync_api import expect

    base = live_server.url  # type: ignore[attr-defined]
    page.goto(base + "/")  # type: ignore[attr-defined]
    # Simplified Chinese by default
    expect(page.locator("h1")).to_have_text("登录")  # type: ignore[attr-defined]
    page.fill("#id_username", "alice")  # type: ignore[attr-defined]
    page.fill("#id_password", PASSWORD)  # type: ignore[attr-defined]
    page.click("[data-testid=login-submit]")  # type: ignore[attr-defined]
    expect(page.locator("h1")).to_contain_text("概览")  # type: ignore[attr-defined]
    expect(page.locator("nav#sidenav")).to_contain_text("客户")  # type: ignore[attr-defined]
    screenshot(page, "dashboard-zh")
    page.click("button[data-lang=en]")  # type: ignore[attr-defined]
    expect(page.locator("h1")).to_contain_text("Overview")  # type: ignore[attr-defined]
    expect(page.locator("nav#sidenav")).to_contain_text("Customers")  # type: ignore[attr-defined]
    expect(page.locator("[data-testid=corp-name]")).to_have_text("甲公司 Alpha")  # type: ignore[attr-defined]
    screenshot(page, "dashboard-en")


def test_phone_layout_has_a_menu_button(live_server: object, browser: object, world: World) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)  # type: ignore[attr-defined]
    page = context.new_page()
    base = live_server.url  # type: ignore[attr-defined]
    page.goto(base + "/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("[data-testid=login-submit]")
    nav = page.locator("nav#sidenav")
    expect(nav).to_be_hidden()
    page.click("[data-nav-toggle]")
    expect(nav).to_be_visible()
    screenshot(page, "dashboard-phone-menu")
    context.close()
