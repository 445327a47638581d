"""Benchmark the WeCom sandbox on one core: API calls/s (a realistic mix) and callback deliveries/s.

The sandbox runs as `python -m wecom.sandbox --cpu 0` (pinned to core 0). The load generator (this
process) and the callback receiver (a child process) are pinned to core 1, so the sandbox has one
core to itself. Each measurement is repeated; the median is reported.

    .venv/bin/python bench/bench_sandbox.py [--runs 5] [--duration 5] [--follows 100000] [--json [FILE]]

The benchmark raises the corp's frequency limits (documented defaults: 10,000/min and 150,000/h per
API) so it measures raw throughput; everything else (tokens, validation, audit, quotas) is on."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.common import machine, percentile  # noqa: E402

CORP_ID = "wwbe0c4a11bead0001"
SECRET = "bench-secret"  # noqa: S105  a throwaway corp in a local sandbox
TOKEN = "BenchToken1"  # noqa: S105
AES_KEY = "BenchAesKey0123456789abcdefghijklmnopqrstuv"  # 43 letters/digits
SANDBOX_CPU, LOAD_CPU = 0, 1


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def describe_machine() -> dict[str, Any]:
    import aiohttp

    return {**machine(), "aiohttp": aiohttp.__version__, "sandbox_cpu": SANDBOX_CPU, "load_cpu": LOAD_CPU}


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (clock ticks → seconds)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# --- a fast callback receiver (child process, core 1) -------------------------------------------------------
def receiver_main(port: int, ready: Any) -> None:
    os.sched_setaffinity(0, {LOAD_CPU})
    from wecom.crypto import CallbackCrypto

    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
    seen = [0, 0]  # requests, decrypt checks passed

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                seen[0] += 1
                if seen[0] % 100 == 1:  # spot-check that deliveries really are WeCom callbacks
                    target = head.split(b" ", 2)[1].decode()
                    q = dict(p.split("=", 1) for p in target.split("?", 1)[1].split("&"))
                    crypto.decrypt(q["msg_signature"], q["timestamp"], q["nonce"], body)
                    seen[1] += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- a lean keep-alive HTTP/1.1 load generator ------------------------------------------------------
class Load:
    def __init__(
        self, port: int, pid: int, requests: list[bytes], welcome: list[bytes], welcome_share: float
    ) -> None:
        self.port = port
        self.pid = pid
        self.requests = requests
        self.welcome = welcome
        self.welcome_share = welcome_share
        self.done = 0
        self.ok = 0
        self.latencies: list[float] = []
        self.running = False

    async def worker(self, seed: int) -> None:
        rng = random.Random(seed)
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        reqs, n = self.requests, len(self.requests)
        try:
            while self.running:
                if self.welcome and rng.random() < self.welcome_share:
                    req = self.welcome.pop()
                else:
                    req = reqs[rng.randrange(n)]
                t0 = time.perf_counter()
                writer.write(req)
                head = await reader.readuntil(b"\r\n\r\n")
                i = head.lower().find(b"content-length:")
                length = int(head[i + 15 : head.index(b"\r\n", i)])
                body = await reader.readexactly(length)
                self.latencies.append(time.perf_counter() - t0)
                self.done += 1
                if body.startswith(b'{"errcode": 0,'):
                    self.ok += 1
        finally:
            writer.close()

    async def run(self, connections: int, seconds: float) -> dict[str, float]:
        self.running = True
        tasks = [asyncio.create_task(self.worker(i)) for i in range(connections)]
        await asyncio.sleep(seconds)
        done0, ok0, t0, cpu0 = self.done, self.ok, time.perf_counter(), cpu_seconds(self.pid)
        self.latencies = []
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - t0
        cpu = cpu_seconds(self.pid) - cpu0
        done, ok = self.done - done0, self.ok - ok0
        lat = self.latencies
        self.running = False
        await asyncio.gather(*tasks, return_exceptions=True)
        return {
            "calls_per_s": done / elapsed,
            "sandbox_cpu_busy": round(cpu / elapsed, 3),  # ~1.0: the sandbox's core was saturated
            "ok_ratio": ok / done if done else 0.0,
            "p50_ms": percentile(lat, 50) * 1000,
            "p99_ms": percentile(lat, 99) * 1000,
        }


def _get(path: str, token: str, **params: str) -> bytes:
    query = urlencode({"access_token": token, **params})
    return f"GET /cgi-bin/{path}?{query} HTTP/1.1\r\nHost: b\r\n\r\n".encode()


def _post(path: str, token: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body, ensure_ascii=False).encode()
    head = (
        f"POST /cgi-bin/{path}?access_token={token} HTTP/1.1\r\nHost: b\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def build_mix(http: httpx.Client, token: str) -> list[bytes]:
    """Realistic reads and writes over the seeded data, weighted like a product's steady state."""

    def api(method: str, path: str, **kw: Any) -> dict[str, Any]:
        r = http.request(
            method, f"/cgi-bin/{path}", params={"access_token": token, **kw.pop("params", {})}, **kw
        )
        payload = r.json()
        assert payload["errcode"] == 0, payload
        return dict(payload)

    rng = random.Random(1)
    users = api("GET", "externalcontact/get_follow_user_list")["follow_user"]
    pairs = []
    for u in rng.sample(users, min(50, len(users))):
        for ext in api("GET", "externalcontact/list", params={"userid": u})["external_userid"][:40]:
            pairs.append((u, ext))
    tags = [
        t["id"]
        for g in api("POST", "externalcontact/get_corp_tag_list", json={})["tag_group"]
        for t in g["tag"]
    ]
    chats = [
        c["chat_id"]
        for c in api("POST", "externalcontact/groupchat/list", json={"limit": 100})["group_chat_list"]
    ]
    mix: list[tuple[float, list[bytes]]] = [
        (30, [_get("externalcontact/get", token, external_userid=e) for _, e in pairs]),
        (10, [_get("externalcontact/list", token, userid=u) for u in users[:200]]),
        (
            15,
            [
                _post(
                    "externalcontact/batch/get_by_user",
                    token,
                    {"userid_list": rng.sample(users, 3), "limit": 100},
                )
                for _ in range(200)
            ],
        ),
        (
            15,
            [
                _post(
                    "externalcontact/mark_tag",
                    token,
                    {"userid": u, "external_userid": e, "add_tag": rng.sample(tags, 2)},
                )
                for u, e in pairs
            ],
        ),
        (
            5,
            [
                _post(
                    "externalcontact/remark", token, {"userid": u, "external_userid": e, "remark": "老客户"}
                )
                for u, e in pairs
            ],
        ),
        (5, [_post("externalcontact/get_corp_tag_list", token, {})]),
        (5, [_post("externalcontact/groupchat/get", token, {"chat_id": c}) for c in chats]),
        (5, [_get("user/get", token, userid=u) for u in users[:200]]),
    ]
    out: list[bytes] = []
    for weight, reqs in mix:
        out += [rng.choice(reqs) for _ in range(int(weight * 40))]
    rng.shuffle(out)
    return out


