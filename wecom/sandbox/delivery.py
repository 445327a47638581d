"""Callback delivery with WeCom's rules: encrypted envelope, 5 s timeout, up to 3 retries (so at most
4 deliveries) on non-200 / network failure / timeout; every attempt is counted and audited.

One pooled aiohttp ClientSession and a fixed set of worker tasks; a retry is re-queued after the
retry interval (WeCom's interval is not documented; 1 s here by default), so it never holds a worker."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import aiohttp

from wecom.crypto import CallbackCrypto

from .models import App

if TYPE_CHECKING:
    from .state import Sandbox


XML_HEADERS = {"Content-Type": "text/xml"}


@dataclass(slots=True)
class DeliveryConfig:
    timeout: float = 5.0
    retries: int = 3
    retry_interval: float = 1.0
    concurrency: int = 64

    def update(self, data: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"unknown delivery setting {key!r}; known: {sorted(known)}")
            setattr(self, key, type(getattr(self, key))(value))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class Delivery:
    id: int
    corp_id: str
    agent_id: int
    event: str
    url: str
    body: bytes
    created: float  # real time, for latency
    attempts: int = 0


class Outbox:
    def __init__(self, sb: Sandbox, config: DeliveryConfig | None = None) -> None:
        self.sb = sb
        self.config = config or DeliveryConfig()
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self.session: aiohttp.ClientSession | None = None
        self.workers: list[asyncio.Task[None]] = []
        self._ids = itertools.count(1)
        self._cryptos: dict[tuple[str, int, str, str], CallbackCrypto] = {}
        self.pending = 0  # submitted and neither acknowledged nor given up
        self.stats: dict[str, dict[str, int]] = {}
        self.first_submit = 0.0
        self.last_done = 0.0

    # --- building the request -----------------------------------------------------------------------
    def crypto(self, corp_id: str, app: App) -> CallbackCrypto:
        key = (corp_id, app.agent_id, app.token, app.encoding_aes_key)
        c = self._cryptos.get(key)
        if c is None:
            c = self._cryptos[key] = CallbackCrypto(app.token, app.encoding_aes_key, corp_id)
        return c

    def envelope(self, corp_id: str, app: App, xml: str) -> tuple[str, bytes]:
        # The query timestamp is transport time (real), unlike CreateTime inside, which is world time.
        query, body = self.crypto(corp_id, app).build_callback(xml, agent_id=app.agent_id)
        sep = "&" if "?" in app.callback_url else "?"
        url = (
            f"{app.callback_url}{sep}msg_signature={query['msg_signature']}"
            f"&timestamp={query['timestamp']}&nonce={query['nonce']}"
        )
        return url, body

    def submit(self, corp_id: str, app: App, xml: str, event: str) -> None:
        url, body = self.envelope(corp_id, app, xml)
        now = time.time()
        if not self.pending:
            self.first_submit = now
        self.pending += 1
        self._stat(corp_id, "events")
        self.queue.put_nowait(Delivery(next(self._ids), corp_id, app.agent_id, event, url, body, now))

    def _stat(self, corp_id: str, key: str, n: int = 1) -> None:
        s = self.stats.get(corp_id)
        if s is None:
            s = self.stats[corp_id] = {}
        s[key] = s.get(key, 0) + n

    # --- running ------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.session is not None:
            return
        n = max(1, self.config.concurrency)
        connector = aiohttp.TCPConnector(limit=n, limit_per_host=n, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))
        self.workers = [asyncio.create_task(self._worker()) for _ in range(n)]

    async def stop(self) -> None:
        for w in self.workers:
            w.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)
        self.workers = []
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def _worker(self) -> None:
        while True:
            d = await self.queue.get()
            try:
                await self._attempt(d)
            except asyncio.CancelledError:
                self.queue.put_nowait(d)  # stopped mid-flight: a restarted outbox delivers it
                raise
            except Exception as exc:  # never let one delivery kill a worker
                self._record(d, f"error:{type(exc).__name__}", 0, 0.0)
                self._after_failure(d)

    async def _attempt(self, d: Delivery) -> None:
        assert self.session is not None
        t0 = time.perf_counter()
        status, body = 0, b""
        try:
            async with self.session.post(
                d.url,
                data=d.body,
                headers=XML_HEADERS,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
            ) as resp:
                status = resp.status
                body = await resp.read()
            outcome = "ok" if status == 200 else f"http_{status}"
        except TimeoutError:
            outcome = "timeout"
        except aiohttp.ClientError as exc:
            outcome = f"error:{type(exc).__name__}"
        ms = (time.perf_counter() - t0) * 1000
        self._record(d, outcome, status, ms)
        if outcome == "ok":
            if body.strip():
                self._stat(d.corp_id, "nonempty_ack")
            self._stat(d.corp_id, "delivered")
            self._done()
        else:
            self._after_failure(d)

    def _record(self, d: Delivery, outcome: str, status: int, ms: float) -> None:
        d.attempts += 1
        self._stat(d.corp_id, "attempts")
        if outcome != "ok":
            self._stat(d.corp_id, "failed_attempts")
            if outcome == "timeout":
                self._stat(d.corp_id, "timeouts")
        self.sb.audit.callback(
            self.sb.clock.now(),
            d.corp_id,
            d.event,
            outcome,
            {"delivery": d.id, "attempt": d.attempts, "status": status, "ms": round(ms, 2)},
        )

    def _after_failure(self, d: Delivery) -> None:
        if d.attempts <= self.config.retries:
            self._stat(d.corp_id, "retries")
            asyncio.get_running_loop().call_later(self.config.retry_interval, self.queue.put_nowait, d)
        else:
            self._stat(d.corp_id, "gave_up")
            self._done()

    def _done(self) -> None:
        self.pending -= 1
        self.last_done = time.time()

    async def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.pending > 0:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    def summary(self) -> dict[str, Any]:
        total: dict[str, int] = {}
        for s in self.stats.values():
            for k, v in s.items():
                total[k] = total.get(k, 0) + v
        return {
            "config": self.config.as_dict(),
            "pending": self.pending,
            "queued": self.queue.qsize(),
            "total": total,
            "per_corp": self.stats,
            "first_submit": self.first_submit,
            "last_done": self.last_done,
        }

    # --- URL verification (GET echostr) --------------------------------------------------------------
    async def verify_url(self, corp_id: str, app: App) -> dict[str, Any]:
        """What WeCom does when the admin saves the callback settings: the URL must echo the
        decrypted echostr within 1 s (Doc 90930)."""
        assert self.session is not None
        plain = str(secrets.randbelow(10**19))
        params = self.crypto(corp_id, app).build_url_verification(plain)
        try:
            async with self.session.get(
                app.callback_url, params=params, timeout=aiohttp.ClientTimeout(total=1.0)
            ) as resp:
                text = await resp.text()
                ok = resp.status == 200 and text == plain
                return {"ok": ok, "status": resp.status, "expected": plain, "got": text[:200]}
        except (TimeoutError, aiohttp.ClientError) as exc:
            return {"ok": False, "status": 0, "error": type(exc).__name__}
