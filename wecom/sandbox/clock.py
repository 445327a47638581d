"""Injectable clock: real time plus an offset, optionally frozen, so tests can jump over
20-second welcome windows, 3-day media expiry and 90-day transfer guards without waiting."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

# Asia/Shanghai has had no DST since 1991: a fixed +08:00 offset is exact and needs no tzdata.
SHANGHAI_OFFSET = 8 * 3600
SHANGHAI = timezone(timedelta(seconds=SHANGHAI_OFFSET), "Asia/Shanghai")


class Clock:
    def __init__(self, *, offset: float = 0.0, frozen_at: float | None = None) -> None:
        self.offset = offset
        self.frozen_at = frozen_at

    def now(self) -> float:
        base = time.time() if self.frozen_at is None else self.frozen_at
        return base + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self.now()

    def set(self, when: float, *, frozen: bool = False) -> float:
        """Jump to an absolute virtual time; frozen stops it from moving until advanced again."""
        if frozen:
            self.frozen_at, self.offset = when, 0.0
        else:
            self.frozen_at, self.offset = None, when - time.time()
        return self.now()

    def freeze(self, frozen: bool) -> None:
        if frozen and self.frozen_at is None:
            self.frozen_at, self.offset = self.now(), 0.0
        elif not frozen and self.frozen_at is not None:
            self.offset, self.frozen_at = self.now() - time.time(), None

    def describe(self) -> dict[str, object]:
        now = self.now()
        return {
            "now": now,
            "iso": datetime.fromtimestamp(now, SHANGHAI).isoformat(),
            "utc": datetime.fromtimestamp(now, UTC).isoformat(),
            "offset": self.offset if self.frozen_at is None else now - time.time(),
            "frozen": self.frozen_at is not None,
        }
