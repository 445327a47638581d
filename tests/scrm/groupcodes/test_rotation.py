"""Rotation of official group codes against the sandbox: at the threshold, with a margin from the join
rate in bursts, under a lock, and WeCom's auto-created rooms once the pool is used up."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.test import override_settings

from scrm.groupcodes import rotation, selectors, services
from scrm.groupcodes.models import GroupCode, Notice, PoolGroup, Rotation
from scrm.groups.models import CustomerGroup
from tests.scrm.groupcodes.conftest import Gc

SLOW_NONE = override_settings(GROUPCODE_REACTION_SECONDS=0.001)  # margin 1: one join in flight


def test_plan_takes_first_open_groups_and_marks_near_full() -> None:
    slots = [rotation.Slot(i, f"c{i}", m) for i, m in enumerate([9, 5, 2, 0, 0, 0, 0])]
    plan = rotation.plan_way(slots=slots, capacity=10, margin=1, width=5)
    assert plan.chat_ids == ("c1", "c2", "c3", "c4", "c5") and plan.newly_full == (0,)
    assert not plan.exhausted
    plan = rotation.plan_way(slots=slots, capacity=10, margin=6, width=5)
    assert plan.newly_full == (0, 1) and plan.chat_ids == ("c2", "c3", "c4", "c5", "c6") and plan.exhausted
    # Nothing open: what WeCom holds stays, so the way remains valid for WeCom's auto-create.
    full = [rotation.Slot(0, "c0", 10, full=True)]
    assert rotation.plan_way(slots=full, capacity=10, margin=1, width=5, applied=["c0"]).chat_ids == ("c0",)
    assert rotation.margin_of(rate=0, reaction_s=2) == 1 and rotation.margin_of(rate=7, reaction_s=2) == 14


@SLOW_NONE
def test_rotates_at_the_threshold_and_auto_creates_when_exhausted(gc: Gc) -> None:
    gc.sb.settings(gc.corp.corp_id, qr_capacity=6)
    pool = gc.groups(7)
    code = services.code_create(corp=gc.corp, name="福利群", groups=pool, capacity=6, room_base_name="福利")
    assert code.config_id and code.qr_png
    way = gc.way(code.config_id)
    assert way["chat_id_list"] == [g.chat_id for g in pool[:5]]
    assert way["auto_create_room"] == 0 and way["state"] == code.state
    for _ in range(4):  # owner + 4 = 5 members: 5 + margin 1 reaches 6
        gc.join(code.config_id)
    way = gc.way(code.config_id)
    assert way["chat_id_list"] == [g.chat_id for g in pool[1:6]]
    assert PoolGroup.objects.get(code=code, group=pool[0]).status == PoolGroup.Status.FULL
    assert CustomerGroup.objects.get(pk=pool[0].pk).member_count == 5
    (r,) = Rotation.objects.filter(code=code, kind=Rotation.Kind.ROTATE)
    assert r.removed == [pool[0].chat_id] and r.added == [pool[5].chat_id] and r.margin == 1
    assert gc.calls("externalcontact/groupchat/update_join_way") == 1
    for _ in range(4):
        gc.join(code.config_id)
    # Group 2 is out: groups 3–7 are the last of the pool, so WeCom may create rooms from now on.
    way = gc.way(code.config_id)
    assert way["chat_id_list"] == [g.chat_id for g in pool[2:7]]
    assert way["auto_create_room"] == 1 and way["room_base_name"] == "福利"
    assert Notice.objects.filter(code=code, kind=Notice.Kind.EXHAUSTED).count() == 1
    # Stats by code and group, and joins attributed by `state` once groupchat/get is read.
    stats = selectors.code_stats(corp=gc.corp, code=code, days=1)
    assert stats.joins == 8 and {g.entry.group_id: g.joins for g in stats.groups}[pool[0].pk] == 4
    assert gc.findings()["capacity"] == 0


@SLOW_NONE
def test_wecom_creates_rooms_when_the_pool_is_used_up(gc: Gc) -> None:
    gc.sb.settings(gc.corp.corp_id, qr_capacity=3)
    (g,) = gc.groups(1)
    code = services.code_create(corp=gc.corp, name="满了", groups=[g], capacity=3, room_base_name="新群")
    assert gc.way(code.config_id)["auto_create_room"] == 1  # the pool is used up from the start
    assert Notice.objects.filter(code=code, kind=Notice.Kind.EXHAUSTED).exists()
    gc.join(code.config_id)
    gc.join(code.config_id)  # the only group is full (3): the next scan makes WeCom open a room
    detail = gc.join(code.config_id, apply=False)
    assert detail["chat_id"] != g.chat_id
    from wecom.sandbox.events import change_external_chat

    gc.apply(change_external_chat(gc.corp.corp_id, time.time(), detail["chat_id"], "create"))
    gc.apply(detail["xml"])
    entry = PoolGroup.objects.get(code=code, group__chat_id=detail["chat_id"])
    assert entry.auto_created and entry.status == PoolGroup.Status.SERVING
    code.refresh_from_db()
    assert code.room_base_id == 2 and detail["chat_id"] in code.applied_chat_ids
    assert Notice.objects.filter(code=code, kind=Notice.Kind.AUTO_CREATED).count() == 1
    assert Rotation.objects.filter(code=code, kind=Rotation.Kind.AUTO_CREATE).count() == 1
    assert gc.findings()["capacity"] == 0


def test_a_burst_rotates_early_by_the_join_rate(gc: Gc) -> None:
    """Reaction budget 2 s (the default): a trickle keeps a margin of 2; a burst raises it, up to a quarter
    of the places (5 of 20), so the group leaves the code early but never half empty."""
    gc.sb.settings(gc.corp.corp_id, qr_capacity=20)
    pool = gc.groups(3)
    code = services.code_create(corp=gc.corp, name="爆发", groups=pool, capacity=20)
    t = time.time()
    for i in range(8):  # one join every 10 s: owner + 8 = 9 members, margin 2
        gc.join(code.config_id, ts=t - 100 + 10 * i)
    assert not Rotation.objects.filter(code=code, kind=Rotation.Kind.ROTATE).exists()
    for _ in range(7):  # then seven in one second
        gc.join(code.config_id, ts=t)
    (r,) = Rotation.objects.filter(code=code, kind=Rotation.Kind.ROTATE)
    assert r.margin == 5 and r.trigger_members is not None and r.trigger_members + r.margin >= 20
    assert r.trigger_members < 19  # a trickle would have waited for 19
    assert rotation.margin_of(rate=50, reaction_s=60, capacity=200) == 50  # a lagging lane can't run away
    assert rotation.margin_of(rate=7, reaction_s=2, capacity=200) == 14
    assert gc.way(code.config_id)["chat_id_list"] == [g.chat_id for g in pool[1:]]


@pytest.mark.django_db(transaction=True)
@SLOW_NONE
def test_two_events_crossing_together_rotate_once(gc: Gc) -> None:
    gc.sb.settings(gc.corp.corp_id, qr_capacity=6)
    pool = gc.groups(3)
    code = services.code_create(corp=gc.corp, name="并发", groups=pool, capacity=6)
    for _ in range(5):
        gc.join(code.config_id, apply=False)  # WeCom's group is near full; our count catches up below
    CustomerGroup.objects.filter(pk=pool[0].pk).update(member_count=5)
    # WeCom answers slowly, so the second rotation waits on the first one's lock.
    gc.sb.limits(gc.corp.corp_id, api="externalcontact/groupchat/update_join_way", latency_ms=400)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def rotate() -> None:
        try:
            barrier.wait()
            services.code_rotate(corp=gc.corp, code_id=code.pk, trigger=services.Trigger(pool[0].chat_id, 5))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=rotate) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert Rotation.objects.filter(code=code, kind=Rotation.Kind.ROTATE).count() == 1
    assert gc.calls("externalcontact/groupchat/update_join_way") == 1
    assert GroupCode.objects.get(pk=code.pk).applied_chat_ids == [g.chat_id for g in pool[1:]]


@SLOW_NONE
def test_replayed_event_counts_once_and_dismissed_group_leaves_the_code(gc: Gc) -> None:
    pool = gc.groups(2)
    code = services.code_create(corp=gc.corp, name="重放", groups=pool, capacity=200)
    d = gc.join(code.config_id)
    gc.apply(d["xml"])  # WeCom retried, or an admin replayed the event
    stats = selectors.code_stats(corp=gc.corp, code=code, days=1)
    assert stats.joins == 1
    gc.world("dismiss_group", chat_id=pool[0].chat_id, deliver=False)
    from wecom.sandbox.events import change_external_chat

    gc.apply(change_external_chat(gc.corp.corp_id, time.time(), pool[0].chat_id, "dismiss"))
    assert gc.way(code.config_id)["chat_id_list"] == [pool[1].chat_id]


def test_wecom_refusal_is_shown_in_plain_language(gc: Gc) -> None:
    pool = gc.groups(2)
    code = services.code_create(corp=gc.corp, name="拒绝", groups=pool[:1], capacity=200)
    # The group was dismissed in WeCom a moment ago; its event has not reached us yet.
    gc.world("dismiss_group", chat_id=pool[1].chat_id, deliver=False)
    services.pool_add(corp=gc.corp, code=code, groups=[pool[1]])
    code.refresh_from_db()
    assert code.alert_errcode == 40050 and "40050" in code.alert
    assert Rotation.objects.filter(code=code, kind=Rotation.Kind.FAILED).count() == 1
    assert Notice.objects.filter(code=code, kind=Notice.Kind.ROTATION_FAILED).count() == 1
    from wecom.sandbox.events import change_external_chat

    gc.apply(change_external_chat(gc.corp.corp_id, time.time(), pool[1].chat_id, "dismiss"))
    code.refresh_from_db()
    assert not code.alert and code.applied_chat_ids == [pool[0].chat_id]
