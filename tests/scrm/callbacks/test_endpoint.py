from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.test import Client

from scrm.callbacks.models import InboxEvent, InboxStatus
from scrm.callbacks.services import inbox_sweep
from scrm.core.redis import get_redis
from tests.brokers import broker_at
from tests.conftest import World
from tests.scrm.callbacks.helpers import FIXTURES, fixture_xml, post_callback
from wecom.crypto import CallbackCrypto

ROOT = Path(__file__).resolve().parents[3]
ALL_FIXTURES = sorted(p.stem for p in FIXTURES.glob("*.xml"))


def queued_messages(lane: str) -> int:
    return int(get_redis().llen(lane))


@pytest.mark.django_db
def test_url_verification_answers_the_plaintext_alone(world: World) -> None:
    corp = world.corp_a
    crypto = CallbackCrypto(corp.callback_token, corp.encoding_aes_key, corp.corp_id)
    query = crypto.build_url_verification("echo-1234567890", timestamp=str(int(time.time())))
    response = Client().get(f"/wecom/callback/{corp.corp_id}/?{urlencode(query)}")
    assert response.status_code == 200
    assert response.content == b"echo-1234567890"


@pytest.mark.django_db
@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_is_stored_once_and_queued(
    world: World, name: str, django_capture_on_commit_callbacks
) -> None:
    client = Client()
    xml = fixture_xml(name, world.corp_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_callback(client, world.corp_a, xml)
    assert response.status_code == 200 and response.content == b""
    row = InboxEvent.objects.get(corp=world.corp_a)
    assert row.payload == xml
    assert row.status == InboxStatus.QUEUED
    expected_lane = "realtime" if "WelcomeCode" in xml and "add_" in name else "events"
    assert row.lane == expected_lane
    # WeCom's retries of the same callback (up to 3 more deliveries) store nothing more
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            assert post_callback(client, world.corp_a, xml).status_code == 200
        assert callbacks == []
    assert InboxEvent.objects.filter(corp=world.corp_a).count() == 1


@pytest.mark.django_db
def test_forged_malformed_and_oversized_are_refused_and_nothing_is_stored(world: World) -> None:
    corp = world.corp_a
    client = Client()
    xml = fixture_xml("change_external_contact.add_external_contact", corp)
    crypto = CallbackCrypto(corp.callback_token, corp.encoding_aes_key, corp.corp_id)
    query, body = crypto.build_callback(xml, agent_id=corp.agent_id, timestamp=str(int(time.time())))
    url = f"/wecom/callback/{corp.corp_id}/"

    forged = {**query, "msg_signature": "0" * 40}
    assert client.post(f"{url}?{urlencode(forged)}", data=body, content_type="text/xml").status_code == 403
    # Signed with another corp's key
    other = CallbackCrypto("OtherToken", "B" * 43, corp.corp_id)
    q2, b2 = other.build_callback(xml, agent_id=1, timestamp=str(int(time.time())))
    assert client.post(f"{url}?{urlencode(q2)}", data=b2, content_type="text/xml").status_code == 403
    # Malformed envelope, missing parameters, a DTD
    assert (
        client.post(f"{url}?{urlencode(query)}", data=b"<xml><Encrypt>", content_type="text/xml").status_code
        == 400
    )
    assert client.post(url, data=body, content_type="text/xml").status_code == 400
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>'
    assert client.post(f"{url}?{urlencode(query)}", data=bomb, content_type="text/xml").status_code == 400
    # Oversized
    big = b"<xml><Encrypt>" + b"A" * (70 * 1024) + b"</Encrypt></xml>"
    assert client.post(f"{url}?{urlencode(query)}", data=big, content_type="text/xml").status_code == 413
    # Stale timestamp: a replay from outside the window
    q3, b3 = crypto.build_callback(xml, agent_id=corp.agent_id, timestamp=str(int(time.time()) - 7200))
    assert client.post(f"{url}?{urlencode(q3)}", data=b3, content_type="text/xml").status_code == 400
    # Well signed, but addressed to another corp inside
    inner_other = xml.replace(corp.corp_id, world.corp_b.corp_id)
    assert post_callback(client, corp, inner_other).status_code == 400
    # Unknown corp
    assert (
        client.post(
            f"/wecom/callback/wwnobody000000000/?{urlencode(query)}", data=body, content_type="text/xml"
        ).status_code
        == 404
    )
    assert not InboxEvent.objects.exists()


@pytest.mark.django_db
def test_redis_down_stores_anyway_and_the_sweeper_enqueues(
    world: World, django_capture_on_commit_callbacks
) -> None:
    xml = fixture_xml("change_external_contact.del_follow_user", world.corp_a)
    with broker_at("redis://127.0.0.1:1/0"):  # nothing listens there
        with django_capture_on_commit_callbacks(execute=True):
            response = post_callback(Client(), world.corp_a, xml)
        assert response.status_code == 200
        row = InboxEvent.objects.get()
        assert row.status == InboxStatus.PENDING
        InboxEvent.objects.filter(pk=row.pk).update(received_at=row.received_at.replace(year=2000))
        assert inbox_sweep() == 0  # still down: nothing sent, the row stays pending
        assert InboxEvent.objects.get().status == InboxStatus.PENDING
    before = queued_messages("events")
    assert inbox_sweep() == 1
    assert InboxEvent.objects.get().status == InboxStatus.QUEUED
    assert queued_messages("events") == before + 1


def test_postgres_down_answers_503_so_wecom_retries() -> None:
    code = (
        "import django, json; django.setup();"
        "from django.test.utils import setup_test_environment; setup_test_environment();"
        "from django.test import Client;"
        "r = Client().post('/wecom/callback/wwalpha000000001/?msg_signature=a&timestamp=1&nonce=n',"
        " data=b'<xml/>', content_type='text/xml');"
        "print(json.dumps({'status': r.status_code}))"
    )
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://root@127.0.0.1:1/scrm",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"status": 503}


@pytest.mark.django_db
def test_new_credentials_work_from_the_first_callback_after_saving(world: World) -> None:
    corp = world.corp_a
    client = Client()
    xml = fixture_xml("change_external_contact.del_follow_user", corp)
    assert post_callback(client, corp, xml).status_code == 200  # caches the corp's crypto
    corp.callback_token = "BrandNewToken42"
    corp.encoding_aes_key = "Z" * 43
    corp.save()
    xml2 = fixture_xml("change_external_contact.edit_external_contact", corp)
    assert post_callback(client, corp, xml2).status_code == 200
    assert InboxEvent.objects.filter(corp=corp).count() == 2