def welcome_requests(http: httpx.Client, token: str, n: int) -> list[bytes]:
    """Fresh welcome codes (valid 20 s, single use), made by scans that are not delivered."""
    res = http.post(
        f"/sandbox/corps/{CORP_ID}/world/scan", json={"count": n, "deliver": False}, timeout=60
    ).json()
    codes = [r["welcome_code"] for r in res["results"] if r["welcome_code"]]
    return [
        _post("externalcontact/send_welcome_msg", token, {"welcome_code": c, "text": {"content": "欢迎光临"}})
        for c in codes
    ]


async def api_run(
    port: int, pid: int, mix: list[bytes], welcome: list[bytes], connections: int, seconds: float
) -> dict[str, float]:
    load = Load(port, pid, mix, welcome, welcome_share=0.10)
    return await load.run(connections, seconds)


def deliveries_run(http: httpx.Client, pid: int, n: int) -> dict[str, float]:
    before = http.get("/sandbox/deliveries").json()["total"]
    t0, cpu0 = time.time(), cpu_seconds(pid)
    http.post(f"/sandbox/corps/{CORP_ID}/world/burst", json={"count": n, "action": "scan"}, timeout=120)
    while True:
        stats = http.get("/sandbox/deliveries").json()
        if stats["pending"] == 0:
            break
        time.sleep(0.05)
    total = stats["total"]
    delivered = total.get("delivered", 0) - before.get("delivered", 0)
    attempts = total.get("attempts", 0) - before.get("attempts", 0)
    span = stats["last_done"] - max(stats["first_submit"], t0)
    busy = (cpu_seconds(pid) - cpu0) / (time.time() - t0)
    return {
        "deliveries_per_s": delivered / span,
        "delivered": delivered,
        "attempts": attempts,
        "seconds": span,
        "sandbox_cpu_busy": round(busy, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument(
        "--duration", type=float, default=5.0, help="seconds measured per API run (after as much warm-up)"
    )
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--deliveries", type=int, default=5000, help="callbacks per delivery run")
    p.add_argument("--members", type=int, default=500)
    p.add_argument("--follows", type=int, default=100_000, help="seeded relationships (try 1000000)")
    p.add_argument(
        "--json", nargs="?", const="-", metavar="FILE", help="write results as JSON (default stdout)"
    )
    args = p.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs two cores: one for the sandbox, one for the load")
    os.sched_setaffinity(0, {LOAD_CPU})

    recv_port, sb_port = free_port(), free_port()
    ready = multiprocessing.Event()
    receiver = multiprocessing.Process(target=receiver_main, args=(recv_port, ready), daemon=True)
    receiver.start()
    ready.wait(10)
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wecom.sandbox",
            "--port",
            str(sb_port),
            "--cpu",
            str(SANDBOX_CPU),
            "--seed",
            "1",
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{sb_port}"
    http = httpx.Client(base_url=base, timeout=600)
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                if http.get("/sandbox/health").status_code == 200:
                    break
            time.sleep(0.05)
        customers = max(1, int(args.follows / 1.25))
        http.post(
            "/sandbox/corps",
            json={
                "corp_id": CORP_ID,
                "name": "压测企业",
                "agent_id": 1000002,
                "secret": SECRET,
                "token": TOKEN,
                "encoding_aes_key": AES_KEY,
                "callback_url": f"http://127.0.0.1:{recv_port}/wecom/callback/{CORP_ID}/",
                "limits": {"per_minute": 10**9, "per_hour": 10**10},
            },
        ).raise_for_status()
        seeded = http.post(
            f"/sandbox/corps/{CORP_ID}/seed",
            json={
                "members": args.members,
                "customers": customers,
                "follows": args.follows,
                "tag_groups": 10,
                "groups": 200,
                "group_size": 50,
                "contact_ways": 5,
                "seed": 1,
            },
        ).json()
        log(
            f"seeded {seeded['follows']:,} follows / {seeded['customers']:,} customers "
            f"in {seeded['seconds']} s; "
            f"sandbox RSS {rss_mb(sandbox.pid):.0f} MB"
        )
        token = http.get("/cgi-bin/gettoken", params={"corpid": CORP_ID, "corpsecret": SECRET}).json()[
            "access_token"
        ]
        mix = build_mix(http, token)

        api_runs = []
        for i in range(args.runs):
            welcome = welcome_requests(http, token, int(4000 * args.duration / 5))
            r = asyncio.run(api_run(sb_port, sandbox.pid, mix, welcome, args.connections, args.duration))
            api_runs.append(r)
            log(
                f"api run {i + 1}: {r['calls_per_s']:,.0f} calls/s, ok {r['ok_ratio']:.4f}, "
                f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                f"sandbox core busy {r['sandbox_cpu_busy']:.0%}"
            )
        deliveries_runs = []
        for i in range(args.runs):
            r = deliveries_run(http, sandbox.pid, args.deliveries)
            deliveries_runs.append(r)
            log(
                f"delivery run {i + 1}: {r['deliveries_per_s']:,.0f} deliveries/s "
                f"({r['delivered']} delivered in {r['attempts']} attempts)"
            )
        result = {
            "machine": describe_machine(),
            "seed": {**seeded, "sandbox_rss_mb": round(rss_mb(sandbox.pid))},
            "api": {
                "median_calls_per_s": round(statistics.median(r["calls_per_s"] for r in api_runs)),
                "runs": api_runs,
                "connections": args.connections,
                "seconds_per_run": args.duration,
                "mix": "get 30%, batch/get_by_user 15%, mark_tag 15%, list 10%, send_welcome_msg ~10%, "
                "remark 5%, get_corp_tag_list 5%, groupchat/get 5%, user/get 5%",
            },
            "callbacks": {
                "median_deliveries_per_s": round(
                    statistics.median(r["deliveries_per_s"] for r in deliveries_runs)
                ),
                "runs": deliveries_runs,
                "per_run": args.deliveries,
            },
            "targets": {"api_calls_per_s": 2000, "deliveries_per_s": 500},
        }
        log(
            f"median: {result['api']['median_calls_per_s']:,} API calls/s, "
            f"{result['callbacks']['median_deliveries_per_s']:,} callback deliveries/s (one core)"
        )
        if args.json:
            text = json.dumps(result, indent=2, ensure_ascii=False)
            if args.json == "-":
                print(text)
            else:
                Path(args.json).write_text(text + "\n")
    finally:
        sandbox.terminate()
        sandbox.wait(20)
        receiver.terminate()


if __name__ == "__main__":
    main()
