"""The welcome path's reads, without database round trips when warm: process memory first, then Redis,
then the database (which fills both).

Every key carries the corp's *generation*, a Redis counter that services bump (on commit) whenever a code,
script, variant, attachment, member script or media id changes: one GET per welcome tells a worker
whether anything it remembers is stale. Member names come from the sync (not ours to hook), so member
entries also expire after a few minutes.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from django.db import transaction

from scrm.acquisition.content import Attachment, ScriptContent, Variant, content_from_json, content_to_json
from scrm.core.redis import get_redis

T = TypeVar("T")

REDIS_TTL = 86400
MEMBER_TTL = 300
LOCAL_TTL = 300.0
LOCAL_MAX = 4096


@dataclass(frozen=True)
class CodeConfig:
    code_id: int
    name: str
    state: str
    script_id: int | None
    per_minute_cap: int
    per_day_cap: int


@dataclass(frozen=True)
class MemberInfo:
    name: str
    script_id: int | None


_local: OrderedDict[tuple[Any, ...], tuple[float, Any]] = OrderedDict()
_lock = threading.Lock()
_MISSING = object()


def _gen_key(corp_pk: int) -> str:
    return f"acq:gen:{corp_pk}"


def generation(*, corp_pk: int) -> int:
    return int(get_redis().get(_gen_key(corp_pk)) or 0)


def cache_invalidate(*, corp_pk: int) -> None:
    """Forget everything cached for the corp: now, and again once the transaction commits (a worker that
    read the old rows in between must not keep them under the new generation)."""
    redis = get_redis()
    redis.incr(_gen_key(corp_pk))
    transaction.on_commit(lambda: redis.incr(_gen_key(corp_pk)))


def _local_get(key: tuple[Any, ...]) -> Any:
    with _lock:
        hit = _local.get(key)
        if hit is None:
            return _MISSING
        expires, value = hit
        if expires < time.monotonic():
            del _local[key]
            return _MISSING
        _local.move_to_end(key)
        return value


def _local_put(key: tuple[Any, ...], value: Any) -> None:
    with _lock:
        _local[key] = (time.monotonic() + LOCAL_TTL, value)
        _local.move_to_end(key)
        while len(_local) > LOCAL_MAX:
            _local.popitem(last=False)


def _cached(
    *,
    corp_pk: int,
    gen: int,
    kind: str,
    key: str,
    load: Callable[[], T | None],
    dump: Callable[[T], Any],
    parse: Callable[[Any], T],
    ttl: int = REDIS_TTL,
) -> T | None:
    local_key = (corp_pk, gen, kind, key)
    value = _local_get(local_key)
    if value is not _MISSING:
        return value
    redis = get_redis()
    redis_key = f"acq:c:{corp_pk}:{gen}:{kind}:{key}"
    raw = redis.get(redis_key)
    if raw is not None:
        data = json.loads(raw)
        value = None if data is None else parse(data)
    else:
        value = load()
        redis.set(redis_key, json.dumps(None if value is None else dump(value), ensure_ascii=False), ex=ttl)
    _local_put(local_key, value)
    return value


def code_by_state(*, corp_pk: int, gen: int, state: str) -> CodeConfig | None:
    from scrm.acquisition.models import ChannelCode

    def load() -> CodeConfig | None:
        row = (
            ChannelCode.objects.filter(corp_id=corp_pk, state=state, status=ChannelCode.Status.ACTIVE)
            .values("pk", "name", "state", "script_id", "per_minute_cap", "per_day_cap")
            .first()
        )
        if row is None:
            return None
        return CodeConfig(
            row["pk"], row["name"], row["state"], row["script_id"], row["per_minute_cap"], row["per_day_cap"]
        )

    return _cached(
        corp_pk=corp_pk,
        gen=gen,
        kind="state",
        key=state,
        load=load,
        dump=asdict,
        parse=lambda d: CodeConfig(**d),
    )


def member_info(*, corp_pk: int, gen: int, userid: str) -> MemberInfo:
    from scrm.acquisition.models import MemberWelcome
    from scrm.customers.models import Member

    def load() -> MemberInfo:
        name = Member.objects.filter(corp_id=corp_pk, userid=userid).values_list("name", flat=True).first()
        script_id = (
            MemberWelcome.objects.filter(corp_id=corp_pk, member__userid=userid)
            .values_list("script_id", flat=True)
            .first()
        )
        return MemberInfo(name or "", script_id)

    # Bucketed so the in-process copy also turns over with the Redis one.
    bucket = int(time.time() // MEMBER_TTL)
    found = _cached(
        corp_pk=corp_pk,
        gen=gen,
        kind="member",
        key=f"{userid}:{bucket}",
        load=load,
        dump=asdict,
        parse=lambda d: MemberInfo(**d),
        ttl=MEMBER_TTL * 2,
    )
    return found or MemberInfo("", None)


def default_script_id(*, corp_pk: int, gen: int) -> int | None:
    from scrm.acquisition.models import WelcomeScript

    def load() -> int | None:
        return (
            WelcomeScript.objects.filter(corp_id=corp_pk, is_default=True)
            .values_list("pk", flat=True)
            .first()
        )

    return _cached(corp_pk=corp_pk, gen=gen, kind="default", key="", load=load, dump=int, parse=int)


def script_content(*, corp_pk: int, gen: int, script_id: int) -> ScriptContent | None:
    return _cached(
        corp_pk=corp_pk,
        gen=gen,
        kind="script",
        key=str(script_id),
        load=lambda: script_content_load(corp_pk=corp_pk, script_id=script_id),
        dump=content_to_json,
        parse=content_from_json,
    )


def _attachment(a: Any) -> Attachment:
    kind = a.kind
    if kind == "link":
        body = {"title": a.title, "url": a.url}
        if a.pic_url:
            body["picurl"] = a.pic_url
        if a.description:
            body["desc"] = a.description
    elif kind == "miniprogram":
        body = {"title": a.title, "appid": a.appid, "page": a.page}
    else:
        body = {}
    media = a.media
    return Attachment(
        kind=kind,
        body=body,
        media_id=media.media_id if media is not None else "",
        media_expires=media.expires_at.timestamp() if media is not None and media.expires_at else 0.0,
        media_name=media.name if media is not None else "",
    )


def script_content_load(*, corp_pk: int, script_id: int) -> ScriptContent | None:
    """A script as the welcome path needs it (also used by the preview, uncached)."""
    from scrm.acquisition.models import WelcomeAttachment, WelcomeScript

    script = WelcomeScript.objects.filter(corp_id=corp_pk, pk=script_id).first()
    if script is None:
        return None
    attachments = list(
        WelcomeAttachment.objects.filter(corp_id=corp_pk, script=script)
        .select_related("media")
        .defer("media__content")
    )
    base = tuple(_attachment(a) for a in attachments if a.variant_id is None)
    variants = tuple(
        Variant(
            weekdays=tuple(v.weekdays),
            start=v.start_time,
            end=v.end_time,
            text=v.text,
            attachments=tuple(_attachment(a) for a in attachments if a.variant_id == v.pk),
        )
        for v in script.variants.all()
    )
    return ScriptContent(
        script_id=script.pk,
        text=script.text,
        nickname_fallback=script.nickname_fallback,
        attachments=base,
        variants=variants,
    )


def clear_local() -> None:
    """For tests: forget this process's copies (Redis and the generation stay)."""
    with _lock:
        _local.clear()
