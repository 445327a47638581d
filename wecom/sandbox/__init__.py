"""A faithful WeCom (企业微信) simulator: the same paths, request checks, response shapes and errcodes as
WeCom for every API the product calls, limits and faults, a world driver that sends encrypted
callbacks, scenarios, an audit log with compliance queries, a control API and a dashboard.

    python -m wecom.sandbox --demo --trickle 6 --callback-url http://127.0.0.1:8000/wecom/callback/wwdec0de5a4db0c001/

Tests start it with `wecom.sandbox.testing.SandboxServer` (or its pytest fixtures)."""

from __future__ import annotations

from .clock import Clock
from .delivery import DeliveryConfig
from .server import create_app
from .state import Sandbox

__all__ = ["Clock", "DeliveryConfig", "Sandbox", "create_app"]
