"""Corp secrets (app secret, callback Token, EncodingAESKey) and WeCom access tokens never appear in logs,
dashboard pages or API responses, through a flow that really uses them: a full sync from the WeCom sandbox
(token fetched, APIs called), callbacks received and refused, every page and every endpoint read."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from django.test import Client

from scrm.core.redis import get_redis
from scrm.sync.services import full_sync_execute, full_sync_start
from tests.api.fixtures import Tokens, api_client
from tests.conftest import World, client_for
from tests.scrm.callbacks.helpers import fixture_xml, post_callback
from tests.scrm.test_url_walk import _build_path, all_routes
from wecom.crypto import CallbackCrypto

pytestmark = pytest.mark.django_db


def _access_tokens(corp_id: str) -> list[str]:
    """The access tokens our shared token cache holds for the corp (what every WeCom call carried)."""
    redis, found = get_redis(), []
    for key in redis.scan_iter(f"*token:{{{corp_id}:*"):
        name = key.decode() if isinstance(key, bytes) else str(key)
        if name.endswith((":lock", ":error")):
            continue
        kind = redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        values: list[Any] = [redis.get(key)] if kind == "string" else list(redis.hgetall(key).values())
        found += [v.decode() for v in values if v and len(v) >= 16]
    return found


def _body(response: Any) -> str:
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    return raw.decode("utf-8", "replace")


def test_secrets_never_reach_logs_pages_or_the_api(
    populated: World, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    corp = populated.corp_a
    caplog.set_level(logging.DEBUG)
    for name in ("scrm", "wecom", "tasks", "django"):
        caplog.set_level(logging.DEBUG, logger=name)

    # A flow that uses every secret: a sync (app secret → access token → API calls), callbacks signed with
    # the Token and encrypted with the EncodingAESKey, good and forged, and a connection test.
    run, _ = full_sync_start(corp=corp)
    full_sync_execute(run_id=run.pk)
    client = Client()
    xml = fixture_xml("change_external_contact.del_follow_user", corp)
    assert post_callback(client, corp, xml).status_code == 200
    crypto = CallbackCrypto(corp.callback_token, corp.encoding_aes_key, corp.corp_id)
    query, body = crypto.build_callback(xml, agent_id=corp.agent_id, timestamp=str(int(time.time())))
    forged = "&".join(f"{k}={v}" for k, v in {**query, "msg_signature": "0" * 40}.items())
    assert client.post(f"/wecom/callback/{corp.corp_id}/?{forged}", body, "text/xml").status_code == 403

    access_tokens = _access_tokens(corp.corp_id)
    assert access_tokens, "the sync should have cached an access token"
    secrets = {
        "app secret": corp.secret,
        "callback Token": corp.callback_token,
        "EncodingAESKey": corp.encoding_aes_key,
        **{f"access_token {i}": t for i, t in enumerate(access_tokens)},
    }

    # Every page as corp A's admin (the one who could see the most), every API GET with a token.
    alice = client_for(populated.alice)
    api = api_client(tokens.alice)
    pages = 0
    for route in all_routes():
        if route.pattern.startswith("wecom/callback"):
            continue
        path = _build_path(route, populated)
        for reader in (alice, api) if route.pattern.startswith("api/") else (alice,):
            response = reader.get(path)
            if response.status_code != 200:
                continue
            pages += 1
            text = _body(response)
            for what, value in secrets.items():
                assert value not in text, f"{what} shown at {path}"
    assert pages >= 20
    schema = alice.get("/api/schema/")
    assert all(v not in _body(schema) for v in secrets.values())

    # Every log line, formatted as the console handler would print it, with any traceback.
    logged = 0
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "") + repr(getattr(record, "__dict__", {}))
        logged += 1
        for what, value in secrets.items():
            assert value not in text, f"{what} logged by {record.name}: {record.getMessage()[:200]}"
    assert logged >= 10, "the flow should have logged (or this proves nothing)"
