"""Group codes against the WeCom sandbox over real HTTP, with corp A pointed at it.

`Gc` creates groups in the sandbox and in our database (as the sync would), and makes people join a
join way: the sandbox changes the group as WeCom would, and the change_external_chat event WeCom sends
is applied through the product's own event path (scrm/callbacks/apply.py), with its on-commit work run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction

from scrm.callbacks.apply import event_apply
from scrm.core.redis import get_redis
from scrm.customers.services import member_apply_info
from scrm.groups.models import CustomerGroup
from scrm.sync.services import group_refresh
from scrm.tenancy.models import Corp
from tests.conftest import World
from wecom import events as ev
from wecom.sandbox.events import change_external_chat
from wecom.sandbox.testing import SandboxServer


def forget_keys(corp: Corp) -> None:
    redis = get_redis()
    for pattern in (f"*rl:{{{corp.corp_id}:*", "gc:*"):
        for key in redis.scan_iter(pattern):
            redis.delete(key)


@dataclass
class Gc:
    sb: SandboxServer
    corp: Corp
    capture: Any  # django_capture_on_commit_callbacks
    world_: World
    owner: str = ""

    def world_user(self, name: str) -> Any:
        return getattr(self.world_, name)

    def other_corp(self) -> Corp:
        return self.world_.corp_b

    def world(self, action: str, **params: Any) -> dict[str, Any]:
        return self.sb.world(self.corp.corp_id, action, **params)

    def groups(self, n: int, prefix: str = "池") -> list[CustomerGroup]:
        """n groups in the sandbox, each with its owner only, stored here as the sync would."""
        out = []
        for i in range(n):
            chat = self.world("create_group", owner=self.owner, name=f"{prefix}{i + 1}", deliver=False)
            group_refresh(corp=self.corp, chat_id=chat["chat_id"])
            out.append(CustomerGroup.objects.get(corp=self.corp, chat_id=chat["chat_id"]))
        return out

    def apply(self, xml: str) -> None:
        with self.capture(execute=True), transaction.atomic():
            event_apply(corp=self.corp, event=ev.parse_event(xml))

    def join(self, config_id: str, *, apply: bool = True, ts: float | None = None) -> dict[str, Any]:
        """Someone scans the join way; WeCom's event is applied unless apply=False (returned as `xml`)."""
        detail = self.world("join_group", config_id=config_id, deliver=False)
        detail["xml"] = change_external_chat(
            self.corp.corp_id,
            ts or time.time(),
            detail["chat_id"],
            "update",
            update_detail="add_member",
            join_scene=3,
            members=[detail["external_userid"]],
            last_mem_ver=detail["last_mem_ver"],
            cur_mem_ver=detail["cur_mem_ver"],
        )
        if apply:
            self.apply(detail["xml"])
        return detail

    def leave(self, chat_id: str, external_userid: str) -> None:
        d = self.world("leave_group", chat_id=chat_id, external_userid=external_userid, deliver=False)
        self.apply(
            change_external_chat(
                self.corp.corp_id,
                time.time(),
                chat_id,
                "update",
                update_detail="del_member",
                quit_scene=0,
                members=[external_userid],
                last_mem_ver=d["last_mem_ver"],
                cur_mem_ver=d["cur_mem_ver"],
            )
        )

    def way(self, config_id: str) -> dict[str, Any]:
        token = self.sb.token(self.corp.corp_id, self.corp.secret)
        answer = self.sb.api(
            "POST", "externalcontact/groupchat/get_join_way", token, {"config_id": config_id}
        )
        return dict(answer["join_way"])

    def calls(self, api: str) -> int:
        records = self.sb.control(
            "GET", "/sandbox/audit", corp=self.corp.corp_id, kind="api", name=api, limit=100000
        )
        return len(records["records"])

    def findings(self) -> dict[str, Any]:
        return dict(self.sb.findings(self.corp.corp_id)["summary"])


def link(sb: SandboxServer, corp: Corp, capture: Any, world: World) -> Gc:
    corp.secret = f"gc-{uuid.uuid4().hex}"
    sb.register_corp(corp.corp_id, secret=corp.secret, agent_id=corp.agent_id, name=corp.name)
    corp.api_base = sb.api_base
    corp.save(update_fields=["api_base", "secret"])
    forget_keys(corp)
    sb.seed(corp.corp_id, members=1, customers=0, follows=0, tag_groups=0, contact_ways=0)
    (m,) = sb.data(corp.corp_id, "members")
    member_apply_info(corp=corp, info={"userid": m["userid"], "name": m["name"]})
    return Gc(sb, corp, capture, world, owner=m["userid"])


@pytest.fixture
def gc(world: World, sandbox: SandboxServer, django_capture_on_commit_callbacks: Any) -> Iterator[Gc]:
    linked = link(sandbox, world.corp_a, django_capture_on_commit_callbacks, world)
    yield linked
    forget_keys(world.corp_a)
