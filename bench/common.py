"""Shared by the benchmarks: the machine description, percentiles, and a scratch database."""

from __future__ import annotations

import base64
import os
import platform
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "load_avg_1m": os.getloadavg()[0],
    }


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def scratch_database(name: str) -> str:
    """Drops and re-creates database `name` on the local server, migrates it, returns its URL."""
    base = os.environ.get("BENCH_DATABASE_SERVER", "postgres://root@127.0.0.1:5432")
    url = f"{base}/{name}"
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "root", "--if-exists", name], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "root", name], check=True)
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=REPO_ROOT, env=env, check=True)
    return url


# Every benchmark runs on this Redis database (flushed at its start); they run one at a time.
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

BENCH_FIELD_KEY = "bench:" + base64.b64encode(b"b" * 32).decode()


def production_env(*, db_url: str, redis_url: str) -> dict[str, str]:
    """The environment the product runs with in production (DEBUG off), on the benchmark's own stores."""
    return {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + "s" * 40,
        "FIELD_ENCRYPTION_KEY": BENCH_FIELD_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PUBLIC_BASE_URL": "https://bench.invalid",
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "scrm.settings",
    }


def wait_http(url: str, timeout: float = 60) -> None:
    """Waits until `url` answers (a server this benchmark started)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not come up")


def stop_processes(procs: list[subprocess.Popen[bytes]], timeout: float = 20) -> None:
    """SIGTERM every process the benchmark started, then wait; kill what doesn't stop in time."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()


def start_sandbox(
    *, port: int, env: dict[str, str], callback_url: str | None = None
) -> subprocess.Popen[bytes]:
    """The WeCom sandbox with the demo corp (delivering callbacks to `callback_url` when given)."""
    cmd = [PY, "-m", "wecom.sandbox", "--host", "127.0.0.1", "--port", str(port), "--demo"]
    if callback_url:
        cmd += ["--callback-url", callback_url]
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_web(
    *, port: int, env: dict[str, str], workers: int, production_conf: bool = False
) -> subprocess.Popen[bytes]:
    """gunicorn on 127.0.0.1:`port`: with gunicorn.conf.py (threads, as in production) or plain workers."""
    cmd = [str(Path(PY).parent / "gunicorn"), "scrm.wsgi:application"]
    if production_conf:
        cmd += ["-c", "gunicorn.conf.py"]
    cmd += ["-b", f"127.0.0.1:{port}", "-w", str(workers)]
    if not production_conf:
        cmd += ["--log-level", "warning"]
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env)
