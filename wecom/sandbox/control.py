"""The control API under /sandbox/: register corps, seed, drive the world, set limits and faults,
move the clock, query the audit and delivery stats, snapshot. JSON in, JSON out."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web

from . import scenario, snapshot
from .api.contact_ways import way_json
from .api.groups import member_version
from .audit import FINDING_KINDS
from .quota import RULES
from .server import SANDBOX
from .state import Corp, Sandbox
from .world import ACTIONS, WorldError, run

CORP_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SNAPSHOT_PATH: web.AppKey[str | None] = web.AppKey("snapshot_path", str)


class ControlError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _sb(request: web.Request) -> Sandbox:
    return request.app[SANDBOX]


def ok(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, ensure_ascii=False, default=_default).encode(),
        status=status,
        content_type="application/json",
        charset="utf-8",
    )


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def guarded(fn: Handler) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(request)
        except (ControlError, WorldError) as exc:
            return ok({"error": str(exc)}, status=exc.status)
        except (ValueError, TypeError, KeyError) as exc:
            return ok({"error": str(exc).strip("'\"")}, status=400)

    return wrapper


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ControlError("body must be JSON") from None
    if not isinstance(data, dict):
        raise ControlError("body must be a JSON object")
    return data


def _corp(request: web.Request) -> Corp:
    corp = _sb(request).corps.get(request.match_info["corp"])
    if corp is None:
        raise ControlError(f"unknown corp {request.match_info['corp']!r}", 404)
    return corp


# --- corps ----------------------------------------------------------------------------------------
def register(sb: Sandbox, data: dict[str, Any]) -> Corp:
    """Create or update a corp with its app(s), settings, limits and faults (idempotent)."""
    corp_id = str(data.get("corp_id", ""))
    if not CORP_ID_RE.match(corp_id):
        raise ControlError("corp_id must be 1-64 letters, digits, '_' or '-' (WeCom: 'ww' + 16 hex)")
    corp = sb.register_corp(corp_id, str(data.get("name", "")), replace=bool(data.get("replace")))
    if data.get("name"):
        corp.name = str(data["name"])
    apps = data.get("apps") or ([data] if "secret" in data or "agent_id" in data else [])
    for app in apps:
        sb.set_app(corp, app)
    if not corp.apps:
        sb.set_app(corp, {"agent_id": 1000002})
    corp.settings.update(data.get("settings") or {})
    if data.get("limits"):
        corp.limits.update(data["limits"])
    if data.get("faults"):
        corp.faults.update(data["faults"])
    return corp


def corp_json(sb: Sandbox, corp: Corp) -> dict[str, Any]:
    return {
        "corp_id": corp.corp_id,
        "name": corp.name,
        "api_base": f"{sb.public_url}/cgi-bin/",
        "apps": [
            {
                "agent_id": a.agent_id,
                "name": a.name,
                "secret": a.secret,
                "callback_url": a.callback_url,
                "token": a.token,
                "encoding_aes_key": a.encoding_aes_key,
                "visible_userids": sorted(a.visible_userids) if a.visible_userids is not None else None,
            }
            for a in corp.apps.values()
        ],
        "counts": counts(corp),
        "settings": corp.settings.as_dict(),
        "limits": corp.limits.as_dict(),
        "faults": corp.faults.as_dict(),
        "audit": sb.audit.summary(corp.corp_id),
        "deliveries": sb.outbox.stats.get(corp.corp_id, {}) if sb.outbox else {},
        "traffic": scenario.traffic_status(sb, corp.corp_id),
    }


def counts(corp: Corp) -> dict[str, int]:
    return {
        "members": sum(1 for m in corp.members.values() if m.resigned_at is None),
        "resigned": sum(1 for m in corp.members.values() if m.resigned_at is not None),
        "customers": len(corp.customers),
        "follows": corp.follow_count,
        "tag_groups": len(corp.tag_groups),
        "tags": len(corp.tags),
        "contact_ways": len(corp.contact_ways),
        "join_ways": len(corp.join_ways),
        "groups": sum(1 for g in corp.groups.values() if not g.dismissed),
        "templates": len(corp.templates),
        "transfers": len(corp.transfers),
        "media": len(corp.media),
    }


@guarded
async def corps_list(request: web.Request) -> web.Response:
    sb = _sb(request)
    return ok(
        {"corps": [{"corp_id": c.corp_id, "name": c.name, "counts": counts(c)} for c in sb.corps.values()]}
    )


@guarded
async def corps_create(request: web.Request) -> web.Response:
    sb = _sb(request)
    data = await _body(request)
    corp = register(sb, data)
    out: dict[str, Any] = {}
    if data.get("seed"):
        out["seed"] = scenario.seed(sb, corp, data["seed"])
    if data.get("verify_callback"):
        assert sb.outbox is not None
        out["verify"] = {
            a.agent_id: await sb.outbox.verify_url(corp.corp_id, a)
            for a in corp.apps.values()
            if a.callback_url
        }
    out.update(corp_json(sb, corp))
    return ok(out, status=201)


@guarded
async def corp_get(request: web.Request) -> web.Response:
    return ok(corp_json(_sb(request), _corp(request)))


@guarded
async def corp_delete(request: web.Request) -> web.Response:
    sb, corp = _sb(request), _corp(request)
    scenario.stop_traffic(sb, corp.corp_id)
    sb.drop_corp(corp.corp_id)
    return ok({"deleted": corp.corp_id})


@guarded
async def app_set(request: web.Request) -> web.Response:
    sb, corp = _sb(request), _corp(request)
    app = sb.set_app(corp, await _body(request))
    return ok({"agent_id": app.agent_id, "secret": app.secret, "callback_url": app.callback_url})


@guarded
async def app_verify(request: web.Request) -> web.Response:
    sb, corp = _sb(request), _corp(request)
    app = corp.apps.get(int(request.match_info["agent_id"]))
    if app is None or not app.callback_url:
        raise ControlError("no such app, or it has no callback URL", 404)
    assert sb.outbox is not None
    return ok(await sb.outbox.verify_url(corp.corp_id, app))


@guarded
async def settings_set(request: web.Request) -> web.Response:
    corp = _corp(request)
    corp.settings.update(await _body(request))
    return ok({"settings": corp.settings.as_dict(), "quota_rules": RULES})


@guarded
async def limits_set(request: web.Request) -> web.Response:
    sb, corp = _sb(request), _corp(request)
    data = await _body(request)
    if data.pop("reset", False):
        from .limits import LimitConfig

        corp.limits = LimitConfig()
        sb.limiter.clear(corp.corp_id)
    for item in data.pop("apis", []) or []:
        corp.limits.update(item)
    if data:
        corp.limits.update(data)
    return ok({"limits": corp.limits.as_dict()})


@guarded
async def faults_set(request: web.Request) -> web.Response:
    corp = _corp(request)
    corp.faults.update(await _body(request))
    return ok({"faults": corp.faults.as_dict()})


@guarded
async def tokens_invalidate(request: web.Request) -> web.Response:
    sb, corp = _sb(request), _corp(request)
    data = await _body(request)
    agent = data.get("agent_id")
    return ok({"revoked": sb.revoke_tokens(corp.corp_id, None if agent is None else int(agent))})


@guarded
async def seed(request: web.Request) -> web.Response:
    sb, corp = _sb(request), _corp(request)
    return ok(scenario.seed(sb, corp, await _body(request)))


@guarded
async def world_action(request: web.Request) -> web.Response:
    sb, corp = _sb(request), _corp(request)
    name = request.match_info["action"]
    data = await _body(request)
    if name == "burst":
        return ok(await burst(sb, corp, data))
    return ok(run(sb, corp, name, data))


async def burst(sb: Sandbox, corp: Corp, data: dict[str, Any]) -> dict[str, Any]:
    """Many world actions as fast as possible, in chunks so deliveries start while it runs."""
    count = int(data.get("count", 100))
    mix = data.get("mix") or {str(data.get("action", "scan")): 1.0}
    names, weights = list(mix), [float(v) for v in mix.values()]
    params = dict(data.get("params") or {})
    done = refused = 0
    t0 = time.perf_counter()
    for i in range(count):
        try:
            run(sb, corp, sb.rng.choices(names, weights)[0], dict(params))
            done += 1
        except WorldError:
            refused += 1
        if i % 200 == 199:
            await asyncio.sleep(0)
    return {"done": done, "refused": refused, "seconds": round(time.perf_counter() - t0, 4)}


@guarded
async def traffic_start(request: web.Request) -> web.Response:
    sb, corp = _sb(request), _corp(request)
    return ok(scenario.start_traffic(sb, corp, await _body(request)).as_dict(), status=201)


@guarded
async def traffic_get(request: web.Request) -> web.Response:
    sb, corp = _sb(request), _corp(request)
    return ok(scenario.traffic_status(sb, corp.corp_id) or {"running": False})


@guarded
async def traffic_stop(request: web.Request) -> web.Response:
    sb, corp = _sb(request), _corp(request)
    return ok({"stopped": scenario.stop_traffic(sb, corp.corp_id)})


@guarded
async def data(request: web.Request) -> web.Response:
    corp = _corp(request)
    kind = request.match_info["kind"]
    limit = int(request.query.get("limit", 100))
    offset = int(request.query.get("offset", 0))
    fn = INSPECT.get(kind)
    if fn is None:
        raise ControlError(f"unknown kind {kind!r}; known: {sorted(INSPECT)}", 404)
    total, items = fn(corp, request.query)
    return ok({"kind": kind, "total": total, "items": list(itertools.islice(items, offset, offset + limit))})


Rows = tuple[int, Iterator[dict[str, Any]]]


def _members(corp: Corp, q: Any) -> Rows:
    return len(corp.members), (
        {
            "userid": m.userid,
            "name": m.name,
            "department": m.department,
            "status": m.status,
            "resigned_at": m.resigned_at,
            "contact_permission": m.contact_permission,
            "customers": len(m.follows),
        }
        for m in corp.members.values()
    )


def _customers(corp: Corp, q: Any) -> Rows:
    userid = q.get("userid")
    source = (corp.members[userid].follows if userid in corp.members else {}) if userid else corp.customers

    def rows() -> Iterator[dict[str, Any]]:
        for ext in source:
            c = corp.customers[ext]
            yield {
                "external_userid": c.external_userid,
                "name": c.name,
                "type": c.type,
                "follows": [
                    {
                        "userid": f.userid,
                        "state": f.state,
                        "tags": list(f.tags),
                        "remark": f.remark,
                        "deleted_by_customer": f.deleted_by_customer,
                    }
                    for f in c.follows.values()
                ],
            }

    return len(source), rows()


def _tags(corp: Corp, q: Any) -> Rows:
    return len(corp.tag_groups), (
        {
            "group_id": g.group_id,
            "group_name": g.name,
            "creator": g.creator,
            "tags": [
                {"id": t, "name": corp.tags[t].name, "creator": corp.tags[t].creator} for t in g.tag_ids
            ],
        }
        for g in corp.tag_groups.values()
    )


def _contact_ways(corp: Corp, q: Any) -> Rows:
    return len(corp.contact_ways), ({**way_json(w), "creator": w.creator} for w in corp.contact_ways.values())


def _join_ways(corp: Corp, q: Any) -> Rows:
    return len(corp.join_ways), (
        {
            "config_id": w.config_id,
            "creator": w.creator,
            "chat_id_list": w.chat_id_list,
            "state": w.state,
            "auto_create_room": w.auto_create_room,
            "room_base_name": w.room_base_name,
            "room_base_id": w.room_base_id,
            "qr_code": w.qr_code,
        }
        for w in corp.join_ways.values()
    )


def _groups(corp: Corp, q: Any) -> Rows:
    return len(corp.groups), (
        {
            "chat_id": g.chat_id,
            "name": g.name,
            "owner": g.owner,
            "members": len(g.members),
            "status": g.status,
            "dismissed": g.dismissed,
            "member_version": member_version(g),
        }
        for g in corp.groups.values()
    )


def _welcome_codes(corp: Corp, q: Any) -> Rows:
    return len(corp.welcome_codes), (
        {
            "welcome_code": c.code,
            "userid": c.userid,
            "external_userid": c.external_userid,
            "created_at": c.created_at,
            "used_at": c.used_at,
            "chatted": c.chatted,
        }
        for c in corp.welcome_codes.values()
    )


def _templates(corp: Corp, q: Any) -> Rows:
    def rows() -> Iterator[dict[str, Any]]:
        for t in corp.templates.values():
            tasks = []
            for task in t.tasks.values():
                statuses: dict[int, int] = {}
                for r in task.recipients:
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                tasks.append(
                    {
                        "userid": task.userid,
                        "status": task.status,
                        "will_confirm": task.will_confirm,
                        "confirm_at": task.confirm_at,
                        "recipients": statuses,
                    }
                )
            yield {
                "msgid": t.msgid,
                "chat_type": t.chat_type,
                "create_time": t.create_time,
                "cancelled": t.cancelled,
                "reminds": len(t.reminds),
                "tasks": tasks,
            }

    return len(corp.templates), rows()


def _transfers(corp: Corp, q: Any) -> Rows:
    return len(corp.transfers), (
        {
            "id": t.id,
            "kind": t.kind,
            "handover_userid": t.handover_userid,
            "takeover_userid": t.takeover_userid,
            "external_userid": t.external_userid,
            "status": t.status,
            "started_at": t.started_at,
            "takeover_time": t.takeover_time,
        }
        for t in corp.transfers.values()
    )


def _media(corp: Corp, q: Any) -> Rows:
    return len(corp.media), (
        {
            "media_id": m.media_id,
            "type": m.type,
            "filename": m.filename,
            "created_at": m.created_at,
            "bytes": len(m.data),
        }
        for m in corp.media.values()
    )


INSPECT: dict[str, Callable[[Corp, Any], Rows]] = {
    "members": _members,
    "customers": _customers,
    "tags": _tags,
    "contact_ways": _contact_ways,
    "join_ways": _join_ways,
    "groups": _groups,
    "welcome_codes": _welcome_codes,
    "templates": _templates,
    "transfers": _transfers,
    "media": _media,
}


# --- clock, audit, deliveries, snapshot, reset ----------------------------------------------------
@guarded
async def clock_get(request: web.Request) -> web.Response:
    return ok(_sb(request).clock.describe())


@guarded
async def clock_advance(request: web.Request) -> web.Response:
    sb = _sb(request)
    data = await _body(request)
    sb.clock.advance(float(data.get("seconds", 0)))
    ran = sb.run_due()
    return ok({**sb.clock.describe(), "tasks_run": ran})


@guarded
async def clock_set(request: web.Request) -> web.Response:
    sb = _sb(request)
    data = await _body(request)
    if "now" in data:
        sb.clock.set(float(data["now"]), frozen=bool(data.get("frozen", False)))
    elif "frozen" in data:
        sb.clock.freeze(bool(data["frozen"]))
    ran = sb.run_due()
    return ok({**sb.clock.describe(), "tasks_run": ran})


@guarded
async def audit_records(request: web.Request) -> web.Response:
    sb = _sb(request)
    q = request.query
    records = sb.audit.tail(
        corp=q.get("corp"), kind=q.get("kind"), name=q.get("name"), limit=int(q.get("limit", 100))
    )
    return ok({"total": sb.audit.total, "records": records})


def findings(sb: Sandbox, corp_id: str, limit: int = 100) -> dict[str, Any]:
    out: dict[str, Any] = {"corp_id": corp_id, "summary": sb.audit.summary(corp_id)}
    for kind in FINDING_KINDS:
        out[kind] = sb.audit.finding_list(corp_id, kind, limit)
    out["errcode_45009_by_api"] = {a: n for (c, a), n in sb.audit.freq_limited.items() if c == corp_id}
    return out


@guarded
async def audit_findings(request: web.Request) -> web.Response:
    sb = _sb(request)
    corp_id = request.query.get("corp")
    limit = int(request.query.get("limit", 100))
    if corp_id:
        return ok(findings(sb, corp_id, limit))
    return ok({"corps": [findings(sb, c, limit) for c in sb.corps]})


@guarded
async def audit_calls_per_minute(request: web.Request) -> web.Response:
    sb = _sb(request)
    corp_id = request.query.get("corp", "")
    return ok({"corp_id": corp_id, "calls": sb.audit.calls_per_minute(corp_id, request.query.get("api"))})


@guarded
async def deliveries_get(request: web.Request) -> web.Response:
    sb = _sb(request)
    assert sb.outbox is not None
    return ok(sb.outbox.summary())


@guarded
async def deliveries_config(request: web.Request) -> web.Response:
    sb = _sb(request)
    assert sb.outbox is not None
    data = await _body(request)
    before = sb.outbox.config.concurrency
    sb.outbox.config.update(data)
    if sb.outbox.config.concurrency != before:
        await sb.outbox.restart()
    return ok({"config": sb.outbox.config.as_dict()})


@guarded
async def deliveries_wait(request: web.Request) -> web.Response:
    sb = _sb(request)
    assert sb.outbox is not None
    data = await _body(request)
    idle = await sb.outbox.wait_idle(float(data.get("timeout", 10)))
    return ok({"idle": idle, **sb.outbox.summary()})


@guarded
async def snapshot_save(request: web.Request) -> web.Response:
    sb = _sb(request)
    data = await _body(request)
    path = data.get("path") or request.app[SNAPSHOT_PATH]
    if not path:
        raise ControlError('no snapshot path: start with --snapshot FILE or pass {"path": ...}')
    return ok(snapshot.save(sb, str(path)))


@guarded
async def reset(request: web.Request) -> web.Response:
    sb = _sb(request)
    data = await _body(request)
    await scenario.stop_all(sb)
    for corp_id in list(sb.corps):
        sb.drop_corp(corp_id)
    sb.tokens.clear()
    sb.current_tokens.clear()
    sb.schedule.clear()
    sb.limiter.clear()
    sb.audit.clear()
    if sb.outbox is not None:
        sb.outbox.stats.clear()
        sb.outbox.config.update(data.get("delivery") or {})
    if data.get("clock", True):
        sb.clock.offset, sb.clock.frozen_at = 0.0, None
    return ok({"reset": True})


@guarded
async def health(request: web.Request) -> web.Response:
    sb = _sb(request)
    return ok({"ok": True, "corps": len(sb.corps), "now": sb.clock.now()})


@guarded
async def index(request: web.Request) -> web.Response:
    routes = sorted(
        {
            f"{r.method} {r.resource.canonical}"
            for r in request.app.router.routes()
            if r.resource is not None and r.resource.canonical.startswith("/sandbox")
        }
    )
    return ok({"routes": routes, "world_actions": sorted(ACTIONS), "finding_kinds": FINDING_KINDS})


def setup(app: web.Application, *, snapshot_path: str | None) -> None:
    app[SNAPSHOT_PATH] = snapshot_path
    r = app.router
    r.add_get("/sandbox/api", index)
    r.add_get("/sandbox/health", health)
    r.add_post("/sandbox/reset", reset)
    r.add_get("/sandbox/clock", clock_get)
    r.add_post("/sandbox/clock/advance", clock_advance)
    r.add_post("/sandbox/clock/set", clock_set)
    r.add_get("/sandbox/corps", corps_list)
    r.add_post("/sandbox/corps", corps_create)
    r.add_get("/sandbox/corps/{corp}", corp_get)
    r.add_delete("/sandbox/corps/{corp}", corp_delete)
    r.add_post("/sandbox/corps/{corp}/apps", app_set)
    r.add_post("/sandbox/corps/{corp}/apps/{agent_id}/verify", app_verify)
    r.add_post("/sandbox/corps/{corp}/settings", settings_set)
    r.add_post("/sandbox/corps/{corp}/limits", limits_set)
    r.add_post("/sandbox/corps/{corp}/faults", faults_set)
    r.add_post("/sandbox/corps/{corp}/tokens/invalidate", tokens_invalidate)
    r.add_post("/sandbox/corps/{corp}/seed", seed)
    r.add_post("/sandbox/corps/{corp}/world/{action}", world_action)
    r.add_post("/sandbox/corps/{corp}/traffic", traffic_start)
    r.add_get("/sandbox/corps/{corp}/traffic", traffic_get)
    r.add_delete("/sandbox/corps/{corp}/traffic", traffic_stop)
    r.add_get("/sandbox/corps/{corp}/data/{kind}", data)
    r.add_get("/sandbox/audit", audit_records)
    r.add_get("/sandbox/audit/findings", audit_findings)
    r.add_get("/sandbox/audit/calls_per_minute", audit_calls_per_minute)
    r.add_get("/sandbox/deliveries", deliveries_get)
    r.add_post("/sandbox/deliveries/config", deliveries_config)
    r.add_post("/sandbox/deliveries/wait", deliveries_wait)
    r.add_post("/sandbox/snapshot", snapshot_save)
