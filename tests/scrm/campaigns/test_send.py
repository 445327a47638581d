"""Sending against the sandbox: chunks per sender, one template each, results, cancel and remind."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from scrm.campaigns import selectors, services
from scrm.campaigns.models import Broadcast, QuotaLedger, RecipientResult, SendChunk
from tests.scrm.campaigns.conftest import Camp

pytestmark = pytest.mark.django_db

SEED = {
    "members": 4,
    "customers": 40,
    "follows": 55,
    "tag_groups": 2,
    "groups": 4,
    "group_size": 6,
    "seed": 5,
}


def test_customer_broadcast_end_to_end(camp: Camp) -> None:
    camp.seed(**SEED)
    b = camp.approved()
    assert b.status == Broadcast.Status.SCHEDULED
    preview = selectors.audience_preview(corp=camp.corp, audience=selectors.audience_of(b))
    assert preview.total == camp.customers()
    assert not services.broadcast_send(broadcast_id=b.pk)
    b.refresh_from_db()
    assert b.status == Broadcast.Status.SENT
    chunks = list(SendChunk.objects.filter(broadcast=b))
    assert {c.status for c in chunks} == {SendChunk.Status.CREATED}
    assert len(chunks) == len(preview.senders)
    assert sum(len(c.reserved) for c in chunks) == preview.total
    templates = camp.templates()
    assert sorted(t["msgid"] for t in templates) == sorted(c.msgid for c in chunks)
    # Each customer is counted once in the ledger for this period.
    assert QuotaLedger.objects.filter(corp=camp.corp).count() == preview.total
    assert set(QuotaLedger.objects.filter(corp=camp.corp).values_list("count", flat=True)) == {1}
    services.broadcast_poll(broadcast_id=b.pk, now=timezone.now() + timedelta(seconds=5))
    b.refresh_from_db()
    assert b.status == Broadcast.Status.DONE
    results = selectors.broadcast_results(broadcast=b)
    assert results.get(RecipientResult.Status.SENT) == preview.total
    assert all(s.confirmed for s in selectors.broadcast_senders(broadcast=b))
    assert camp.findings()["over_quota"] == 0


def test_tag_and_or_not_audience(camp: Camp) -> None:
    camp.seed(**SEED)
    from scrm.customers.models import Customer, Tag

    tags = list(Tag.objects.filter(corp=camp.corp).order_by("pk"))
    t1, t2, t3 = tags[0], tags[1], tags[2]
    audience = selectors.Audience.from_params({"tags_any": [t1.pk, t2.pk], "tags_none": [t3.pk]})
    preview = selectors.audience_preview(corp=camp.corp, audience=audience)
    expected = (
        Customer.objects.filter(corp=camp.corp, active_follows__gt=0, tag_ids__overlap=[t1.pk, t2.pk])
        .exclude(tag_ids__overlap=[t3.pk])
        .count()
    )
    assert preview.total == expected
    both = selectors.audience_preview(
        corp=camp.corp, audience=selectors.Audience.from_params({"tags_all": [t1.pk, t2.pk]})
    )
    assert (
        both.total
        == Customer.objects.filter(
            corp=camp.corp, active_follows__gt=0, tag_ids__contains=[t1.pk, t2.pk]
        ).count()
    )


def test_worker_died_after_the_call_is_reconciled_not_called_again(camp: Camp) -> None:
    """The state a worker leaves when it dies after WeCom created the template but before the msgid was
    recorded: the chunk `calling`, its lease lapsed, the template in WeCom."""
    from scrm.core.wecom import wecom_client

    camp.seed(**SEED)
    b = camp.approved()
    services.broadcast_start(broadcast_id=b.pk)
    first = SendChunk.objects.filter(broadcast=b).order_by("seq").first()
    assert first is not None
    claim = services._claim(first.pk, timezone.now())
    assert claim is not None and not claim.takeover
    chunk = claim.chunk
    wecom_client(corp=camp.corp, lane="bulk").add_msg_template(
        external_userid=chunk.reserved, sender=chunk.sender.userid, text=b.text
    )
    SendChunk.objects.filter(pk=chunk.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    created_before = camp.calls("externalcontact/add_msg_template")
    assert not services.broadcast_send(broadcast_id=b.pk)
    chunk.refresh_from_db()
    assert chunk.status == SendChunk.Status.CREATED and chunk.reconciled and chunk.tries == 2
    others = SendChunk.objects.filter(broadcast=b).exclude(pk=chunk.pk).count()
    assert camp.calls("externalcontact/add_msg_template") == created_before + others
    assert len(camp.templates()) == others + 1
    assert max(QuotaLedger.objects.filter(corp=camp.corp).values_list("count", flat=True)) == 1
    assert camp.findings()["over_quota"] == 0


def test_live_lease_is_left_alone(camp: Camp) -> None:
    camp.seed(**SEED)
    b = camp.approved()
    services.broadcast_start(broadcast_id=b.pk)
    first = SendChunk.objects.filter(broadcast=b).order_by("seq").first()
    assert first is not None
    assert services._claim(first.pk, timezone.now()) is not None
    with pytest.raises(services.Busy):
        services._claim(first.pk, timezone.now())
    assert services.broadcast_send(broadcast_id=b.pk)  # comes back later for the held chunk
    assert camp.calls("externalcontact/add_msg_template") == SendChunk.objects.filter(broadcast=b).count() - 1


def test_wecom_refusal_releases_the_quota(camp: Camp) -> None:
    camp.seed(**SEED)
    b = camp.approved()
    services.broadcast_start(broadcast_id=b.pk)
    # The member leaves the company between planning and sending: WeCom refuses the chunk.
    chunk = SendChunk.objects.filter(broadcast=b).order_by("seq").first()
    assert chunk is not None
    camp.sb.world(camp.corp.corp_id, "resign", userid=chunk.sender.userid, deliver=False)
    services.broadcast_send(broadcast_id=b.pk)
    chunk.refresh_from_db()
    assert chunk.status == SendChunk.Status.FAILED and chunk.errcode is not None and chunk.error
    counted = dict(QuotaLedger.objects.filter(corp=camp.corp).values_list("target", "count"))
    assert all(counted.get(t, 0) == 0 for t in chunk.reserved)


PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82"
)


def test_attachments_uploaded_ahead_and_renewed_before_sending(camp: Camp) -> None:
    from scrm.acquisition.models import MediaAsset
    from scrm.acquisition.services import Upload

    camp.seed(**SEED)
    b = camp.broadcast()
    image = services.attachment_add(
        corp=camp.corp, broadcast=b, kind="image", upload=Upload("poster.png", PNG, "image/png")
    )
    services.attachment_add(
        corp=camp.corp, broadcast=b, kind="link", title="活动页", url="https://example.com/a"
    )
    assert image.media is not None and image.media.media_id  # uploaded when added
    uploads = camp.calls("media/upload")
    # Three days later the temporary media has expired: it is uploaded again before the send.
    MediaAsset.objects.filter(pk=image.media.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    b = services.broadcast_submit(corp=camp.corp, broadcast=b, user=camp.world.alice, is_admin=True)
    services.broadcast_send(broadcast_id=b.pk)
    assert camp.calls("media/upload") == uploads + 1
    assert {c.status for c in SendChunk.objects.filter(broadcast=b)} == {SendChunk.Status.CREATED}
    full = camp.broadcast(name="九个附件")
    for _ in range(9):
        services.attachment_add(
            corp=camp.corp, broadcast=full, kind="link", title="x", url="https://example.com"
        )
    with pytest.raises(ValidationError, match="at most 9"):
        services.attachment_add(
            corp=camp.corp, broadcast=full, kind="link", title="x", url="https://example.com"
        )


def test_results_back_off_while_wecom_is_distributing(camp: Camp) -> None:
    camp.seed(**SEED)
    camp.settings(distribute_seconds=3600.0)  # get_groupmsg_task answers 41063 for an hour
    b = camp.approved()
    services.broadcast_send(broadcast_id=b.pk)
    now = timezone.now()
    services.broadcast_poll(broadcast_id=b.pk, now=now)
    for chunk in SendChunk.objects.filter(broadcast=b):
        assert chunk.poll_failures == 1 and not chunk.results_done
        assert chunk.poll_after is not None and chunk.poll_after > now
    calls = camp.calls("externalcontact/get_groupmsg_task")
    services.broadcast_poll(broadcast_id=b.pk, now=now)  # nothing is due yet: WeCom is not asked again
    assert camp.calls("externalcontact/get_groupmsg_task") == calls
    b.refresh_from_db()
    assert b.status == Broadcast.Status.SENT


def test_scheduled_broadcast_waits_for_its_time(camp: Camp) -> None:
    camp.seed(**SEED)
    later = timezone.now() + timedelta(hours=2)
    b = services.broadcast_save(
        corp=camp.corp,
        broadcast=None,
        user=camp.world.alice,
        name="定时",
        chat_type="single",
        text="晚上好",
        audience={},
        scheduled_at=later,
    )
    b = services.broadcast_submit(corp=camp.corp, broadcast=b, user=camp.world.alice, is_admin=True)
    assert not selectors.due_broadcasts(now=timezone.now()).filter(pk=b.pk).exists()
    assert services.broadcast_start(broadcast_id=b.pk) is None
    assert selectors.due_broadcasts(now=later).filter(pk=b.pk).exists()
    started = services.broadcast_start(broadcast_id=b.pk, now=later + timedelta(seconds=1))
    assert started is not None and started.status == Broadcast.Status.SENDING


def test_channel_code_audience(camp: Camp) -> None:
    from scrm.acquisition.models import ChannelCode
    from scrm.customers.models import Customer, Follow

    camp.seed(**SEED)
    code = ChannelCode.objects.create(corp=camp.corp, name="门店", state="store_qr")
    picked = list(Follow.objects.filter(corp=camp.corp, status="active").order_by("pk")[:5])
    Follow.objects.filter(pk__in=[f.pk for f in picked]).update(state="store_qr")
    audience = selectors.Audience.from_params({"codes": [code.pk]})
    preview = selectors.audience_preview(corp=camp.corp, audience=audience)
    assert preview.total == Customer.objects.filter(pk__in=[f.customer_id for f in picked]).count()
