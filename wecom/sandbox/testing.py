"""Run the sandbox inside tests: a server on a free port in a background thread, a callback receiver
that decrypts what the sandbox delivers, and pytest fixtures built on both.

    from wecom.sandbox.testing import callback_receiver, sandbox, sandbox_server  # in a conftest.py

    def test_something(sandbox, callback_receiver):
        corp = sandbox.register_corp(callback_url=callback_receiver.url_for(...), ...)
        token = sandbox.token(corp["corp_id"], corp["apps"][0]["secret"])
        sandbox.api("GET", "externalcontact/get_follow_user_list", token)

The product's client suite can point WECOM_API_BASE at `sandbox_server.api_base`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import defusedxml.ElementTree as SafeET
import httpx
import pytest
from aiohttp import web

from wecom.crypto import CallbackCrypto, CallbackError

from .delivery import DeliveryConfig
from .server import create_app
from .state import Sandbox

TEST_TOKEN = "SandboxTestToken1"  # noqa: S105  test-only callback Token
TEST_AES_KEY = "SandboxTestAesKey0123456789abcdefghijklmnop"  # 43 letters/digits


class ControlError(RuntimeError):
    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(f"HTTP {status}: {payload}")
        self.status = status
        self.payload = payload


class SandboxServer:
    """The sandbox on 127.0.0.1:<free port>, served from a background thread with its own event loop."""

    def __init__(self, *, delivery: DeliveryConfig | None = None, seed: int | None = None) -> None:
        self.sandbox = Sandbox(seed=seed)
        self.delivery = delivery
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._http: httpx.Client | None = None

    # --- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> SandboxServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as exc:  # surface startup failures to the caller
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop_site())
            loop.close()

        self._thread = threading.Thread(target=serve, name="wecom-sandbox", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            raise errors[0]
        self._http = httpx.Client(base_url=self.base_url, timeout=30)
        return self

    async def _start_site(self) -> None:
        app = create_app(self.sandbox, delivery=self.delivery)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        self.sandbox.public_url = self.base_url

    async def _stop_site(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(30)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_base(self) -> str:
        """What the product's WECOM_API_BASE should be."""
        return f"{self.base_url}/cgi-bin/"

    # --- control API --------------------------------------------------------------------------------------
    def control(self, method: str, path: str, json: dict[str, Any] | None = None, **params: Any) -> Any:
        assert self._http is not None, "start() first"
        resp = self._http.request(method, path, json=json, params=params or None)
        payload = resp.json()
        if resp.status_code >= 400:
            raise ControlError(resp.status_code, payload)
        return payload

    def reset(self, **delivery: Any) -> None:
        self.control("POST", "/sandbox/reset", {"delivery": delivery} if delivery else {})

    def register_corp(
        self,
        corp_id: str = "ww0123456789abcdef",
        *,
        secret: str = "test-secret",  # noqa: S107
        agent_id: int = 1000002,
        callback_url: str = "",
        token: str = TEST_TOKEN,
        encoding_aes_key: str = TEST_AES_KEY,
        **extra: Any,
    ) -> dict[str, Any]:
        body = {
            "corp_id": corp_id,
            "agent_id": agent_id,
            "secret": secret,
            "callback_url": callback_url,
            "token": token,
            "encoding_aes_key": encoding_aes_key,
            **extra,
        }
        return dict(self.control("POST", "/sandbox/corps", body))

    def seed(self, corp_id: str, **params: Any) -> dict[str, Any]:
        return dict(self.control("POST", f"/sandbox/corps/{corp_id}/seed", params))

    def world(self, corp_id: str, action: str, **params: Any) -> dict[str, Any]:
        return dict(self.control("POST", f"/sandbox/corps/{corp_id}/world/{action}", params))

    def settings(self, corp_id: str, **values: Any) -> dict[str, Any]:
        return dict(self.control("POST", f"/sandbox/corps/{corp_id}/settings", values))

    def limits(self, corp_id: str, **values: Any) -> dict[str, Any]:
        return dict(self.control("POST", f"/sandbox/corps/{corp_id}/limits", values))

    def faults(self, corp_id: str, **values: Any) -> dict[str, Any]:
        return dict(self.control("POST", f"/sandbox/corps/{corp_id}/faults", values))

    def advance(self, seconds: float) -> dict[str, Any]:
        return dict(self.control("POST", "/sandbox/clock/advance", {"seconds": seconds}))

    def data(self, corp_id: str, kind: str, **query: Any) -> list[dict[str, Any]]:
        return list(
            self.control("GET", f"/sandbox/corps/{corp_id}/data/{kind}", **{"limit": 100000, **query})[
                "items"
            ]
        )

    def findings(self, corp_id: str) -> dict[str, Any]:
        return dict(self.control("GET", "/sandbox/audit/findings", corp=corp_id))

    def deliveries(self) -> dict[str, Any]:
        return dict(self.control("GET", "/sandbox/deliveries"))

    def wait_deliveries(self, timeout: float = 10.0) -> dict[str, Any]:
        return dict(self.control("POST", "/sandbox/deliveries/wait", {"timeout": timeout}))

    # --- WeCom API ----------------------------------------------------------------------------------------
    def token(self, corp_id: str, secret: str) -> str:
        payload = self.api("GET", "gettoken", None, params={"corpid": corp_id, "corpsecret": secret})
        assert payload["errcode"] == 0, payload
        return str(payload["access_token"])

    def api(
        self,
        method: str,
        path: str,
        access_token: str | None,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Call /cgi-bin/<path> like the product does; returns the JSON (errcode included)."""
        assert self._http is not None
        query = dict(params or {})
        if access_token is not None:
            query["access_token"] = access_token
        resp = self._http.request(method, f"/cgi-bin/{path}", params=query, json=body, **kwargs)
        return dict(resp.json())


# --- callback receiver ----------------------------------------------------------------------------
@dataclass
class Received:
    corp_id: str
    query: dict[str, str]
    body: bytes
    plaintext: str
    event: dict[str, Any]
    at: float
    error: str = ""


@dataclass
class CallbackReceiver:
    """A tiny HTTP server playing the product's callback URL. It checks and decrypts every delivery with
    CallbackCrypto and records it; `mode` makes it fail ("fail": HTTP 500) or hang ("timeout") for
    `fail_times` requests (None = always), to exercise the sandbox's retries."""

    mode: str = "ok"
    fail_times: int | None = None
    hang_seconds: float = 3.0
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    cryptos: dict[str, CallbackCrypto] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    def add_corp(self, corp_id: str, token: str = TEST_TOKEN, encoding_aes_key: str = TEST_AES_KEY) -> str:
        self.cryptos[corp_id] = CallbackCrypto(token, encoding_aes_key, corp_id)
        return self.url_for(corp_id)

    def url_for(self, corp_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/wecom/callback/{corp_id}/"

    def start(self) -> CallbackReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                corp_id, query = receiver._route(self.path)
                crypto = receiver.cryptos.get(corp_id)
                try:
                    assert crypto is not None
                    echo = crypto.verify_url(
                        query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"]
                    )
                except (AssertionError, KeyError, CallbackError):
                    self._answer(403, b"")
                    return
                self._answer(200, echo.encode())

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                corp_id, query = receiver._route(self.path)
                action = receiver._next_action()
                if action == "timeout":
                    time.sleep(receiver.hang_seconds)
                    with contextlib.suppress(OSError):
                        self._answer(200, b"")
                    return
                if action == "fail":
                    self._answer(500, b"")
                    return
                receiver._record(corp_id, query, body)
                self._answer(200, b"")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="callback-receiver", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _route(self, path: str) -> tuple[str, dict[str, str]]:
        parts = urlsplit(path)
        segments = [s for s in parts.path.split("/") if s]
        corp_id = segments[-1] if segments else ""
        return corp_id, {k: v[0] for k, v in parse_qs(parts.query).items()}

    def _next_action(self) -> str:
        with self._lock:
            self.attempts += 1
            if self.mode == "ok":
                return "ok"
            if self.fail_times is None:
                return self.mode
            if self.fail_times > 0:
                self.fail_times -= 1
                return self.mode
            return "ok"

    def _record(self, corp_id: str, query: dict[str, str], body: bytes) -> None:
        crypto = self.cryptos.get(corp_id)
        plaintext, event, error = "", {}, ""
        try:
            assert crypto is not None, f"no crypto for {corp_id}"
            plaintext = crypto.decrypt(query["msg_signature"], query["timestamp"], query["nonce"], body)
            event = parse_event(plaintext)
        except (AssertionError, KeyError, CallbackError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.received.append(Received(corp_id, query, body, plaintext, event, time.time(), error))

    def events(self, **match: str) -> list[dict[str, Any]]:
        with self._lock:
            items = [r.event for r in self.received if not r.error]
        return [e for e in items if all(e.get(k) == v for k, v in match.items())]

    def wait_for(self, n: int, timeout: float = 10.0, **match: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(**match)
            if len(found) >= n:
                return found
            time.sleep(0.01)
        raise AssertionError(f"expected {n} events matching {match}, got {len(self.events(**match))}")


def parse_event(xml: str) -> dict[str, Any]:
    root = SafeET.fromstring(xml)
    out: dict[str, Any] = {}
    for child in root:
        if child.tag == "MemChangeList":
            out[child.tag] = [item.text or "" for item in child]
        else:
            out[child.tag] = child.text or ""
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- pytest fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """One sandbox for the session; fast delivery settings so retry tests take milliseconds."""
    server = SandboxServer(delivery=DeliveryConfig(timeout=1.0, retry_interval=0.05, concurrency=16), seed=7)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The session's sandbox, emptied (corps, audit, clock offset, delivery stats) for this test."""
    sandbox_server.reset(timeout=1.0, retry_interval=0.05, retries=3)
    return sandbox_server


@pytest.fixture
def callback_receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver().start()
    yield receiver
    receiver.stop()
