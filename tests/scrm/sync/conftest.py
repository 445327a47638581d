"""Full-sync tests run against the WeCom sandbox over real HTTP, with corp A pointed at it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from scrm.tenancy.models import Corp
from tests.conftest import World
from wecom.sandbox.testing import (  # noqa: F401  (fixtures by name)
    SandboxServer,
    sandbox,
    sandbox_server,
)


@dataclass
class Linked:
    """Corp A as our side, the same CorpID and secret registered (no callback URL) in the sandbox."""

    sb: SandboxServer
    corp: Corp

    def seed(self, **params: Any) -> dict[str, Any]:
        return self.sb.seed(self.corp.corp_id, **params)

    def world(self, action: str, **params: Any) -> dict[str, Any]:
        return self.sb.world(self.corp.corp_id, action, **params)

    def data(self, kind: str, **query: Any) -> list[dict[str, Any]]:
        return self.sb.data(self.corp.corp_id, kind, **query)

    def follows(self) -> set[tuple[str, str]]:
        """(userid, external_userid) of every relation WeCom lists, as batch/get_by_user would."""
        active = {m["userid"] for m in self.data("members") if m["resigned_at"] is None}
        return {
            (f["userid"], c["external_userid"])
            for c in self.data("customers")
            for f in c["follows"]
            if f["userid"] in active
        }


def link(sb: SandboxServer, corp: Corp) -> Linked:
    sb.register_corp(corp.corp_id, secret=corp.secret, agent_id=corp.agent_id, name=corp.name)
    corp.api_base = sb.api_base
    corp.save(update_fields=["api_base"])
    return Linked(sb, corp)


@pytest.fixture
def linked(world: World, sandbox: SandboxServer) -> Linked:  # noqa: F811  (fixture by name)
    return link(sandbox, world.corp_a)
