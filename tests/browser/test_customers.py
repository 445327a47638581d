from __future__ import annotations

import time

import pytest

from scrm.customers import services
from scrm.customers.models import FollowStatus
from tests.browser.conftest import screenshot
from tests.conftest import PASSWORD, World
from tests.scrm.customers.test_views import seed_customers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def login(page: object, base: str, username: str = "alice") -> None:
    page.goto(base + "/accounts/login/")  # type: ignore[attr-defined]
    page.fill("#id_username", username)  # type: ignore[attr-defined]
    page.fill("#id_password", PASSWORD)  # type: ignore[attr-defined]
    page.click("[data-testid=login-submit]")  # type: ignore[attr-defined]


def test_filter_customers_by_tags_and_open_a_timeline(
    live_server: object, page: object, world: World
) -> None:
    from playwright.sync_api import expect

    seed = seed_customers(world)
    base = live_server.url  # type: ignore[attr-defined]
    login(page, base)
    page.goto(base + "/customers/")  # type: ignore[attr-defined]
    rows = page.locator("[data-testid=customer-table] tbody tr")  # type: ignore[attr-defined]
    expect(rows).to_have_count(4)
    # Has VIP and 北京 (AND), and not 流失风险 (NOT)
    page.click(".tag-filter summary")  # type: ignore[attr-defined]
    page.select_option("[data-testid=tags_all]", [str(seed.tags["VIP"].pk), str(seed.tags["北京"].pk)])  # type: ignore[attr-defined]
    page.select_option("[data-testid=tags_none]", [str(seed.tags["流失风险"].pk)])  # type: ignore[attr-defined]
    page.click("[data-testid=apply-filter]")  # type: ignore[attr-defined]
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-customer", "wmZHANG")
    # The filter stays in the form and in the address
    assert f"tags_all={seed.tags['VIP'].pk}" in page.url  # type: ignore[attr-defined]
    expect(page.locator("[data-testid=tags_all] option:checked")).to_have_count(2)  # type: ignore[attr-defined]
    screenshot(page, "customers-filtered-by-tags")
    # OR: 上海 or 流失风险 → 张三, 李四, 王五
    page.goto(  # type: ignore[attr-defined]
        f"{base}/customers/?tags_any={seed.tags['上海'].pk}&tags_any={seed.tags['流失风险'].pk}"
    )
    expect(rows).to_have_count(3)
    # Open 张三's page: follows of both members, then the timeline, newest first
    page.goto(base + "/customers/")  # type: ignore[attr-defined]
    page.locator("tr[data-customer=wmZHANG] [data-testid=customer-link]").click()  # type: ignore[attr-defined]
    expect(page.locator("[data-testid=customer-profile] h1")).to_contain_text("张三")  # type: ignore[attr-defined]
    expect(page.locator("[data-testid=follows] article")).to_have_count(2)  # type: ignore[attr-defined]
    timeline = page.locator("[data-testid=timeline] li")  # type: ignore[attr-defined]
    expect(timeline).to_have_count(2)
    expect(timeline.nth(0)).to_have_attribute("data-kind", "edited")
    expect(timeline.nth(1)).to_have_attribute("data-kind", "added")
    expect(timeline.nth(1)).to_contain_text("ch-spring")
    screenshot(page, "customer-timeline")


def test_customer_pages_on_a_phone(live_server: object, browser: object, world: World) -> None:
    from playwright.sync_api import expect

    seed_customers(world)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)  # type: ignore[attr-defined]
    page = context.new_page()
    base = live_server.url  # type: ignore[attr-defined]
    login(page, base)
    page.goto(base + "/customers/")
    expect(page.locator("[data-testid=customer-table] tbody tr")).to_have_count(4)
    # No sideways scrolling: the table turns into stacked cards
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    screenshot(page, "customers-phone")
    page.locator("tr[data-customer=wmZHANG] [data-testid=customer-link]").click()
    expect(page.locator("[data-testid=timeline] li")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "customer-timeline-phone")
    context.close()


