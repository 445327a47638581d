"""Audit log of every API call, callback delivery and world action, with the indexed counters that
tests and benchmarks query (late welcomes, over-quota sends, capacity refusals, 45009s, calls/min).

Appends are O(1): a bounded deque of tuples plus a few dict counters updated in place."""

from __future__ import annotations

from collections import deque
from typing import Any

# Record layout (a tuple: cheapest thing to append a million times).
TS, KIND, CORP, NAME, CODE, DETAIL = range(6)
Record = tuple[float, str, str, str, int, Any]

FINDING_KINDS = ("late_welcome", "over_quota", "capacity")


class AuditLog:
    def __init__(self, maxlen: int = 200_000, findings_maxlen: int = 10_000) -> None:
        self.maxlen = maxlen
        self.findings_maxlen = findings_maxlen
        self._reset()

    def _reset(self) -> None:
        self.records: deque[Record] = deque(maxlen=self.maxlen)
        self.total = 0
        self.per_minute: dict[tuple[str, str, int], int] = {}  # (corp, api, minute) -> calls
        self.api_totals: dict[tuple[str, str], list[int]] = {}  # (corp, api) -> [calls, errors]
        self.errcodes: dict[tuple[str, int], int] = {}  # (corp, errcode) -> count
        self.freq_limited: dict[tuple[str, str], int] = {}  # (corp, api) -> 45009 answers
        self.findings: dict[tuple[str, str], deque[dict[str, Any]]] = {}
        self.finding_counts: dict[tuple[str, str], int] = {}
        self.welcome: dict[str, dict[str, Any]] = {}  # corp -> issued/sent/latencies
        self.callbacks: dict[str, dict[str, int]] = {}  # corp -> counters

    # --- appends -------------------------------------------------------------------------------
    def api(self, ts: float, corp: str, api: str, errcode: int) -> None:
        self.records.append((ts, "api", corp, api, errcode, None))
        self.total += 1
        key = (corp, api, int(ts // 60))
        self.per_minute[key] = self.per_minute.get(key, 0) + 1
        tot = self.api_totals.get((corp, api))
        if tot is None:
            tot = self.api_totals[(corp, api)] = [0, 0]
        tot[0] += 1
        if errcode:
            tot[1] += 1
            ek = (corp, errcode)
            self.errcodes[ek] = self.errcodes.get(ek, 0) + 1
            if errcode == 45009:
                fk = (corp, api)
                self.freq_limited[fk] = self.freq_limited.get(fk, 0) + 1

    def callback(self, ts: float, corp: str, event: str, outcome: str, detail: dict[str, Any]) -> None:
        self.records.append(
            (ts, "callback", corp, event, 0 if outcome == "ok" else 1, {"outcome": outcome, **detail})
        )
        self.total += 1
        c = self.callbacks.get(corp)
        if c is None:
            c = self.callbacks[corp] = {}
        c[outcome] = c.get(outcome, 0) + 1
        if outcome != "no_callback_url":  # nothing was sent: not a delivery attempt
            c["attempts"] = c.get("attempts", 0) + 1

    def world(self, ts: float, corp: str, action: str, detail: dict[str, Any]) -> None:
        self.records.append((ts, "world", corp, action, 0, detail))
        self.total += 1

    def finding(self, ts: float, corp: str, kind: str, detail: dict[str, Any]) -> None:
        key = (corp, kind)
        q = self.findings.get(key)
        if q is None:
            q = self.findings[key] = deque(maxlen=self.findings_maxlen)
        q.append({"ts": ts, **detail})
        self.finding_counts[key] = self.finding_counts.get(key, 0) + 1
        self.records.append((ts, "finding", corp, kind, 1, detail))
        self.total += 1

    def welcome_event(self, corp: str, key: str, delay: float | None = None) -> None:
        w = self.welcome.get(corp)
        if w is None:
            w = self.welcome[corp] = {"issued": 0, "sent": 0, "late": 0, "delays": []}
        w[key] += 1
        if delay is not None:
            w["delays"].append(delay)

    # --- queries -------------------------------------------------------------------------------
    def count(self, corp: str, kind: str) -> int:
        return self.finding_counts.get((corp, kind), 0)

    def finding_list(self, corp: str, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        q = self.findings.get((corp, kind))
        return list(q)[-limit:] if q else []

    def freq_limit_count(self, corp: str, api: str | None = None) -> int:
        if api is not None:
            return self.freq_limited.get((corp, api), 0)
        return sum(v for (c, _), v in self.freq_limited.items() if c == corp)

    def calls_per_minute(self, corp: str, api: str | None = None) -> dict[str, dict[int, int]]:
        out: dict[str, dict[int, int]] = {}
        for (c, a, minute), n in self.per_minute.items():
            if c == corp and (api is None or a == api):
                out.setdefault(a, {})[minute * 60] = n
        return {a: dict(sorted(m.items())) for a, m in sorted(out.items())}

    def welcome_stats(self, corp: str) -> dict[str, Any]:
        w = self.welcome.get(corp) or {"issued": 0, "sent": 0, "late": 0, "delays": []}
        delays = sorted(w["delays"])

        def pct(p: float) -> float | None:
            return round(delays[min(len(delays) - 1, int(p * len(delays)))], 3) if delays else None

        return {
            "issued": w["issued"],
            "sent_in_time": w["sent"],
            "late_attempts": w["late"],
            "delay_p50": pct(0.5),
            "delay_p95": pct(0.95),
            "delay_max": round(delays[-1], 3) if delays else None,
        }

    def summary(self, corp: str) -> dict[str, Any]:
        return {
            "late_welcome": self.count(corp, "late_welcome"),
            "over_quota": self.count(corp, "over_quota"),
            "capacity": self.count(corp, "capacity"),
            "errcode_45009": self.freq_limit_count(corp),
            "errcode_45033": self.errcodes.get((corp, 45033), 0),
            "api_calls": sum(v[0] for (c, _), v in self.api_totals.items() if c == corp),
            "api_errors": sum(v[1] for (c, _), v in self.api_totals.items() if c == corp),
            "welcome": self.welcome_stats(corp),
            "callbacks": dict(self.callbacks.get(corp, {})),
        }

    def tail(
        self, *, corp: str | None = None, kind: str | None = None, name: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for rec in reversed(self.records):
            if (
                (corp is None or rec[CORP] == corp)
                and (kind is None or rec[KIND] == kind)
                and (name is None or rec[NAME] == name)
            ):
                out.append(
                    {
                        "ts": rec[TS],
                        "kind": rec[KIND],
                        "corp_id": rec[CORP],
                        "name": rec[NAME],
                        "code": rec[CODE],
                        "detail": rec[DETAIL],
                    }
                )
                if len(out) >= limit:
                    break
        return out

    def clear(self, corp: str | None = None) -> None:
        if corp is None:
            self._reset()
            return
        self.records = deque((r for r in self.records if r[CORP] != corp), maxlen=self.maxlen)
        tables: tuple[dict[Any, Any], ...] = (
            self.per_minute,
            self.api_totals,
            self.errcodes,
            self.freq_limited,
            self.findings,
            self.finding_counts,
        )
        for table in tables:
            for k in [k for k in table if k[0] == corp]:
                del table[k]
        self.welcome.pop(corp, None)
        self.callbacks.pop(corp, None)
