from __future__ import annotations

import pytest

from scrm.customers import services
from scrm.customers.models import Customer, Follow, FollowStatus, Tag, TagGroup
from tests.conftest import World


def _tags(world: World) -> list[Tag]:
    group = TagGroup.objects.create(corp=world.corp_a, group_id="g1", name="等级")
    return [
        Tag.objects.create(corp=world.corp_a, group=group, tag_id=f"t{i}", name=f"T{i}") for i in range(3)
    ]


@pytest.mark.django_db
def test_customer_tags_are_the_union_of_live_follows(world: World) -> None:
    t0, t1, t2 = _tags(world)
    f1_id = services.follow_apply_event(
        corp=world.corp_a,
        userid="m1",
        external_userid="wmX",
        event_time=1,
        rank=services.RANK_ADD,
        status=FollowStatus.ACTIVE,
        timeline_kind="added",
    )
    f2_id = services.follow_apply_event(
        corp=world.corp_a,
        userid="m2",
        external_userid="wmX",
        event_time=2,
        rank=services.RANK_ADD,
        status=FollowStatus.ACTIVE,
        timeline_kind="added",
    )
    f1, f2 = Follow.objects.get(pk=f1_id), Follow.objects.get(pk=f2_id)
    services.follow_set_tags(corp=world.corp_a, follow=f1, tag_ids=["t0", "t1", "unknown"])
    services.follow_change_tags(corp=world.corp_a, follow=f2, add=["t2"], remove=[])
    customer = Customer.objects.get(external_userid="wmX")
    assert customer.tag_ids == sorted([t0.pk, t1.pk, t2.pk])
    assert customer.member_ids == sorted([f1.member_id, f2.member_id]) and customer.active_follows == 2
    # A follow deleted by the customer no longer contributes its tags or its member
    services.follow_apply_event(
        corp=world.corp_a,
        userid="m2",
        external_userid="wmX",
        event_time=3,
        rank=services.RANK_DELETE,
        status=FollowStatus.DELETED_BY_CUSTOMER,
        timeline_kind="deleted_by_customer",
    )
    customer.refresh_from_db()
    assert customer.tag_ids == sorted([t0.pk, t1.pk]) and customer.member_ids == [f1.member_id]
    # Deleting a tag in WeCom removes it everywhere
    services.tags_mark_deleted(corp=world.corp_a, tag_ids=["t0"])
    customer.refresh_from_db()
    assert customer.tag_ids == [t1.pk]
    assert Follow.objects.get(pk=f1.pk).tag_ids == [t1.pk]
    assert Tag.objects.get(pk=t0.pk).deleted


@pytest.mark.django_db
def test_a_read_from_wecom_never_undoes_a_deletion_by_the_customer(world: World) -> None:
    services.follow_apply_event(
        corp=world.corp_a, userid="m1", external_userid="wmGONE", event_time=5, rank=services.RANK_DELETE,
        status=FollowStatus.DELETED_BY_CUSTOMER, timeline_kind="deleted_by_customer",
    )  # fmt: skip
    customer = Customer.objects.get(external_userid="wmGONE")
    # WeCom still lists the customer on the member's side after del_follow_user
    services.customer_apply_contact(
        corp=world.corp_a,
        contact={"external_userid": "wmGONE", "name": "走了"},
        follow_users=[{"userid": "m1", "remark": "r", "createtime": 1}],
    )
    follow = Follow.objects.get(customer=customer, member__userid="m1")
    assert follow.status == FollowStatus.DELETED_BY_CUSTOMER and follow.remark == "r"
    customer.refresh_from_db()
    assert customer.active_follows == 0
