from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from scrm.callbacks.models import InboxEvent, InboxStatus
from scrm.tenancy.selectors import corp_get_by_corp_id
from wecom.crypto import CallbackCrypto, ReceiveIdError, SignatureError
from wecom.events import event_lane, parse_event

logger = logging.getLogger(__name__)

# Bodies above this are refused before any parsing: WeCom's callbacks are a few hundred bytes.
MAX_CALLBACK_BYTES = 64 * 1024


@lru_cache(maxsize=256)
def _crypto(token: str, aes_key: str, corp_id: str, replay_window: int) -> CallbackCrypto:
    # Key derivation once per credentials, not per callback.
    return CallbackCrypto(
        token, aes_key, corp_id, max_body_bytes=MAX_CALLBACK_BYTES, replay_window=replay_window or None
    )


@dataclass(frozen=True)
class CallbackTarget:
    """What the callback path needs of a corp: its primary key, CorpID and callback crypto."""

    corp_pk: int
    corp_id: str
    crypto: CallbackCrypto
    loaded_at: float
    cached: bool = False


# The callback path's corp lookup, per process. A stale entry can only mean changed credentials (the
# signature then fails and the entry is reloaded at once) or a removed corp (gone within the TTL).
TARGET_TTL_S = 60.0
_targets: dict[str, CallbackTarget] = {}


def callback_target(*, corp_id: str, fresh: bool = False) -> CallbackTarget | None:
    now = time.monotonic()
    hit = _targets.get(corp_id)
    if hit is not None and not fresh and now - hit.loaded_at < TARGET_TTL_S:
        return hit
    corp = corp_get_by_corp_id(corp_id=corp_id)
    if corp is None:
        _targets.pop(corp_id, None)
        return None
    crypto = _crypto(
        corp.callback_token, corp.encoding_aes_key, corp.corp_id, settings.WECOM_CALLBACK_REPLAY_WINDOW
    )
    _targets[corp_id] = CallbackTarget(corp.pk, corp.corp_id, crypto, now, cached=True)
    return CallbackTarget(corp.pk, corp.corp_id, crypto, now)


def callback_open(
    target: CallbackTarget, open_: Callable[[CallbackCrypto], str]
) -> tuple[CallbackTarget, str]:
    """Runs verify/decrypt with the target's crypto; a cached target that fails the signature is
    reloaded once, so new credentials work from the first callback after an admin saves them."""
    try:
        return target, open_(target.crypto)
    except SignatureError:
        if not target.cached:
            raise
        reloaded = callback_target(corp_id=target.corp_id, fresh=True)
        if reloaded is None:
            raise
        return reloaded, open_(reloaded.crypto)


@dataclass(frozen=True)
class Received:
    event_id: int | None  # None: a repeat delivery of an event already stored
    kind: str
    lane: str


_INSERT = """
INSERT INTO callbacks_inboxevent
    (corp_id, digest, kind, lane, payload, event_time, received_at, enqueued_at, status, attempts,
     last_error, deliveries)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, '', 1)
ON CONFLICT (corp_id, digest) DO NOTHING
RETURNING id
"""


def inbox_receive(
    *, target: CallbackTarget, msg_signature: str, timestamp: str, nonce: str, body: bytes
) -> Received:
    """Verifies, decrypts and stores one callback; enqueues it once the row is committed.

    Raises CallbackError (forged or malformed: nothing stored) and database errors (the caller answers 503
    so WeCom retries). A repeat delivery inserts nothing and enqueues nothing.
    """
    target, plaintext = callback_open(
        target, lambda crypto: crypto.decrypt(msg_signature, timestamp, nonce, body)
    )
    event = parse_event(plaintext)
    if event.to_user_name != target.corp_id:
        # The receiveid inside the ciphertext matched; a ToUserName that disagrees is a bug or a forgery.
        logger.warning("callback refused: ToUserName does not match the corp")
        raise ReceiveIdError("ToUserName does not match the corp", reason="to_user_name")
    lane = event_lane(event)
    digest = hashlib.sha256(plaintext.encode("utf-8")).hexdigest()
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        # Stored as queued: the publish right after commit almost always succeeds, and marking the row
        # beforehand saves a round trip on the hot path. A failed publish puts it back to pending.
        row_values: list[Any] = [
            target.corp_pk,
            digest,
            event.kind,
            lane,
            plaintext,
            event.create_time,
            now,
            now,
        ]
        cursor.execute(_INSERT, [*row_values, InboxStatus.QUEUED.value])
        row = cursor.fetchone()
        event_id = row[0] if row else None
        if event_id is not None:
            transaction.on_commit(lambda: inbox_enqueue(event_id=event_id, lane=lane))
    return Received(event_id=event_id, kind=event.kind, lane=lane)


def inbox_enqueue(*, event_id: int, lane: str) -> bool:
    """Hands a stored event to its lane. When Redis is down the row stays pending for the sweeper."""
    from tasks.publish import publish_fast

    # Adds that can still be welcomed go to the welcome task, which hands them on to the events lane.
    task = "tasks.welcome.send_welcome" if lane == "realtime" else "tasks.inbox.process_inbox_event"
    try:
        # No publish retries: answering WeCom fast matters more, and the sweeper re-sends what is pending.
        publish_fast(task, (event_id,), queue=lane)
    except Exception as exc:  # kombu raises several types when the broker is unreachable
        logger.warning("inbox event %s left pending: broker unavailable (%s)", event_id, type(exc).__name__)
        InboxEvent.objects.filter(pk=event_id, status=InboxStatus.QUEUED).update(status=InboxStatus.PENDING)
        return False
    return True


# A queued event not processed after this long was lost with a Redis restart (it keeps nothing on disk).
REQUEUE_AFTER = timedelta(minutes=10)
PENDING_GRACE = timedelta(seconds=5)


def inbox_sweep(*, limit: int = 1000) -> int:
    """Enqueues what is pending (Redis was down) and what was queued but lost; returns how many."""
    now = timezone.now()
    stale = InboxEvent.objects.filter(
        status=InboxStatus.PENDING, received_at__lt=now - PENDING_GRACE
    ) | InboxEvent.objects.filter(status=InboxStatus.QUEUED, enqueued_at__lt=now - REQUEUE_AFTER)
    count = 0
    for event_id, lane in stale.order_by("received_at").values_list("pk", "lane")[:limit]:
        InboxEvent.objects.filter(pk=event_id).exclude(status=InboxStatus.DONE).update(
            status=InboxStatus.QUEUED, enqueued_at=timezone.now()
        )
        if not inbox_enqueue(event_id=event_id, lane=lane):
            break
        count += 1
    return count
