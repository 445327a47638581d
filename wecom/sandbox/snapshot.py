"""Snapshots: the whole simulated state (corps, tokens, schedule, clock offset, audit) in one file.

Pickle, because the state is a graph of slotted dataclasses and must round-trip exactly. A snapshot is
a local file the operator chose; never load one from an untrusted source."""

from __future__ import annotations

import os
import pickle
import tempfile
from typing import Any

from .state import Sandbox

FORMAT = "wecom-sandbox-snapshot/1"


def save(sb: Sandbox, path: str) -> dict[str, Any]:
    state = {
        "format": FORMAT,
        "corps": sb.corps,
        "tokens": sb.tokens,
        "current_tokens": sb.current_tokens,
        "qr_index": sb.qr_index,
        "schedule": sb.schedule,
        "seq": sb._seq,
        "clock": (sb.clock.offset, sb.clock.frozen_at),
        "audit": sb.audit,
    }
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".snapshot-", dir=directory)
    with os.fdopen(fd, "wb") as fh:
        pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)  # atomic: a crash mid-save never leaves half a snapshot
    return {"path": path, "bytes": os.path.getsize(path), "corps": len(sb.corps)}


def load(sb: Sandbox, path: str) -> dict[str, Any]:
    with open(path, "rb") as fh:
        state = pickle.load(fh)  # noqa: S301  the operator's own snapshot file, see module docstring
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file")
    sb.corps = state["corps"]
    sb.tokens = state["tokens"]
    sb.current_tokens = state["current_tokens"]
    sb.qr_index = state["qr_index"]
    sb.schedule = state["schedule"]
    sb._seq = state["seq"]
    sb.clock.offset, sb.clock.frozen_at = state["clock"]
    sb.audit = state["audit"]
    return {"path": path, "corps": len(sb.corps)}
