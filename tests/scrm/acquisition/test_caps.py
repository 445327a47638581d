"""Routing caps and schedules: the rule itself, and switching members in WeCom (the sandbox's contact way)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest

from scrm.acquisition import caps, services
from scrm.acquisition.caps import Seat, Usage, routing_plan
from scrm.acquisition.models import ChannelCode, Routing
from tests.scrm.acquisition.conftest import Acq

WED_10 = datetime(2026, 11, 18, 10, 0, 50, tzinfo=caps.SHANGHAI)
SAT_10 = datetime(2026, 11, 21, 10, 0, 50, tzinfo=caps.SHANGHAI)


def plan(seats: list[Seat], usage: dict[str, Usage], now: datetime = WED_10, **kw: Any) -> caps.Plan:
    return routing_plan(
        seats=seats,
        usage=usage,
        per_minute=kw.get("per_minute", 10),
        per_day=kw.get("per_day", 100),
        reaction_s=kw.get("reaction_s", 2.0),
        now_local=now,
    )


def test_margin_grows_with_the_rate_members_are_added() -> None:
    assert Usage(minute=8, day=8, rate=0.1).margin(2.0) == 1
    assert Usage(minute=8, day=8, rate=0.1).room(per_minute=10, per_day=100, reaction_s=2.0)
    assert not Usage(minute=9, day=9, rate=0.1).room(per_minute=10, per_day=100, reaction_s=2.0)
    # 2 adds/s with 2 s to react: four more may land before the removal takes effect.
    assert Usage(minute=5, day=5, rate=2.0).margin(2.0) == 4
    assert not Usage(minute=6, day=6, rate=2.0).room(per_minute=10, per_day=100, reaction_s=2.0)
    assert not Usage(minute=0, day=99, rate=0.1).room(per_minute=10, per_day=100, reaction_s=2.0)


def test_members_then_backups_then_paused() -> None:
    a, b, backup = Seat("a"), Seat("b"), Seat("z", backup=True)
    assert plan([a, b, backup], {}).users == ("a", "b")
    p = plan([a, b, backup], {"a": Usage(9, 9)})
    assert p.routing == "primary" and p.users == ("b",) and p.capped == ("a",)
    p = plan([a, b, backup], {"a": Usage(9, 9), "b": Usage(10, 10)})
    assert p.routing == "backup" and p.users == ("z",)
    p = plan([a, b, backup], {"a": Usage(9, 9), "b": Usage(10, 10), "z": Usage(0, 99)}, per_day=100)
    assert p.routing == "paused" and p.users == ()


def test_schedules_pick_who_is_on_duty() -> None:
    office = Seat("a", weekdays=(0, 1, 2, 3, 4), start=time(9), end=time(18))
    night = Seat("b", start=time(18), end=time(9))
    weekend_backup = Seat("z", backup=True)
    assert plan([office, night, weekend_backup], {}, now=WED_10).users == ("a",)
    assert plan([office, night, weekend_backup], {}, now=WED_10.replace(hour=22)).users == ("b",)
    p = plan([office, night, weekend_backup], {}, now=SAT_10)
    assert p.routing == "backup" and p.users == ("z",) and set(p.off_duty) == {"a", "b"}
    assert plan([Seat("a", available=False), Seat("b")], {}).users == ("b",)


def test_counting_is_once_per_event_and_per_window() -> None:
    t = int(WED_10.timestamp())
    code_id = 987654321
    for i in range(3):
        caps.caps_count_add(code_id=code_id, userid="u", external_userid=f"c{i}", event_time=t)
    usage, new = caps.caps_count_add(code_id=code_id, userid="u", external_userid="c0", event_time=t)
    assert not new and usage.minute == 3 and usage.day == 3
    later, _ = caps.caps_count_add(code_id=code_id, userid="u", external_userid="c9", event_time=t + 60)
    assert later.minute == 1 and later.day == 4
    assert caps.caps_usage(code_id=code_id, userids=["u"], now=t + 61)["u"].minute == 1


@pytest.mark.django_db
def test_caps_and_schedules_switch_members_in_wecom(acq: Acq) -> None:
    a, b, z = acq.members(3)
    seats = [
        services.SeatInput(member=a, weekdays=(0, 1, 2, 3, 4)),
        services.SeatInput(member=b),
        services.SeatInput(member=z, backup=True),
    ]
    code = services.code_create(corp=acq.corp, name="周中", seats=seats, per_minute_cap=5, per_day_cap=8)

    def way() -> dict[str, Any]:
        return next(w for w in acq.data("contact_ways") if w["config_id"] == code.config_id)

    spread = iter(range(0, 40, 3))

    def count(userid: str, n: int, at: datetime) -> None:
        """n adds earlier in `at`'s minute, a few seconds apart: a slow trickle, so the margin is 1."""
        minute_start = int(at.timestamp()) // 60 * 60
        for i in range(n):
            t = minute_start + next(spread)
            caps.caps_count_add(
                code_id=code.pk, userid=userid, external_userid=f"{userid}-{t}-{i}", event_time=t
            )

    services.code_rebalance(corp=acq.corp, code_id=code.pk, now=WED_10)
    assert way()["user"] == [a.userid, b.userid] and way()["skip_verify"] is True
    # Saturday: a is off duty.
    services.code_rebalance(corp=acq.corp, code_id=code.pk, now=SAT_10)
    assert way()["user"] == [b.userid]
    # Wednesday again; a reaches its minute cap (minus the one-add margin): taken off.
    count(a.userid, 4, WED_10)
    services.code_rebalance(corp=acq.corp, code_id=code.pk, now=WED_10)
    assert way()["user"] == [b.userid]
    # b too: the backup takes over.
    count(b.userid, 4, WED_10)
    services.code_rebalance(corp=acq.corp, code_id=code.pk, now=WED_10)
    assert way()["user"] == [z.userid]
    assert ChannelCode.objects.get(pk=code.pk).routing == Routing.BACKUP
    # And the backup: nobody left, the code pauses — members must confirm each customer — and admins see why.
    count(z.userid, 4, WED_10)
    services.code_rebalance(corp=acq.corp, code_id=code.pk, now=WED_10)
    assert way()["skip_verify"] is False
    paused = ChannelCode.objects.get(pk=code.pk)
    assert paused.routing == Routing.PAUSED and paused.alert
    # The minute passes: everyone has room again (day counts 4 of 8, margin 1).
    services.code_rebalance(corp=acq.corp, code_id=code.pk, now=WED_10 + timedelta(minutes=1))
    assert way()["user"] == [a.userid, b.userid] and way()["skip_verify"] is True
    resumed = ChannelCode.objects.get(pk=code.pk)
    assert resumed.routing == Routing.PRIMARY and resumed.alert == ""
    # Nothing changed: WeCom is not called again.
    updates = acq.calls("externalcontact/update_contact_way")
    services.code_rebalance(corp=acq.corp, code_id=code.pk, now=WED_10 + timedelta(minutes=1))
    assert acq.calls("externalcontact/update_contact_way") == updates
    # The day cap holds across minutes: a at 7 of 8 today is off for the rest of the day.
    spread = iter(range(0, 40, 3))
    count(a.userid, 3, WED_10 + timedelta(minutes=2))
    services.code_rebalance(corp=acq.corp, code_id=code.pk, now=WED_10 + timedelta(minutes=3))
    assert way()["user"] == [b.userid]
    services.code_rebalance(corp=acq.corp, code_id=code.pk, now=WED_10 + timedelta(days=1))
    assert way()["user"] == [a.userid, b.userid]