def test_overview_draws_its_charts(live_server: object, page: object, world: World) -> None:
    from playwright.sync_api import expect

    seed_customers(world)
    now = int(time.time())
    for i, (userid, state) in enumerate([("lilei", "ch-spring"), ("hanmm", "ch-spring"), ("wang", "")] * 4):
        services.follow_apply_event(
            corp=world.corp_a,
            userid=userid,
            external_userid=f"wmNEW{i}",
            event_time=now - i * 86400 * 2,
            rank=services.RANK_ADD,
            status=FollowStatus.ACTIVE,
            state=state,
            timeline_kind="added",
        )
    base = live_server.url  # type: ignore[attr-defined]
    login(page, base)
    page.goto(base + "/?period=30d")  # type: ignore[attr-defined]
    # charts.js marks each canvas once Chart.js (served from node_modules) has drawn it: the 30-day trend,
    # by member and by channel
    expect(page.locator("canvas[data-chart-ready]")).to_have_count(3)  # type: ignore[attr-defined]
    expect(page.locator("[data-period='30d'][data-metric='added']")).to_have_text("12")  # type: ignore[attr-defined]
    screenshot(page, "overview-charts")


def test_group_chart_and_event_replay(live_server: object, page: object, world: World) -> None:
    from datetime import timedelta

    from django.utils import timezone
    from playwright.sync_api import expect

    from scrm.callbacks.models import InboxEvent, InboxStatus
    from scrm.groups import services as groups
    from scrm.groups.models import GroupDailyStat
    from scrm.groups.selectors import SHANGHAI

    now = int(time.time())
    group = groups.group_apply_details(
        corp=world.corp_a,
        chat={
            "chat_id": "wrFANS",
            "name": "粉丝一群",
            "owner": "lilei",
            "member_list": [
                {"userid": "lilei", "type": 1, "join_time": now - 86400 * 9},
                {"userid": "wmZHANG", "type": 2, "join_time": now - 3600},
            ],
        },
    )
    today = timezone.now().astimezone(SHANGHAI).date()
    for days_ago, joins, leaves in [(9, 12, 1), (5, 4, 3), (1, 7, 0)]:
        GroupDailyStat.objects.create(
            corp=world.corp_a, group=group, day=today - timedelta(days=days_ago), joins=joins, leaves=leaves
        )
    failed = InboxEvent.objects.create(
        corp=world.corp_a,
        digest="d1",
        kind="change_external_chat.update",
        lane="events",
        payload="<xml/>",
        event_time=now,
        received_at=timezone.now(),
        status=InboxStatus.FAILED,
        attempts=5,
        last_error="WeComError: 40096 invalid external_userid",
    )
    base = live_server.url  # type: ignore[attr-defined]
    login(page, base)
    page.goto(f"{base}/groups/")  # type: ignore[attr-defined]
    page.click("text=粉丝一群")  # type: ignore[attr-defined]
    expect(page.locator("canvas[data-chart-ready]")).to_have_count(1)  # type: ignore[attr-defined]
    expect(page.locator("[data-testid=group-members] tbody tr")).to_have_count(2)  # type: ignore[attr-defined]
    screenshot(page, "group-detail")
    page.goto(f"{base}/events/?status=failed")  # type: ignore[attr-defined]
    row = page.locator(f"tr[data-event='{failed.pk}']")  # type: ignore[attr-defined]
    expect(row.locator("[data-testid=error-text]")).to_contain_text("40096")
    screenshot(page, "event-inbox")
    row.locator("[data-testid=replay]").click()
    expect(page.locator(".msg")).to_contain_text(str(failed.pk))  # type: ignore[attr-defined]
    failed.refresh_from_db()
    assert failed.status != InboxStatus.FAILED and failed.attempts == 0
