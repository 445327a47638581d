"""The sensitive-word page in Chromium: an admin adds a pattern, tries a text and sees the words marked."""

from __future__ import annotations

import pytest

from scrm.compliance.models import CorpWord
from tests.browser.conftest import screenshot
from tests.conftest import PASSWORD, World

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page: object, base: str, username: str) -> None:
    page.goto(base + "/accounts/login/")  # type: ignore[attr-defined]
    page.fill("#id_username", username)  # type: ignore[attr-defined]
    page.fill("#id_password", PASSWORD)  # type: ignore[attr-defined]
    page.click("[data-testid=login-submit]")  # type: ignore[attr-defined]


def test_admin_adds_a_word_and_sees_it_highlighted(live_server: object, page: object, world: World) -> None:
    from playwright.sync_api import expect

    base = live_server.url  # type: ignore[attr-defined]
    log_in(page, base, "alice")
    page.click("nav#sidenav a[href='/compliance/words/']")  # type: ignore[attr-defined]
    expect(page.locator("#gate-try")).to_be_visible()  # type: ignore[attr-defined]

    # The built-in list is folded by category.
    gambling = page.locator("[data-testid=gate-category][data-category=gambling]")  # type: ignore[attr-defined]
    expect(gambling.get_by_text("六合彩")).to_be_hidden()
    gambling.locator("summary").click()
    expect(gambling.get_by_text("六合彩")).to_be_visible()

    page.fill("#id_word", "加*微信")  # type: ignore[attr-defined]
    page.click("[data-testid=gate-word-submit]")  # type: ignore[attr-defined]
    expect(page.locator("[data-testid=gate-corp-word][data-word='加*微信']")).to_be_visible()  # type: ignore[attr-defined]
    assert CorpWord.objects.get(corp=world.corp_a).added_by == world.alice

    page.fill("#id_text", "欢迎！<b>加我 私人微信</b>，诚心招代理")  # type: ignore[attr-defined]
    page.click("[data-testid=gate-try-submit]")  # type: ignore[attr-defined]
    result = page.locator("[data-testid=gate-try-result]")  # type: ignore[attr-defined]
    expect(result).to_have_attribute("data-action", "block")
    marks = result.locator("mark.sensitive")
    expect(marks).to_have_count(2)
    expect(marks.nth(0)).to_have_text("加我 私人微信")
    assert "加*微信" in (marks.nth(0).get_attribute("title") or "")
    expect(marks.nth(1)).to_have_text("诚心招代理")
    # The tags in the text are shown as text, never as markup.
    expect(result.locator("[data-testid=gate-try-preview] b")).to_have_count(0)
    expect(result.locator("[data-testid=gate-try-preview]")).to_contain_text("<b>")
    # Marked in colour by the gate's stylesheet.
    background = marks.nth(0).evaluate("el => getComputedStyle(el).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 0)"), background
    # htmx swapped the box in place: still on the words page, the text kept for editing.
    assert page.url.endswith("/compliance/words/")  # type: ignore[attr-defined]
    expect(page.locator("#id_text")).to_have_value("欢迎！<b>加我 私人微信</b>，诚心招代理")  # type: ignore[attr-defined]
    screenshot(page, "compliance-try-a-text")


def test_operators_do_not_see_the_page(live_server: object, page: object, world: World) -> None:
    from playwright.sync_api import expect

    base = live_server.url  # type: ignore[attr-defined]
    log_in(page, base, "bob")
    expect(page.locator("nav#sidenav")).to_be_visible()  # type: ignore[attr-defined]
    expect(page.locator("nav#sidenav a[href='/compliance/words/']")).to_have_count(0)  # type: ignore[attr-defined]
    response = page.goto(base + "/compliance/words/")  # type: ignore[attr-defined]
    assert response.status == 403
