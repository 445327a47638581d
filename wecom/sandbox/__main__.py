"""python -m wecom.sandbox --host 127.0.0.1 --port 8900 [--demo] [--callback-url URL] [--trickle PER_MIN]
[--snapshot FILE] [--scenario FILE.json]"""

from __future__ import annotations

import argparse
import json
import logging
import os
from typing import Any

from aiohttp import web

from . import demo, scenario, snapshot
from .control import register
from .delivery import DeliveryConfig
from .server import create_app, public_url_for
from .state import Sandbox

log = logging.getLogger("wecom.sandbox")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m wecom.sandbox", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8900)
    p.add_argument("--demo", action="store_true", help=f"create the demo corp {demo.CORP_ID} (see demo.py)")
    p.add_argument("--callback-url", help="the product's callback URL for the demo corp")
    p.add_argument("--trickle", type=float, metavar="PER_MIN", help="simulated events per minute, forever")
    p.add_argument("--snapshot", metavar="FILE", help="load at start if present, save on shutdown")
    p.add_argument("--scenario", metavar="FILE.json", help="corps to register, seed and drive")
    p.add_argument("--seed", type=int, help="random seed (reproducible ids and people)")
    p.add_argument("--public-url", help="base URL in QR codes (default http://HOST:PORT)")
    p.add_argument("--cpu", type=int, help="pin the process to this CPU core (benchmarks)")
    p.add_argument("--callback-timeout", type=float, default=5.0, help="seconds (WeCom: 5)")
    p.add_argument("--callback-retry-interval", type=float, default=1.0, help="seconds between retries")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    sb = Sandbox(seed=args.seed)
    sb.public_url = (args.public_url or public_url_for(args.host, args.port)).rstrip("/")
    if args.snapshot and os.path.exists(args.snapshot):
        log.info("snapshot loaded: %s", snapshot.load(sb, args.snapshot))
    trickle_corps: list[str] = []
    if args.demo:
        demo.install(sb, callback_url=args.callback_url or demo.DEFAULT_CALLBACK_URL)
        trickle_corps.append(demo.CORP_ID)
    traffic: list[tuple[str, dict[str, Any]]] = []
    if args.scenario:
        with open(args.scenario, encoding="utf-8") as fh:
            data = json.load(fh)
        for item in data.get("corps", []):
            corp = register(sb, item)
            if item.get("seed"):
                log.info("seeded: %s", scenario.seed(sb, corp, item["seed"]))
            if item.get("traffic"):
                traffic.append((corp.corp_id, item["traffic"]))
            trickle_corps.append(corp.corp_id)
    if args.trickle:
        traffic += [(c, {"rate_per_min": args.trickle}) for c in trickle_corps if c not in dict(traffic)]

    delivery = DeliveryConfig(timeout=args.callback_timeout, retry_interval=args.callback_retry_interval)
    app = create_app(sb, delivery=delivery, snapshot_path=args.snapshot)

    async def start_traffic(app: web.Application) -> None:
        for corp_id, params in traffic:
            scenario.start_traffic(sb, sb.corps[corp_id], params)
            log.info("traffic on %s: %s", corp_id, params)

    app.on_startup.append(start_traffic)
    log.info(
        "WeCom sandbox on %s (API base %s/cgi-bin/, dashboard %s/sandbox/)",
        sb.public_url,
        sb.public_url,
        sb.public_url,
    )
    if args.demo:
        log.info(
            "demo corp %s agent %s secret %s token %s aes key %s",
            demo.CORP_ID,
            demo.AGENT_ID,
            demo.SECRET,
            demo.TOKEN,
            demo.ENCODING_AES_KEY,
        )
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
