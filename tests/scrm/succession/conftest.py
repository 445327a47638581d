"""Succession tests run against the WeCom sandbox over real HTTP, with corp A pointed at it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from scrm.core.redis import get_redis
from scrm.customers.models import Member
from scrm.customers.services import member_mark_left
from scrm.sync.services import full_sync_execute, full_sync_start
from scrm.tenancy.models import Corp
from tests.conftest import World
from wecom.sandbox.testing import SandboxServer, sandbox, sandbox_server  # noqa: F401  (fixtures)


@dataclass
class Succ:
    sb: SandboxServer
    corp: Corp

    def world(self, action: str, **params: Any) -> dict[str, Any]:
        return self.sb.world(self.corp.corp_id, action, **params)

    def data(self, kind: str, **query: Any) -> list[dict[str, Any]]:
        return self.sb.data(self.corp.corp_id, kind, **query)

    def calls(self, api: str) -> list[dict[str, Any]]:
        records = self.sb.control(
            "GET", "/sandbox/audit", corp=self.corp.corp_id, kind="api", name=api, limit=100000
        )
        return list(records["records"])

    def transfer_requests(self) -> list[dict[str, Any]]:
        """Every customer transfer request WeCom received (the sandbox's audit)."""
        records = self.sb.control(
            "GET",
            "/sandbox/audit",
            corp=self.corp.corp_id,
            kind="world",
            name="transfer_requested",
            limit=100000,
        )
        return [r["detail"] for r in records["records"]]

    def requested(self) -> list[str]:
        """external_userids in every transfer request WeCom received (started or not)."""
        return [c["external_userid"] for r in self.transfer_requests() for c in r["customer"]]

    def setup(self, *, customers: int, groups: int = 0, successors: int = 2) -> tuple[Member, list[Member]]:
        """One member ("the leaver") with `customers` customers and `groups` groups, then `successors`
        colleagues with a few customers of their own; everything synced into our database."""
        self.sb.seed(
            self.corp.corp_id,
            members=1,
            customers=customers,
            follows=customers,
            groups=groups,
            group_size=3,
            tag_groups=0,
            contact_ways=0,
            seed=3,
        )
        self.sb.seed(
            self.corp.corp_id,
            members=successors,
            customers=0,
            follows=0,
            tag_groups=0,
            contact_ways=0,
            seed=4,
        )
        run, _ = full_sync_start(corp=self.corp)
        full_sync_execute(run_id=run.pk)
        leaver_userid = next(m["userid"] for m in self.data("members"))
        leaver = Member.objects.get(corp=self.corp, userid=leaver_userid)
        others = list(Member.objects.filter(corp=self.corp).exclude(pk=leaver.pk).order_by("userid"))
        return leaver, others

    def resign(self, member: Member) -> Member:
        self.world("resign", userid=member.userid)
        from django.utils import timezone

        return member_mark_left(corp=self.corp, userid=member.userid, at=timezone.now())


def forget_corp_keys(corp: Corp) -> None:
    redis = get_redis()
    for key in redis.scan_iter(f"*rl:{{{corp.corp_id}:*"):
        redis.delete(key)


@pytest.fixture
def succ(world: World, sandbox: SandboxServer) -> Iterator[Succ]:  # noqa: F811  (fixture by name)
    corp = world.corp_a
    # A secret of our own: the token cache is keyed by it, and other runs share corp A's CorpID.
    corp.secret = f"succ-{uuid.uuid4().hex}"
    sandbox.register_corp(corp.corp_id, secret=corp.secret, agent_id=corp.agent_id, name=corp.name)
    corp.api_base = sandbox.api_base
    corp.save(update_fields=["api_base", "secret"])
    forget_corp_keys(corp)
    yield Succ(sandbox, corp)
    forget_corp_keys(corp)
