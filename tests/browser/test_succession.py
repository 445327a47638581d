"""Succession in the dashboard: a leaving member's 1,000 customers handed over, with the sandbox playing
WeCom (refusals, a successor cap, the 24-hour window passed on its virtual clock), and the outcomes shown."""

from __future__ import annotations

from collections import Counter

import pytest

from scrm.succession import services
from scrm.succession.models import Handover, HandoverItem
from tests.browser.conftest import screenshot
from tests.browser.test_tags import log_in
from tests.scrm.succession.conftest import Succ, succ  # noqa: F401  (fixture by name)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_leaver_handover_of_1000_customers_with_mixed_outcomes(
    live_server: object,
    page: object,
    succ: Succ,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    base = live_server.url  # type: ignore[attr-defined]
    leaver, (a, b) = succ.setup(customers=1000)
    leaver = succ.resign(leaver)
    succ.sb.settings(succ.corp.corp_id, transfer_refuse_rate=0.2, member_customer_cap=350)

    log_in(page, base, "alice")
    page.goto(base + "/succession/")  # type: ignore[attr-defined]
    row = page.locator(f"[data-testid=leavers] tr[data-userid='{leaver.userid}']")  # type: ignore[attr-defined]
    expect(row).to_contain_text("1000")
    row.locator("[data-testid=hand-over]").click()
    page.check("input[name=rule][value=least_loaded]")  # type: ignore[attr-defined]
    page.check(f"input[name=candidates][value='{a.pk}']")  # type: ignore[attr-defined]
    page.check(f"input[name=candidates][value='{b.pk}']")  # type: ignore[attr-defined]
    page.click("[data-testid=preview]")  # type: ignore[attr-defined]
    preview = page.locator("[data-testid=preview-result]")  # type: ignore[attr-defined]
    expect(preview).to_contain_text("1000")
    expect(page.locator("[data-testid=preview-successors] tbody tr")).to_have_count(2)  # type: ignore[attr-defined]
    page.click("[data-testid=confirm]")  # type: ignore[attr-defined]
    expect(page.locator("[data-testid=handover-status]")).to_be_visible()  # type: ignore[attr-defined]
    handover = Handover.objects.get(member=leaver)

    # The bulk lane's work: requests in chunks of 100, then results polled after WeCom's 24 hours.
    services.handover_run(handover_id=handover.pk)
    assert sorted(len(r["customer"]) for r in succ.transfer_requests()) == [100] * 10
    succ.sb.advance(25 * 3600)
    services.handover_poll(handover_id=handover.pk)
    outcome = Counter(HandoverItem.objects.filter(handover=handover).values_list("status", flat=True))
    assert outcome["done"] and outcome["refused"] and outcome["over_cap"]
    assert sum(outcome.values()) == 1000

    page.reload()  # type: ignore[attr-defined]
    for status in ("done", "refused", "over_cap"):
        expect(page.locator(f"[data-testid=customers-{status}]")).to_have_text(str(outcome[status]))  # type: ignore[attr-defined]
    expect(page.locator("[data-testid=handover-status]")).to_have_text("已完成")  # type: ignore[attr-defined]
    page.select_option("[data-testid=status-filter]", "refused")  # type: ignore[attr-defined]
    page.click("[data-testid=filter]")  # type: ignore[attr-defined]
    rows = page.locator("[data-testid=items] tbody tr")  # type: ignore[attr-defined]
    expect(rows).to_have_count(min(50, outcome["refused"]))
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.itemStatus)")) == {"refused"}
    screenshot(page, "succession_handover")
