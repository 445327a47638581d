"""A broadcast end to end in the browser: an operator composes it (a sensitive word highlighted), the
preview shows who is left out and why, an admin approves, a real bulk worker creates the templates in the
sandbox, and the report shows progress, each member's confirmation and the results."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from scrm.campaigns import services
from scrm.campaigns.models import Broadcast, SendChunk
from scrm.compliance.services import corp_word_add, gate_policy_set
from scrm.customers.models import Customer, Tag
from tests.browser.conftest import screenshot
from tests.conftest import PASSWORD
from tests.scrm.acquisition.conftest import wait_for
from tests.scrm.campaigns.conftest import Camp, bulk_worker, camp  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page: Any, base: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(base + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("[data-testid=login-submit]")


def test_compose_preview_approve_send_report(
    live_server: Any,
    page: Any,
    camp: Camp,  # noqa: F811  (fixture by name)
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    camp.seed(members=3, customers=40, follows=50, tag_groups=2, seed=21)
    dnd = Tag.objects.filter(corp=camp.corp).order_by("pk").first()
    assert dnd is not None
    services.settings_save(
        corp=camp.corp,
        quota_rule="days_of_month",
        churn_threshold=Decimal("1"),
        approval_required=True,
        dnd_tag=dnd,
    )
    gate_policy_set(corp=camp.corp, action="approval")
    corp_word_add(corp=camp.corp, word="内部价")
    opted_out = Customer.objects.filter(
        corp=camp.corp, active_follows__gt=0, tag_ids__contains=[dnd.pk]
    ).count()
    never = (
        Customer.objects.filter(corp=camp.corp, active_follows__gt=0)
        .exclude(tag_ids__contains=[dnd.pk])
        .first()
    )
    assert never is not None and opted_out > 0
    base = live_server.url

    log_in(page, base, "bob")
    page.goto(base + "/broadcasts/")
    page.click("[data-testid=broadcast-create]")
    page.fill("#id_name", "会员日")
    page.fill("#id_text", "会员日内部价，今晚八点开抢")
    page.fill("#id_exclude", never.external_userid)
    page.click("[data-testid=broadcast-save]")
    expect(page.locator("[data-testid=broadcast-text] mark.sensitive")).to_have_text("内部价")
    expected = camp.customers() - opted_out - 1
    expect(page.locator("[data-testid=preview-total]")).to_have_text(str(expected))
    expect(page.locator("[data-reason=dnd] td.num")).to_have_text(str(opted_out))
    expect(page.locator("[data-reason=excluded] td.num")).to_have_text("1")
    screenshot(page, "broadcast-preview")
    page.click("[data-testid=broadcast-submit]")
    expect(page.locator("[data-testid=broadcast-status]")).to_have_attribute("data-status", "pending")
    expect(page.locator("[data-testid=broadcast-approve]")).to_have_count(0)  # operators don't approve
    b = Broadcast.objects.get(corp=camp.corp, name="会员日")

    with bulk_worker(tmp_path=tmp_path) as w:
        log_in(page, base, "alice")
        page.goto(f"{base}/broadcasts/{b.pk}/")
        page.click("[data-testid=broadcast-approve]")
        wait_for(
            lambda: Broadcast.objects.filter(pk=b.pk, status=Broadcast.Status.SENT).exists(),
            timeout=60,
            what=f"the templates to be created\n{w.output()}",
        )
    chunks = SendChunk.objects.filter(broadcast=b).count()
    assert len(camp.templates()) == chunks
    services.broadcast_poll(broadcast_id=b.pk, now=timezone.now() + timedelta(seconds=5))  # the beat's poll
    page.goto(f"{base}/broadcasts/{b.pk}/")
    expect(page.locator("[data-testid=progress]")).to_have_attribute("value", "100")
    expect(page.locator("[data-testid=report-recipients]")).to_have_text(str(expected))
    expect(page.locator("[data-testid=sender-row]")).to_have_count(chunks)
    expect(page.locator("[data-testid=sender-row][data-confirmed='1']")).to_have_count(chunks)
    expect(page.locator("canvas[data-chart-source=result-chart]")).to_be_visible()
    screenshot(page, "broadcast-report")
    assert camp.findings()["over_quota"] == 0
