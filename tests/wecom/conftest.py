"""Shared fixtures for the wecom tests: real Redis with a unique key prefix per test, and a small
WeCom stand-in on a real local socket (so it can later be swapped for wecom/sandbox)."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from redis import Redis

from wecom.client import WeComClient

# Database 15 is the tests' (tests/conftest.py refuses any other); keys carry a per-test prefix too.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CORP_ID = "wwtestcorp0001"
SECRET = "app-secret-" + "s" * 24  # distinctive, so tests can look for it in logs


@dataclass
class Recorded:
    """One request as the server saw it. ``path`` is relative to /cgi-bin/."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None


# A reply: a JSON object (HTTP 200), or (status, JSON object | raw bytes).
Reply = dict[str, Any] | tuple[int, dict[str, Any] | bytes]
Handler = Callable[[Recorded], Reply]


@dataclass(repr=False)
class FakeWeCom:
    """Answers gettoken (counting calls, issuing distinct tokens), rejects unknown tokens with 40014
    like WeCom, and answers everything else from ``routes`` (default: errcode 0)."""

    requests: list[Recorded] = field(default_factory=list)
    routes: dict[str, Handler] = field(default_factory=dict)
    valid_tokens: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)
    gettoken_reply: dict[str, Any] | None = None  # e.g. an errcode instead of a token
    gettoken_delay: float = 0.0
    expires_in: int = 7200
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cgi-bin/"

    def route(self, path: str, reply: Reply | Handler) -> None:
        self.routes[path] = reply if callable(reply) else (lambda _request: reply)

    def requests_to(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    @property
    def gettoken_calls(self) -> int:
        return len(self.requests_to("gettoken"))

    def revoke_tokens(self) -> None:
        with self._lock:
            self.valid_tokens.clear()

    def handle(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
        if request.path == "gettoken":
            if self.gettoken_delay:
                time.sleep(self.gettoken_delay)
            if self.gettoken_reply is not None:
                return self.gettoken_reply
            token = "TKN" + secrets.token_hex(20)
            with self._lock:
                self.valid_tokens.add(token)
                self.issued.append(token)
            return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in}
        with self._lock:
            known = request.query.get("access_token") in self.valid_tokens
        if not known:
            return {"errcode": 40014, "errmsg": "invalid access_token, hint: [1700000000_1_fake]"}
        handler = self.routes.get(request.path)
        return handler(request) if handler else {"errcode": 0, "errmsg": "ok"}


def _handler_class(fake: FakeWeCom) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the pooled client expects
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            content_type = self.headers.get("Content-Type", "")
            request = Recorded(
                method=self.command,
                path=parts.path.removeprefix("/cgi-bin/"),
                query=dict(parse_qsl(parts.query)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                json=json.loads(body) if body and content_type.startswith("application/json") else None,
            )
            reply = fake.handle(request)
            status, payload = reply if isinstance(reply, tuple) else (200, reply)
            raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        do_GET = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake_wecom() -> Iterator[FakeWeCom]:
    fake = FakeWeCom()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(fake))
    server.daemon_threads = True
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    client.ping()
    yield client
    client.close()


@pytest.fixture
def key_prefix(redis_client: Redis) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards."""
    prefix = f"test:wecom:{uuid.uuid4().hex[:12]}:"
    yield prefix
    keys = list(redis_client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def make_client(
    fake_wecom: FakeWeCom, redis_client: Redis, key_prefix: str
) -> Iterator[Callable[..., WeComClient]]:
    """Build WeComClients pointed at the fake server (keyword overrides allowed)."""
    clients: list[WeComClient] = []

    def make(**overrides: Any) -> WeComClient:
        options: dict[str, Any] = {
            "corp_id": CORP_ID,
            "secret": SECRET,
            "redis": redis_client,
            "base_url": fake_wecom.base_url,
            "key_prefix": key_prefix,
            "timeout": 5.0,
        }
        options.update(overrides)
        client = WeComClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
