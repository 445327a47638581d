"""An admin presses the sync button and watches the progress bar move (htmx polling), phone and laptop."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from django.db import connection

from scrm.sync import services
from scrm.sync.models import SyncRun
from tests.browser.conftest import screenshot
from tests.conftest import PASSWORD, World
from tests.scrm.sync.conftest import link
from wecom.sandbox.testing import sandbox, sandbox_server  # noqa: F401  (fixtures by name)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BETWEEN_0_AND_100 = re.compile(r"^([1-9]|[1-9][0-9])%$")


def _worker(run_id: int) -> None:
    """Stands in for the bulk-lane Celery worker: runs the task's service in its own thread."""

    def work() -> None:
        try:
            services.full_sync_execute(run_id=run_id)
        finally:
            connection.close()

    threading.Thread(target=work, daemon=True).start()


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}])
def test_admin_starts_a_sync_and_watches_it_finish(
    live_server: Any,
    browser: Any,
    world: World,
    sandbox: Any,  # noqa: F811  (fixture by name)
    monkeypatch: pytest.MonkeyPatch,
    viewport: dict[str, int],
) -> None:
    from playwright.sync_api import expect

    linked = link(sandbox, world.corp_a)
    seeded = linked.seed(members=4, customers=120, groups=6, group_size=5, seed=9)
    # Slow pages, so the bar is seen between 0 and 100 %.
    sandbox.limits(world.corp_a.corp_id, api="externalcontact/batch/get_by_user", latency_ms=250)
    monkeypatch.setattr(services, "PAGE_LIMIT", 10)
    monkeypatch.setattr(services, "_enqueue", _worker)

    context = browser.new_context(viewport=viewport, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("[data-testid=login-submit]")
    page.goto(live_server.url + "/settings/corp/")
    panel = page.locator("[data-testid=sync-panel]")
    expect(panel.locator("[data-testid=sync-start]")).to_be_enabled()  # no run yet
    page.click("[data-testid=sync-start]")
    # The block is swapped in place and polls: a percentage strictly between 0 and 100 shows up…
    expect(panel.locator("[data-testid=sync-status]")).to_have_attribute("class", "badge")
    expect(panel.locator("[data-testid=sync-percent]")).to_have_text(BETWEEN_0_AND_100, timeout=20_000)
    screenshot(page, f"sync-running-{viewport['width']}")
    # …then the finished run, without reloading the page.
    expect(panel.locator("#sync-progress")).to_have_attribute("data-status", "done", timeout=30_000)
    expect(panel.locator("[data-testid=sync-percent]")).to_have_text("100%")
    expect(panel.locator("[data-testid=sync-customers]")).to_have_text(str(seeded["customers"]))
    expect(panel.locator("[data-testid=sync-follows]")).to_have_text(str(seeded["follows"]))
    expect(panel.locator("[data-testid=sync-groups]")).to_have_text(str(seeded["groups"]))
    screenshot(page, f"sync-done-{viewport['width']}")
    assert SyncRun.objects.get(corp=world.corp_a).status == SyncRun.Status.DONE
    # The overview shows the same block.
    page.goto(live_server.url + "/")
    expect(page.locator("[data-testid=sync-percent]")).to_have_text("100%")
    # Nothing overflows sideways on a phone.
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    context.close()
