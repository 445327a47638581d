"""QR codes of contact ways and join ways, rendered locally with segno; scanning one is a world action.

The QR encodes /sandbox/scan/<config_id>: opening it (a phone on the same network, or a browser)
shows who would be added and a button that performs the scan."""

from __future__ import annotations

import html
import io

import segno
from aiohttp import web

from .server import SANDBOX
from .world import WorldError, run


def scan_url(base: str, config_id: str) -> str:
    return f"{base}/sandbox/scan/{config_id}"


def _base(request: web.Request) -> str:
    return request.app[SANDBOX].public_url or f"{request.scheme}://{request.host}"


async def qr_image(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX]
    config_id, ext = request.match_info["config_id"], request.match_info["ext"]
    if config_id not in sb.qr_index:
        raise web.HTTPNotFound(text=f"no contact or join way {config_id}")
    code = segno.make(scan_url(_base(request), config_id), error="m")
    buf = io.BytesIO()
    if ext == "svg":
        code.save(buf, kind="svg", scale=6, border=2)
        return web.Response(body=buf.getvalue(), content_type="image/svg+xml")
    code.save(buf, kind="png", scale=6, border=2)
    return web.Response(body=buf.getvalue(), content_type="image/png")


_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>扫码 · WeCom sandbox</title>
<style>body{{font:16px system-ui,sans-serif;margin:2rem;max-width:32rem}}
button{{font-size:1.1rem;padding:.6rem 1.2rem}}
pre{{background:#f4f4f4;padding:.8rem;white-space:pre-wrap}}</style></head><body>
<h1>{title}</h1><p>{what}</p>{body}<p><a href="/sandbox/">← sandbox</a></p></body></html>"""


async def scan_page(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX]
    config_id = request.match_info["config_id"]
    corp_id = sb.qr_index.get(config_id)
    corp = sb.corps.get(corp_id or "")
    if corp is None:
        raise web.HTTPNotFound(text=f"no contact or join way {config_id}")
    join = config_id in corp.join_ways
    what = "加入客户群 (join way)" if join else "添加企业成员为好友 (contact way)"
    if request.method == "POST":
        try:
            result = run(sb, corp, "scan", {"config_id": config_id})
            body = f"<p>✅ 已模拟扫码 / scanned</p><pre>{html.escape(str(result))}</pre>"
        except WorldError as exc:
            body = f"<p>❌ {html.escape(str(exc))}</p>"
    else:
        body = '<form method="post"><button type="submit">模拟扫码 · Simulate scan</button></form>'
    page = _PAGE.format(title=html.escape(f"{corp.name} · {config_id[:8]}…"), what=what, body=body)
    return web.Response(text=page, content_type="text/html")


def setup(app: web.Application) -> None:
    app.router.add_get(r"/sandbox/qr/{config_id}.{ext:png|svg}", qr_image)
    app.router.add_route("*", "/sandbox/scan/{config_id}", scan_page)
