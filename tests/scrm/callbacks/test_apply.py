"""Events through the real endpoint, then applied as a worker would: idempotent and order-safe."""

from __future__ import annotations

import pytest
from django.test import Client

from scrm.callbacks.apply import inbox_process, inbox_replay
from scrm.callbacks.models import InboxEvent, InboxStatus
from scrm.customers.models import Customer, Follow, FollowStatus, Member, Tag, TagGroup, TimelineEntry
from scrm.groups.models import CustomerGroup, GroupDailyStat, GroupMember
from tests.conftest import World
from tests.scrm.callbacks.helpers import fixture_xml, post_callback

EXT = "wmAJ2GCAAAXtWyujaWJHDDGi0mAAAA"


def deliver(world: World, name: str, **fields: str) -> InboxEvent | None:
    """POSTs a fixture callback and applies it; returns the stored row (None for a repeat)."""
    xml = fixture_xml(name, world.corp_a, **fields)
    before = set(InboxEvent.objects.values_list("pk", flat=True))
    assert post_callback(Client(), world.corp_a, xml).status_code == 200
    new = InboxEvent.objects.exclude(pk__in=before).first()
    if new is not None:
        inbox_process(event_id=new.pk)
        new.refresh_from_db()
    return new


def follow(world: World, userid: str = "zhangsan", ext: str = EXT) -> Follow:
    return Follow.objects.get(corp=world.corp_a, member__userid=userid, customer__external_userid=ext)


def contact_event(name: str, t: int, **extra: str) -> dict[str, str]:
    return {"CreateTime": str(t), "UserID": "zhangsan", "ExternalUserID": EXT, **extra}


@pytest.mark.django_db
def test_add_creates_member_customer_follow_and_timeline(world: World) -> None:
    row = deliver(
        world,
        "change_external_contact.add_external_contact",
        **contact_event("add", 1700000000, State="store_qr"),
    )
    assert row is not None and row.status == InboxStatus.DONE
    f = follow(world)
    assert f.status == FollowStatus.ACTIVE and f.state == "store_qr"
    assert f.added_at is not None and int(f.added_at.timestamp()) == 1700000000
    assert Customer.objects.get(corp=world.corp_a, external_userid=EXT).first_added_at == f.added_at
    assert TimelineEntry.objects.filter(customer=f.customer, kind="added").count() == 1
    # Replaying the same inbox event changes nothing and writes no second timeline entry
    inbox_replay(corp=world.corp_a, event_id=row.pk)
    inbox_process(event_id=row.pk)
    assert TimelineEntry.objects.filter(customer=f.customer).count() == 1
    assert Follow.objects.count() == 1


@pytest.mark.django_db
def test_delete_before_its_add_keeps_the_delete(world: World) -> None:
    deliver(world, "change_external_contact.del_follow_user", **contact_event("del", 1700000100))
    assert follow(world).status == FollowStatus.DELETED_BY_CUSTOMER
    deliver(world, "change_external_contact.add_external_contact", **contact_event("add", 1700000000))
    f = follow(world)
    assert f.status == FollowStatus.DELETED_BY_CUSTOMER  # the older add does not resurrect it
    assert f.added_at is not None and int(f.added_at.timestamp()) == 1700000000  # but fills in when it began
    # A later re-add does
    deliver(world, "change_external_contact.add_external_contact", **contact_event("add", 1700000200))
    assert follow(world).status == FollowStatus.ACTIVE


@pytest.mark.django_db
def test_edit_before_its_add_and_deletes_by_member_and_transfer(world: World) -> None:
    deliver(world, "change_external_contact.edit_external_contact", **contact_event("edit", 1700000050))
    assert follow(world).status == FollowStatus.ACTIVE
    deliver(world, "change_external_contact.add_external_contact", **contact_event("add", 1700000000))
    assert follow(world).status == FollowStatus.ACTIVE
    deliver(
        world, "change_external_contact.del_external_contact", **contact_event("del", 1700000300, Source="")
    )
    assert follow(world).status == FollowStatus.DELETED_BY_MEMBER
    xml_fields = contact_event("del", 1700000400, Source="DELETE_BY_TRANSFER")
    deliver(world, "change_external_contact.del_external_contact", **xml_fields)
    assert follow(world).status == FollowStatus.TRANSFERRED


@pytest.mark.django_db
def test_same_second_delete_wins_over_add(world: World) -> None:
    deliver(world, "change_external_contact.del_follow_user", **contact_event("del", 1700000000))
    deliver(world, "change_external_contact.add_external_contact", **contact_event("add", 1700000000))
    assert follow(world).status == FollowStatus.DELETED_BY_CUSTOMER


