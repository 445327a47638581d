"""The dashboard at /sandbox/: corps, recent traffic and audit findings. Server-rendered, no assets."""

from __future__ import annotations

import html
import time
from datetime import datetime
from typing import Any

from aiohttp import web

from . import scenario
from .clock import SHANGHAI
from .control import counts
from .server import SANDBOX
from .state import Sandbox

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;
margin:1.5rem;color:#1d2129}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
table{border-collapse:collapse;width:100%;margin:.3rem 0}
th,td{border-bottom:1px solid #e5e6eb;padding:.3rem .5rem;
text-align:left;vertical-align:top}th{background:#f7f8fa;font-weight:600}.num{text-align:right}
.bad{color:#c9302c;font-weight:600}.ok{color:#1a7f37}.muted{color:#86909c}code{font-size:12px}
.qr{display:inline-block;margin:.3rem;text-align:center;font-size:12px}.qr img{width:120px;height:120px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _t(ts: float) -> str:
    return datetime.fromtimestamp(ts, SHANGHAI).strftime("%m-%d %H:%M:%S")


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def _flag(n: int) -> str:
    return f'<span class="{"bad" if n else "ok"}">{n}</span>'


def render(sb: Sandbox) -> str:
    now = sb.clock.now()
    out = [
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta http-equiv="refresh" content="5"><title>WeCom sandbox · 企业微信沙箱</title>',
        f"<style>{CSS}</style></head><body>",
        "<h1>WeCom sandbox · 企业微信沙箱</h1>",
        f'<p class="muted">virtual time {_e(_t(now))} (Asia/Shanghai), offset {sb.clock.offset:+.0f}s · '
        f"{sb.audit.total} audit records · API base <code>{_e(sb.public_url)}/cgi-bin/</code> · "
        '<a href="/sandbox/api">control API</a></p>',
    ]
    out.append(
        "<h2>Corps · 企业</h2><table><tr><th>CorpID</th><th>name</th><th>members</th><th>customers</th>"
        "<th>follows</th><th>groups</th><th>tags</th><th>callback URL</th><th>callbacks ok / attempts</th>"
        "<th>traffic</th></tr>"
    )
    for corp in sb.corps.values():
        c = counts(corp)
        stats = sb.outbox.stats.get(corp.corp_id, {}) if sb.outbox else {}
        urls = "<br>".join(_e(a.callback_url) for a in corp.apps.values() if a.callback_url) or "—"
        traffic = scenario.traffic_status(sb, corp.corp_id)
        tr = f"{traffic['rate_per_min']:g}/min" if traffic and traffic["running"] else "—"
        out.append(
            f"<tr><td><code>{_e(corp.corp_id)}</code></td><td>{_e(corp.name)}</td>"
            f'<td class="num">{c["members"]}</td><td class="num">{c["customers"]}</td>'
            f'<td class="num">{c["follows"]}</td><td class="num">{c["groups"]}</td>'
            f'<td class="num">{c["tags"]}</td><td><code>{urls}</code></td>'
            f"<td class=num>{stats.get('delivered', 0)} / {stats.get('attempts', 0)}"
            f"</td><td>{tr}</td></tr>"
        )
    out.append("</table>")

    out.append(
        "<h2>Audit findings · 合规检查</h2><table><tr><th>CorpID</th><th>welcome &gt;20 s</th>"
        "<th>over receive quota</th><th>joins beyond capacity</th><th>45009</th><th>45033</th>"
        "<th>welcome codes issued / sent in time</th><th>welcome delay p50 / p95</th></tr>"
    )
    for corp in sb.corps.values():
        s = sb.audit.summary(corp.corp_id)
        w = s["welcome"]
        out.append(
            f"<tr><td><code>{_e(corp.corp_id)}</code></td><td>{_flag(s['late_welcome'])}</td>"
            f"<td>{_flag(s['over_quota'])}</td><td>{_flag(s['capacity'])}</td>"
            f"<td>{_flag(s['errcode_45009'])}</td><td>{_flag(s['errcode_45033'])}</td>"
            f"<td>{w['issued']} / {w['sent_in_time']}</td>"
            f"<td>{_secs(w['delay_p50'])} / {_secs(w['delay_p95'])}</td></tr>"
        )
    out.append("</table>")

    minute = int(now // 60)
    rows = [(cid, a, n) for (cid, a, m), n in sb.audit.per_minute.items() if m in (minute, minute - 1)]
    if rows:
        out.append(
            "<h2>Calls per API, this and last minute · 接口调用</h2><table><tr><th>CorpID</th><th>API</th>"
            "<th>calls</th></tr>"
        )
        merged: dict[tuple[str, str], int] = {}
        for cid, a, n in rows:
            merged[(cid, a)] = merged.get((cid, a), 0) + n
        for (cid, a), n in sorted(merged.items(), key=lambda kv: -kv[1])[:30]:
            out.append(
                f"<tr><td><code>{_e(cid)}</code></td><td><code>{_e(a)}</code></td>"
                f'<td class="num">{n}</td></tr>'
            )
        out.append("</table>")

    out.append(
        "<h2>Recent traffic · 最近动态</h2><table><tr><th>time</th><th>kind</th><th>corp</th><th>what</th>"
        "<th>code</th><th>detail</th></tr>"
    )
    for r in sb.audit.tail(limit=40):
        detail = r["detail"]
        text = ", ".join(f"{k}={v}" for k, v in detail.items())[:160] if isinstance(detail, dict) else ""
        code_cls = "bad" if r["code"] else ""
        out.append(
            f"<tr><td>{_e(_t(r['ts']))}</td><td>{_e(r['kind'])}</td><td><code>{_e(r['corp_id'])}</code></td>"
            f"<td><code>{_e(r['name'])}</code></td><td class='{code_cls}'>{_e(r['code'])}</td>"
            f"<td class='muted'>{_e(text)}</td></tr>"
        )
    out.append("</table>")

    ways = [
        (corp, w.config_id, w.remark or w.state)
        for corp in sb.corps.values()
        for w in list(corp.contact_ways.values())[:4]
    ]
    ways += [
        (corp, w.config_id, w.remark or w.state)
        for corp in sb.corps.values()
        for w in list(corp.join_ways.values())[:2]
    ]
    if ways:
        out.append("<h2>QR codes · 渠道活码 (open one to simulate a scan)</h2><div>")
        for corp, cid, label in ways:
            out.append(
                f'<a class="qr" href="/sandbox/scan/{_e(cid)}"><img alt="QR" src="/sandbox/qr/{_e(cid)}.png">'
                f"<br>{_e(corp.name)}<br>{_e(label)}</a>"
            )
        out.append("</div>")
    out.append(f'<p class="muted">rendered in real time {time.strftime("%H:%M:%S")}</p></body></html>')
    return "".join(out)


async def dashboard(request: web.Request) -> web.Response:
    return web.Response(text=render(request.app[SANDBOX]), content_type="text/html")


async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/sandbox/")


def setup(app: web.Application) -> None:
    app.router.add_get("/sandbox/", dashboard)
    app.router.add_get("/sandbox", root)
    app.router.add_get("/", root)
