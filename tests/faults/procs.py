"""Processes and plumbing the fault suite owns: a private Redis server it may kill, a TCP proxy that plays a
Postgres (or Redis) restart without touching the shared servers, and the product as separate processes
(gunicorn for callbacks, Celery workers per lane) pointed at both.

Nothing here stops or restarts the machine's Redis or Postgres: a "restart" of Postgres is the proxy
dropping every connection and refusing new ones for a while; a restart of Redis is our own redis-server
killed with SIGKILL and started again on the same port (with or without its append-only file).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis as redis_lib

from tests.faults.harness import READY_MARK

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: object, *, timeout: float = 30.0, every: float = 0.1, what: str = "") -> object:
    """Polls `predicate` (a callable) until it returns something truthy; that value is returned."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(every)


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


# --- a Redis server of our own --------------------------------------------------------------------------
class PrivateRedis:
    """`redis-server` on a free port in a scratch directory. `crash()` is SIGKILL; `start()` again reuses
    the port. With `appendonly` the data survives a crash (fsync every write), without it Redis comes back
    empty, as a cache-only production Redis would."""

    def __init__(self, workdir: Path, *, appendonly: bool = True) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        server = shutil.which("redis-server")
        assert server, "the fault suite needs redis-server on the PATH (apt-get install redis-server)"
        args = [server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        args += ["--save", "", "--daemonize", "no", "--protected-mode", "no", "--logfile", "redis.log"]
        args += (
            ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        )
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, timeout=20, what=f"redis-server on port {self.port}")
        return self

    def ping(self) -> bool:
        try:
            return bool(redis_lib.Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
        except redis_lib.RedisError:
            return False

    def crash(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.crash()
        time.sleep(down_for)
        self.start()

    def stop(self) -> None:
        self.crash()


# --- a TCP proxy that can drop everything ----------------------------------------------------------------
class TcpProxy:
    """127.0.0.1:<port> → target. `outage(seconds)` closes every proxied connection at once and refuses new
    ones (nothing listens) for that long: what clients see of a server restart."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._stopped = False
        self.accepted = 0
        self.dropped = 0

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def _listen(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(256)
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), name="fault-proxy-accept", daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: an outage, or stop()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), name="fault-proxy-pump", daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)

    def down(self) -> None:
        """The server is gone: established connections are reset and new ones refused."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
            self.dropped += len(conns) // 2
        for s in conns:
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def up(self) -> None:
        if self._listener is None and not self._stopped:
            self._listen()

    def outage(self, seconds: float) -> None:
        self.down()
        time.sleep(seconds)
        self.up()

    def stop(self) -> None:
        self._stopped = True
        self.down()


def redeliver_unacked(broker_url: str, queues: Iterable[str]) -> int:
    """What the Redis broker does for a dead worker's tasks once their visibility timeout lapses (an hour in
    production): puts every unacknowledged message of `queues` back at the head of its queue. Run right
    after killing the only worker of those queues, it stands for that hour without shortening the timeout
    for live workers (whose countdown tasks would then be handed out again and again)."""
    from tasks.celery import app

    wanted = set(queues)
    restored = 0
    with app.connection_for_write(broker_url) as conn:
        channel: Any = conn.default_channel
        client = channel.client
        for tag, raw in client.hgetall(channel.unacked_key).items():
            _message, exchange, routing_key = json.loads(raw)
            if wanted & set(channel._lookup(exchange, routing_key)):
                channel.qos.restore_by_tag(tag, client, leftmost=True)
                restored += 1
    return restored


# --- the product as processes ---------------------------------------------------------------------------
@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    killed: bool = False  # on purpose, by the test

    def output(self, tail: int = 6000) -> str:
        try:
            return self.log.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def pool_pids(self) -> list[int]:
        return children(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL to the worker and its pool at once: nothing acknowledges, nothing cleans up."""
        self.killed = True
        pids = [self.proc.pid, *self.pool_pids()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        # Pool children orphaned by a SIGKILL of their parent.
        for pid in self.pool_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Product:
    """gunicorn and Celery workers on `db_url` (usually the Postgres proxy) and `redis_url` (our own Redis),
    with the test settings and the fault harness's Celery app (shorter visibility timeout and leases)."""

    db_url: str
    redis_url: str
    logdir: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    web_port: int = 0
    workers: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (queues, concurrency)
    revived: list[str] = field(default_factory=list)  # what exited on its own, with its last words

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": self.db_url,
            "TEST_REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            # A connection kept across tasks meets the Postgres restart; health checks replace it.
            "DATABASE_CONN_MAX_AGE": "60",
            "LOG_LEVEL": os.environ.get("FAULTS_LOG_LEVEL", "WARNING"),
            "PYTHONUNBUFFERED": "1",
            **self.env_extra,
        }

    def _spawn(self, name: str, args: list[str]) -> Proc:
        log = self.logdir / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(args, cwd=REPO, env=self.env(), stdout=out, stderr=subprocess.STDOUT)
        p = Proc(name, proc, log)
        self.procs[name] = p
        return p

    def start_web(self) -> str:
        self.web_port = free_port()
        gunicorn = str(BIN / "gunicorn")
        args = [
            gunicorn,
            "scrm.wsgi:application",
            "-c",
            "gunicorn.conf.py",
            "-b",
            f"127.0.0.1:{self.web_port}",
        ]
        p = self._spawn("web", [*args, "-w", "1", "--threads", "8"])

        def up() -> bool:
            assert p.alive(), f"gunicorn exited:\n{p.output()}"
            try:
                return httpx.get(f"{self.web_url}/healthz", timeout=2).status_code < 500
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=60, what="gunicorn")
        return self.web_url

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def revive(self) -> int:
        """What a process supervisor (systemd, `restart: unless-stopped`) does: a worker that exited on its
        own is started again. Each such exit is kept in `revived` for the test to report."""
        count = 0
        for name, (queues, concurrency) in list(self.workers.items()):
            p = self.procs[name]
            if p.alive() or p.killed:
                continue
            lines = [line for line in p.output(20_000).splitlines() if "CRITICAL" in line or "Error" in line]
            self.revived.append(f"{name} exited ({p.proc.returncode}): {lines[-1] if lines else ''}")
            del self.workers[name]
            self.start_worker(f"{name}-r{len(self.revived)}", queues, concurrency)
            count += 1
        return count

    def start_worker(self, name: str, queues: str, concurrency: int = 2) -> Proc:
        celery = str(BIN / "celery")
        args = [celery, "-A", "tests.faults.harness", "worker", "-Q", queues, "-c", str(concurrency)]
        args += [
            "-n",
            f"{name}-{os.getpid()}-{time.monotonic_ns()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
        args += ["--without-heartbeat", "-l", "WARNING"]
        p = self._spawn(name, args)
        self.workers[name] = (queues, concurrency)

        def ready() -> bool:
            assert p.alive(), f"worker {name} exited:\n{p.output()}"
            return len(p.pool_pids()) >= concurrency and READY_MARK in p.output(100_000)

        wait_until(ready, timeout=60, what=f"worker {name}")
        return p

    def stop(self) -> None:
        # The test is over: nothing to finish gracefully, and a warm shutdown would wait for tasks.
        for p in self.procs.values():
            if p.alive():
                p.kill()
            p.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.output()}" for p in self.procs.values())


@contextlib.contextmanager
def product(db_url: str, redis_url: str, logdir: Path, **env: str) -> Iterator[Product]:
    prod = Product(db_url, redis_url, logdir, env_extra=dict(env))
    try:
        yield prod
    finally:
        prod.stop()
