"""Per-request (or per-task) context that every log line carries."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
corp_var: ContextVar[str] = ContextVar("corp", default="-")
