"""Frequency limits (45009), concurrency limits (45033) and fault injection.

Doc 90454 / 90312: per corp and per API, 10,000 calls a minute and 150,000 an hour. Windows are fixed
and aligned on the (virtual) clock; once a window is exceeded every call to that API answers 45009
until the window ends ("blocked for the rest of the window")."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PER_MINUTE = 10_000
DEFAULT_PER_HOUR = 150_000
# freq: 45009, concurrent: 45033; lost: the call takes effect, then times out like "timeout".
FAULT_KINDS = ("busy", "http5xx", "slow", "timeout", "freq", "concurrent", "lost")


@dataclass(slots=True)
class ApiLimit:
    per_minute: int = DEFAULT_PER_MINUTE
    per_hour: int = DEFAULT_PER_HOUR
    concurrency: int | None = None  # max in-flight calls; None = unlimited
    latency_ms: float = 0.0  # extra service time, to make concurrency observable

    def as_dict(self) -> dict[str, Any]:
        return {
            "per_minute": self.per_minute,
            "per_hour": self.per_hour,
            "concurrency": self.concurrency,
            "latency_ms": self.latency_ms,
        }


@dataclass(slots=True)
class LimitConfig:
    default: ApiLimit = field(default_factory=ApiLimit)
    per_api: dict[str, ApiLimit] = field(default_factory=dict)

    def for_api(self, api: str) -> ApiLimit:
        return self.per_api.get(api, self.default)

    def update(self, data: dict[str, Any]) -> None:
        """{"api": optional path, per_minute, per_hour, concurrency, latency_ms}; no api = default."""
        api = data.get("api")
        if api:
            base = self.per_api.get(api) or ApiLimit(**self.default.as_dict())
            self.per_api[api] = base
        else:
            base = self.default
        for key in ("per_minute", "per_hour"):
            if key in data:
                setattr(base, key, int(data[key]))
        if "concurrency" in data:
            base.concurrency = None if data["concurrency"] is None else int(data["concurrency"])
        if "latency_ms" in data:
            base.latency_ms = float(data["latency_ms"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "default": self.default.as_dict(),
            "per_api": {k: v.as_dict() for k, v in self.per_api.items()},
        }


@dataclass(slots=True)
class FaultConfig:
    rate: float = 0.0
    kinds: dict[str, float] = field(default_factory=lambda: {"busy": 1.0})
    apis: set[str] | None = None  # None = every API
    slow_ms: float = 1500.0
    timeout_s: float = 30.0

    def update(self, data: dict[str, Any]) -> None:
        if "rate" in data:
            self.rate = max(0.0, min(1.0, float(data["rate"])))
        if "kinds" in data:
            kinds = data["kinds"]
            if isinstance(kinds, list):
                kinds = dict.fromkeys(kinds, 1.0)
            unknown = set(kinds) - set(FAULT_KINDS)
            if unknown:
                raise ValueError(f"unknown fault kinds: {sorted(unknown)}; known: {FAULT_KINDS}")
            self.kinds = {k: float(v) for k, v in kinds.items()}
        if "apis" in data:
            self.apis = None if data["apis"] is None else set(data["apis"])
        if "slow_ms" in data:
            self.slow_ms = float(data["slow_ms"])
        if "timeout_s" in data:
            self.timeout_s = float(data["timeout_s"])

    def pick(self, api: str, rng: random.Random) -> str | None:
        if self.rate <= 0.0 or (self.apis is not None and api not in self.apis):
            return None
        if rng.random() >= self.rate:
            return None
        kinds = list(self.kinds)
        return rng.choices(kinds, weights=[self.kinds[k] for k in kinds])[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "kinds": self.kinds,
            "apis": sorted(self.apis) if self.apis is not None else None,
            "slow_ms": self.slow_ms,
            "timeout_s": self.timeout_s,
        }


class RateLimiter:
    """Fixed minute and hour windows per (corp, api)."""

    __slots__ = ("_windows", "inflight")

    def __init__(self) -> None:
        # (corp, api) -> [minute index, count in minute, hour index, count in hour]
        self._windows: dict[tuple[str, str], list[int]] = {}
        self.inflight: dict[tuple[str, str], int] = {}

    def hit(self, corp_id: str, api: str, now: float, limit: ApiLimit) -> str | None:
        """Count one call; return "minute"/"hour" when it is over a limit (→ 45009), else None."""
        minute = int(now // 60)
        hour = int(now // 3600)
        key = (corp_id, api)
        w = self._windows.get(key)
        if w is None:
            w = self._windows[key] = [minute, 0, hour, 0]
        if w[0] != minute:
            w[0], w[1] = minute, 0
        if w[2] != hour:
            w[2], w[3] = hour, 0
        w[1] += 1
        w[3] += 1
        if w[3] > limit.per_hour:
            return "hour"
        if w[1] > limit.per_minute:
            return "minute"
        return None

    def usage(self, corp_id: str, api: str, now: float) -> dict[str, int]:
        w = self._windows.get((corp_id, api))
        if w is None:
            return {"minute": 0, "hour": 0}
        return {
            "minute": w[1] if w[0] == int(now // 60) else 0,
            "hour": w[3] if w[2] == int(now // 3600) else 0,
        }

    def clear(self, corp_id: str | None = None) -> None:
        if corp_id is None:
            self._windows.clear()
            self.inflight.clear()
            return
        for key in [k for k in self._windows if k[0] == corp_id]:
            del self._windows[key]