@pytest.mark.django_db
def test_add_half_and_transfer_fail(world: World) -> None:
    deliver(world, "change_external_contact.add_half_external_contact", **contact_event("half", 1700000000))
    assert follow(world).status == FollowStatus.ACTIVE
    deliver(world, "change_external_contact.transfer_fail", **contact_event("fail", 1700000500))
    entry = TimelineEntry.objects.get(kind="transfer_failed")
    assert entry.data["reason"] in ("customer_refused", "customer_limit_exceed")


@pytest.mark.django_db
def test_group_events(world: World) -> None:
    chat = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
    deliver(world, "change_external_chat.create", ChatId=chat, CreateTime="1700000000")
    group = CustomerGroup.objects.get(corp=world.corp_a, chat_id=chat)
    CustomerGroup.objects.filter(pk=group.pk).update(
        member_version="9c3f97c2ada667dfb5f6d03308d963e1", member_count=10
    )
    deliver(world, "change_external_chat.update.add_member", ChatId=chat, CreateTime="1700000100")
    group.refresh_from_db()
    assert group.member_count == 12
    assert group.member_version == "71217227bbd112ecfe3a49c482195cb4"
    assert GroupMember.objects.filter(group=group, is_active=True).count() == 2
    assert GroupDailyStat.objects.get(group=group).joins == 2
    deliver(
        world,
        "change_external_chat.update.del_member",
        ChatId=chat,
        CreateTime="1700000200",
        LastMemVer="71217227bbd112ecfe3a49c482195cb4",
        CurMemVer="aaaabbbbccccddddeeeeffff00001111",
    )
    group.refresh_from_db()
    assert group.member_version == "aaaabbbbccccddddeeeeffff00001111"
    assert GroupDailyStat.objects.get(group=group).leaves >= 1
    deliver(world, "change_external_chat.dismiss", ChatId=chat, CreateTime="1700000300")
    group.refresh_from_db()
    assert group.status == CustomerGroup.Status.DISMISSED


@pytest.mark.django_db
def test_tag_delete_and_member_events(world: World) -> None:
    group = TagGroup.objects.create(corp=world.corp_a, group_id="etGROUP", name="来源")
    tag = Tag.objects.create(corp=world.corp_a, group=group, tag_id="etTAG1", name="抖音")
    deliver(world, "change_external_tag.delete", Id="etTAG1", TagType="tag", CreateTime="1700000000")
    tag.refresh_from_db()
    assert tag.deleted
    deliver(world, "change_contact.create_user", UserID="lisi", CreateTime="1700000000")
    assert Member.objects.filter(corp=world.corp_a, userid="lisi").exists()
    deliver(world, "change_contact.delete_user", UserID="lisi", CreateTime="1700000100")
    assert Member.objects.get(corp=world.corp_a, userid="lisi").status == Member.Status.RESIGNED


@pytest.mark.django_db
def test_a_failing_event_is_recorded_and_retried_then_left_failed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scrm.callbacks import apply

    xml = fixture_xml("change_external_contact.del_follow_user", world.corp_a)
    post_callback(Client(), world.corp_a, xml)
    row = InboxEvent.objects.get()

    def broken(**kwargs: object) -> None:
        raise ValueError("simulated bug")

    monkeypatch.setattr(apply, "event_apply", broken)
    for attempt in range(1, apply.MAX_ATTEMPTS + 1):
        if attempt < apply.MAX_ATTEMPTS:
            with pytest.raises(ValueError):
                inbox_process(event_id=row.pk)
        else:
            inbox_process(event_id=row.pk)
    row.refresh_from_db()
    assert row.status == InboxStatus.FAILED and row.attempts == apply.MAX_ATTEMPTS
    assert "simulated bug" in row.last_error
    assert not Follow.objects.exists()  # nothing half-applied


@pytest.mark.django_db
def test_an_edit_never_undoes_a_deletion(world: World) -> None:
    # The member still sees a customer who deleted them, and may edit the remark afterwards.
    deliver(world, "change_external_contact.add_external_contact", **contact_event("add", 1700000000))
    deliver(world, "change_external_contact.del_follow_user", **contact_event("del", 1700000100))
    deliver(world, "change_external_contact.edit_external_contact", **contact_event("edit", 1700000200))
    assert follow(world).status == FollowStatus.DELETED_BY_CUSTOMER


@pytest.mark.parametrize("member_first", [True, False])
@pytest.mark.django_db
def test_the_members_deletion_wins_a_same_second_tie_in_either_order(
    world: World, member_first: bool
) -> None:
    deliver(world, "change_external_contact.add_external_contact", **contact_event("add", 1700000000))
    by_member = ("change_external_contact.del_external_contact", contact_event("del", 1700000100, Source=""))
    by_customer = ("change_external_contact.del_follow_user", contact_event("del", 1700000100))
    for name, fields in (by_member, by_customer) if member_first else (by_customer, by_member):
        deliver(world, name, **fields)
    assert follow(world).status == FollowStatus.DELETED_BY_MEMBER
