"""Sandbox tests: everything goes over real HTTP to a sandbox running on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from wecom.sandbox.testing import (  # noqa: F401  (fixtures)
    CallbackReceiver,
    SandboxServer,
    callback_receiver,
    sandbox,
    sandbox_server,
)

CORP_ID = "ww0123456789abcdef"
SECRET = "corp-secret-0001"


@dataclass
class Env:
    """A registered, seeded corp whose callbacks go to a local receiver."""

    sb: SandboxServer
    receiver: CallbackReceiver
    corp_id: str
    secret: str
    token: str

    def call(
        self, path: str, body: dict[str, Any] | None = None, *, method: str = "POST", **params: Any
    ) -> dict:
        if method == "GET":
            return self.sb.api("GET", path, self.token, params=params)
        return self.sb.api("POST", path, self.token, body or {}, params=params or None)

    def ok(
        self, path: str, body: dict[str, Any] | None = None, *, method: str = "POST", **params: Any
    ) -> dict:
        payload = self.call(path, body, method=method, **params)
        assert payload["errcode"] == 0, payload
        return payload

    def refresh_token(self) -> str:
        self.token = self.sb.token(self.corp_id, self.secret)
        return self.token

    def world(self, action: str, **params: Any) -> dict[str, Any]:
        return self.sb.world(self.corp_id, action, **params)

    def data(self, kind: str, **query: Any) -> list[dict[str, Any]]:
        return self.sb.data(self.corp_id, kind, **query)

    def members(self) -> list[str]:
        return [m["userid"] for m in self.data("members") if m["resigned_at"] is None]

    def follows(self, userid: str) -> list[str]:
        return [c["external_userid"] for c in self.data("customers", userid=userid)]


def make_env(sb: SandboxServer, receiver: CallbackReceiver, corp_id: str = CORP_ID, **seed: Any) -> Env:
    url = receiver.add_corp(corp_id)
    sb.register_corp(corp_id, secret=SECRET, callback_url=url, name="测试企业")
    if seed:
        sb.seed(corp_id, **seed)
    return Env(sb, receiver, corp_id, SECRET, sb.token(corp_id, SECRET))


@pytest.fixture
def env(sandbox: SandboxServer, callback_receiver: CallbackReceiver) -> Iterator[Env]:  # noqa: F811  fixtures by name
    yield make_env(sandbox, callback_receiver, members=4, customers=30, groups=3, group_size=10, seed=11)
