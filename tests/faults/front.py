"""The network between WeCom (the sandbox) and our callback endpoint, made unreliable on purpose.

Every delivery is forwarded to the product, and the product's answer is recorded. With `deliveries=4`
the front then tells the sandbox "500" for the first three attempts of each callback although the
product stored it (an answer lost on the way back), so WeCom's retry rule delivers every callback four
times; a random hold before forwarding (`jitter`) makes deliveries overtake each other, so events arrive
out of order. The front decrypts what passes (test side, with the corp's credentials) to know which
events the product acknowledged: the invariant checker requires each of those in the inbox.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from wecom.crypto import CallbackCrypto, CallbackError


@dataclass
class CallbackFront:
    upstream: str  # the product's base URL, e.g. http://127.0.0.1:8123
    crypto: CallbackCrypto
    deliveries: int = 1  # attempts of each callback the sandbox must make (WeCom: at most 4)
    jitter: float = 0.0  # seconds: each delivery is held up to this long before it is forwarded
    seed: int = 0
    acked: set[str] = field(default_factory=set)  # plaintext digests the product answered 200 for
    attempts: Counter[str] = field(default_factory=Counter)  # per encrypted body
    statuses: Counter[int] = field(default_factory=Counter)  # the product's answers
    forwarded: int = 0
    reordered: int = 0  # deliveries forwarded after a later one had overtaken them

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._http = httpx.Client(base_url=self.upstream, timeout=30)
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self._arrivals = 0
        self._latest_forwarded = -1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/wecom/callback/{self.crypto.corp_id}/"

    def start(self) -> CallbackFront:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                try:
                    resp = front._http.get(self.path)
                    self._answer(resp.status_code, resp.content)
                except httpx.HTTPError:
                    self._answer(502, b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._answer(*front._deliver(self.path, body))

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="callback-front", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._http.close()

    def _digest(self, path: str, body: bytes) -> str:
        query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
        try:
            plaintext = self.crypto.decrypt(query["msg_signature"], query["timestamp"], query["nonce"], body)
        except (KeyError, CallbackError):
            return ""
        return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()

    def _deliver(self, path: str, body: bytes) -> tuple[int, bytes]:
        digest = self._digest(path, body)
        key = hashlib.sha256(body).hexdigest()
        with self._lock:
            self.attempts[key] += 1
            attempt = self.attempts[key]
            hold = self._rng.uniform(0, self.jitter) if self.jitter else 0.0
            arrival = self._arrivals
            self._arrivals += 1
        if hold:
            time.sleep(hold)
        with self._lock:
            if arrival < self._latest_forwarded:
                self.reordered += 1
            self._latest_forwarded = max(self._latest_forwarded, arrival)
        try:
            resp = self._http.post(path, content=body, headers={"Content-Type": "text/xml"})
            status, content = resp.status_code, resp.content
        except httpx.HTTPError:
            status, content = 502, b""
        with self._lock:
            self.forwarded += 1
            self.statuses[status] += 1
            if status == 200 and digest:
                self.acked.add(digest)
        if status == 200 and attempt < self.deliveries:
            return 500, b""  # the product has it; WeCom never hears so, and tries again
        return status, content

    def wait_idle(self, sb: Any, timeout: float = 60.0) -> None:
        """Until the sandbox has nothing left to deliver (every callback acknowledged or given up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sb.wait_deliveries(timeout=5)["idle"]:
                return
        raise AssertionError(f"the sandbox still has callbacks to deliver after {timeout:.0f} s")
