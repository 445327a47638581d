"""The aiohttp application: WeCom's /cgi-bin/ paths, the /sandbox/ control API and dashboard.

The /cgi-bin/ dispatcher is the hot path (≥2,000 calls/s on one core): one dict lookup for the API,
one for the token, two counters for the limits, a json.loads and a json.dumps. No middlewares."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from typing import Any

from aiohttp import BodyPartReader, web

from .api import REGISTRY, ApiSpec, Call
from .api.media import RawResponse
from .delivery import DeliveryConfig, Outbox
from .errors import ApiError, format_errmsg
from .models import App
from .state import Corp, Sandbox

# Handlers register themselves on import.
from .api import (  # noqa: F401  isort: skip
    contact_ways,
    customers,
    groups,
    mass,
    media,
    members,
    statistics,
    tags,
    token,
    transfers,
    welcome,
)

log = logging.getLogger("wecom.sandbox")

SANDBOX: web.AppKey[Sandbox] = web.AppKey("sandbox", Sandbox)
JSON_HEADERS = {"Content-Type": "application/json; charset=UTF-8"}
MAX_BODY = 25 * 1024 * 1024  # media/upload takes files up to 20 MB
TICK = 0.05  # how often scheduled virtual-time work is checked when nothing else runs it

_hint_seq = 0


def _hint(now: float) -> str:
    # WeCom's hints look like "1587638134_59_10c59a36f1cb3c6706ad8e04d0a15d7a".
    global _hint_seq
    _hint_seq = (_hint_seq + 1) % 100
    digest = hashlib.md5(f"{now}:{_hint_seq}".encode(), usedforsecurity=False).hexdigest()
    return f"{int(now)}_{_hint_seq}_{digest}"


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(payload, ensure_ascii=False).encode(), status=status, headers=JSON_HEADERS
    )


def _resolve_gettoken(sb: Sandbox, query: Any) -> tuple[Corp, App]:
    corp_id = query.get("corpid")
    if not corp_id:
        raise ApiError(41002)
    corp = sb.corps.get(corp_id)
    if corp is None:
        raise ApiError(40013, f"corpid {corp_id}")
    secret = query.get("corpsecret")
    if not secret:
        raise ApiError(41004)
    for app in corp.apps.values():
        if app.secret == secret:
            return corp, app
    raise ApiError(40001)


async def cgi(request: web.Request) -> web.StreamResponse:
    sb = request.app[SANDBOX]
    path = request.match_info["tail"]
    spec = REGISTRY.get(path)
    if spec is None:
        return _json({"errcode": 404, "errmsg": f"invalid url {request.path}"}, status=404)
    if sb.schedule:
        sb.run_due()
    now = sb.clock.now()
    corp_id = "-"
    fault: str | None = None
    try:
        query = request.query
        if path == "gettoken":
            corp, app = _resolve_gettoken(sb, query)
        else:
            tok = sb.check_token(query.get("access_token"))
            corp = sb.corps[tok.corp_id]
            found = corp.apps.get(tok.agent_id)
            if found is None:
                raise ApiError(40014)
            app = found
        corp_id = corp.corp_id
        if request.method != spec.method:
            raise ApiError(43001 if spec.method == "GET" else 43002)
        limit = corp.limits.for_api(path)
        over = sb.limiter.hit(corp_id, path, now, limit)
        if over is not None:
            raise ApiError(45009, f"{path} over its per-{over} limit")
        fault = corp.faults.pick(path, sb.rng) if corp.faults.rate else None
        if fault is not None:
            resp = await _fault(sb, corp, fault)
            if resp is not None:
                sb.audit.api(now, corp_id, path, resp.status)
                return resp
        if limit.concurrency is None and not limit.latency_ms:
            result = await _run(sb, spec, corp, app, request, now)
        else:
            result = await _run_gated(sb, spec, corp, app, request, now, limit.concurrency, limit.latency_ms)
    except ApiError as exc:
        sb.audit.api(now, corp_id, path, exc.errcode)
        message = format_errmsg(exc.errcode, exc.base_message(), hint=_hint(now), ip=request.remote or "")
        return _json({"errcode": exc.errcode, "errmsg": message})
    sb.audit.api(now, corp_id, path, 0)
    if fault == "lost":  # WeCom did it, but the answer never reaches the caller
        await asyncio.sleep(corp.faults.timeout_s)
        return web.Response(status=504, text="gateway timeout")
    if isinstance(result, RawResponse):
        return web.Response(body=result.body, content_type=result.content_type, headers=result.headers)
    out: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
    out.update(result)
    return _json(out)


async def _run_gated(
    sb: Sandbox,
    spec: ApiSpec,
    corp: Corp,
    app: App,
    request: web.Request,
    now: float,
    concurrency: int | None,
    latency_ms: float,
) -> Any:
    key = (corp.corp_id, spec.path)
    inflight = sb.limiter.inflight
    current = inflight.get(key, 0)
    if concurrency is not None and current >= concurrency:
        raise ApiError(45033, f"{spec.path} allows {concurrency} concurrent calls")
    inflight[key] = current + 1
    try:
        # The call takes effect first and its answer comes late: a caller that gives up (or dies) while
        # waiting has still done what it asked, as with WeCom, and must find out rather than call again.
        result = await _run(sb, spec, corp, app, request, now)
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        return result
    finally:
        inflight[key] -= 1


async def _run(sb: Sandbox, spec: ApiSpec, corp: Corp, app: App, request: web.Request, now: float) -> Any:
    files = None
    body: dict[str, Any] = {}
    if spec.multipart:
        files = await _read_files(request)
    elif spec.method == "POST":
        raw = await request.read()
        if raw.strip():
            try:
                parsed = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise ApiError(47001, "Warning: wrong json format.") from None
            if not isinstance(parsed, dict):
                raise ApiError(47001, "body must be a JSON object")
            body = parsed
    return spec.fn(Call(sb, corp, app, request.query, body, now, spec.path, files))


async def _read_files(request: web.Request) -> dict[str, tuple[str, bytes]]:
    out: dict[str, tuple[str, bytes]] = {}
    if not request.content_type.startswith("multipart/"):
        return out
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.name:
            out[part.name] = (part.filename or "", bytes(await part.read()))
    return out


async def _fault(sb: Sandbox, corp: Corp, kind: str) -> web.Response | None:
    """Injected failures. None means: carry on and answer normally (after a slow start)."""
    f = corp.faults
    if kind == "busy":
        raise ApiError(-1)
    if kind == "freq":  # as if other callers had used up the window; counted like any 45009
        raise ApiError(45009, "injected")
    if kind == "concurrent":
        raise ApiError(45033, "injected")
    if kind == "http5xx":
        status = sb.rng.choice((500, 502, 503))
        return web.Response(
            status=status, text=f"<html><body>{status}</body></html>", content_type="text/html"
        )
    if kind == "slow":
        await asyncio.sleep(f.slow_ms / 1000)
        return None
    if kind == "lost":  # answered like a timeout after the call took effect (see cgi)
        return None
    # "timeout": hold the request longer than any sane client waits, then give up on it.
    await asyncio.sleep(f.timeout_s)
    return web.Response(status=504, text="gateway timeout")


# --- application ----------------------------------------------------------------------------------
def create_app(
    sb: Sandbox | None = None,
    *,
    delivery: DeliveryConfig | None = None,
    snapshot_path: str | None = None,
) -> web.Application:
    from . import control, page, qr, scenario, snapshot

    sb = sb or Sandbox()
    app = web.Application(client_max_size=MAX_BODY)
    app[SANDBOX] = sb
    if sb.outbox is None:
        sb.outbox = Outbox(sb, delivery)
    app.router.add_route("*", "/cgi-bin/{tail:.+}", cgi)
    control.setup(app, snapshot_path=snapshot_path)
    page.setup(app)
    qr.setup(app)

    async def lifecycle(app: web.Application) -> Any:
        assert sb.outbox is not None
        await sb.outbox.start()
        ticker = asyncio.create_task(_ticker(sb))
        yield
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        await scenario.stop_all(sb)
        await sb.outbox.stop()
        if snapshot_path:
            log.info("snapshot saved: %s", snapshot.save(sb, snapshot_path))

    app.cleanup_ctx.append(lifecycle)
    return app


async def _ticker(sb: Sandbox) -> None:
    while True:
        await asyncio.sleep(TICK)
        try:
            sb.run_due()
        except Exception:  # a bad task must not stop the clock
            log.exception("scheduled task failed")


def public_url_for(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    return f"http://{shown}:{port}"


__all__ = ["SANDBOX", "create_app", "public_url_for"]
