"""The product's WeCom client (wecom.client) against the sandbox over real HTTP: the sandbox is what
the client is demonstrated and tested with, so their shapes and errcodes must agree."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from wecom import errors
from wecom.client import WeComClient

from .conftest import Env

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def client(env: Env) -> Iterator[WeComClient]:
    redis = Redis.from_url(REDIS_URL)
    try:
        redis.ping()
    except RedisConnectionError:
        pytest.skip("the client needs Redis (token cache, rate limiter)")
    prefix = f"sandbox-test:{uuid.uuid4().hex}:"
    with WeComClient(
        corp_id=env.corp_id, secret=env.secret, redis=redis, base_url=env.sb.api_base, key_prefix=prefix
    ) as c:
        yield c
    for key in redis.scan_iter(f"{prefix}*"):
        redis.delete(key)


def test_sync_reads_page_through_everything(env: Env, client: WeComClient) -> None:
    users = client.get_follow_user_list()["follow_user"]
    assert users == env.members()
    pairs = {
        (p["follow_info"]["userid"], p["external_contact"]["external_userid"])
        for page in client.iter_external_contacts_by_user(users, limit=7)
        for p in page["external_contact_list"]
    }
    assert pairs == {(u, e) for u in users for e in env.follows(u)}
    chats = [g["chat_id"] for page in client.iter_groupchats(limit=2) for g in page["group_chat_list"]]
    assert len(chats) == 3
    assert client.get_groupchat(chats[0], need_name=True)["group_chat"]["member_version"]


def test_welcome_flow_and_typed_errors(env: Env, client: WeComClient) -> None:
    scan = env.world("scan")
    event = env.receiver.wait_for(1, ChangeType="add_external_contact")[0]
    assert client.send_welcome_msg(welcome_code=event["WelcomeCode"], text="欢迎")["errcode"] == 0
    with pytest.raises(errors.WelcomeAlreadySent):
        client.send_welcome_msg(welcome_code=scan["welcome_code"], text="again")
    late = env.world("scan")["welcome_code"]
    env.sb.advance(21)
    with pytest.raises(errors.WelcomeCodeInvalid):
        client.send_welcome_msg(welcome_code=late, text="late")


def test_client_refreshes_a_token_the_sandbox_invalidated(env: Env, client: WeComClient) -> None:
    client.get_follow_user_list()
    env.sb.control("POST", f"/sandbox/corps/{env.corp_id}/tokens/invalidate", {})
    assert client.get_follow_user_list()["follow_user"]  # 40014 → refresh once → retry


def test_sandbox_limits_and_faults_map_to_the_client_error_tree(env: Env, client: WeComClient) -> None:
    env.sb.limits(env.corp_id, api="user/get", per_minute=1)
    userid = env.members()[0]
    client.get_user(userid)
    with pytest.raises(errors.RateLimited):
        client.get_user(userid)
    env.sb.faults(env.corp_id, rate=1.0, kinds=["busy"], apis=["externalcontact/list"])
    with pytest.raises(errors.TransientError):
        client.list_external_contacts(userid)
    env.sb.faults(env.corp_id, rate=1.0, kinds=["http5xx"], apis=["externalcontact/list"])
    with pytest.raises(errors.TransientError):
        client.list_external_contacts(userid)


def test_mass_message_results_through_the_client(env: Env, client: WeComClient) -> None:
    env.sb.settings(env.corp_id, confirm_delay=10)
    sender = env.members()[0]
    made = client.add_msg_template(sender=sender, external_userid=env.follows(sender), text="上新啦")
    with pytest.raises(errors.TransientError):  # 41063: still distributing
        next(client.iter_groupmsg_send_result(made["msgid"], sender))
    env.sb.advance(11)
    sent = [r for page in client.iter_groupmsg_send_result(made["msgid"], sender) for r in page["send_list"]]
    assert {r["status"] for r in sent} == {1} and len(sent) == len(env.follows(sender))
