"""Attacks on the public WeCom callback: forged signatures, replays, XML bombs and external entities that
reach the parser (encrypted with the corp's own key, as only a holder of the key could), oversized bodies,
and 10,000 fuzzed requests. Each is refused with a 4xx, never a 5xx, and nothing is stored or queued."""

from __future__ import annotations

import base64
import logging
import random
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client, RequestFactory

from scrm.callbacks.models import InboxEvent
from scrm.callbacks.services import MAX_CALLBACK_BYTES
from scrm.callbacks.views import wecom_callback
from scrm.tenancy.models import Corp
from tests.conftest import World
from tests.scrm.callbacks.helpers import fixture_xml, post_callback
from wecom.crypto import CallbackCrypto

pytestmark = pytest.mark.django_db


def crypto_of(corp: Corp) -> CallbackCrypto:
    return CallbackCrypto(corp.callback_token, corp.encoding_aes_key, corp.corp_id)


def url_of(corp: Corp, query: dict[str, str]) -> str:
    return f"/wecom/callback/{corp.corp_id}/?{urlencode(query)}"


def now() -> str:
    return str(int(time.time()))


@pytest.fixture
def nothing_stored(world: World, django_capture_on_commit_callbacks: Any) -> Iterator[None]:
    """No inbox row, and nothing handed to a queue (stored events are enqueued on commit)."""
    with django_capture_on_commit_callbacks() as enqueued:
        yield
    assert not InboxEvent.objects.exists()
    assert enqueued == []


def test_forged_signatures_are_refused(world: World, nothing_stored: None) -> None:
    corp, client = world.corp_a, Client()
    xml = fixture_xml("change_external_contact.add_external_contact", corp)
    query, body = crypto_of(corp).build_callback(xml, agent_id=corp.agent_id, timestamp=now())
    good = query["msg_signature"]
    forgeries = [
        "0" * 40,
        good.upper(),
        good[:-1],
        good + "0",
        "",
        "é" * 40,
        crypto_of(corp).signature(now(), "other-nonce", "x"),  # the right token, over something else
    ]
    for signature in forgeries:
        response = client.post(url_of(corp, {**query, "msg_signature": signature}), body, "text/xml")
        assert response.status_code in (400, 403), (signature, response.status_code)
    # The right signature, but the nonce or timestamp it covers changed.
    for changed in ({"nonce": query["nonce"] + "x"}, {"timestamp": str(int(query["timestamp"]) - 1)}):
        assert client.post(url_of(corp, {**query, **changed}), body, "text/xml").status_code == 403
    # Signed and encrypted with corp B's credentials, sent to corp A.
    other = crypto_of(world.corp_b)
    q2, b2 = other.build_callback(xml, agent_id=1, timestamp=now())
    assert client.post(url_of(corp, q2), b2, "text/xml").status_code == 403
    # URL verification with a forged signature answers no plaintext.
    q3 = crypto_of(corp).build_url_verification("echo-1234567890", timestamp=now())
    response = client.get(url_of(corp, {**q3, "msg_signature": "f" * 40}))
    assert response.status_code == 403 and b"echo" not in response.content


def test_replays_outside_the_window_are_refused(world: World, settings, nothing_stored: None) -> None:
    corp, client = world.corp_a, Client()
    window = settings.WECOM_CALLBACK_REPLAY_WINDOW
    assert window > 0, "the replay window must be on by default"
    xml = fixture_xml("change_external_contact.del_follow_user", corp)
    for skew in (window + 60, -(window + 60), 10 * 365 * 86400):
        stale = str(int(time.time()) - skew)
        query, body = crypto_of(corp).build_callback(xml, agent_id=corp.agent_id, timestamp=stale)
        assert client.post(url_of(corp, query), body, "text/xml").status_code == 400, skew
        verify = crypto_of(corp).build_url_verification("echo-1", timestamp=stale)
        assert client.get(url_of(corp, verify)).status_code == 400, skew
    for bad in ("", "-5", "1e9", "१२३", "9" * 40):
        query, body = crypto_of(corp).build_callback(xml, agent_id=corp.agent_id, timestamp=now())
        signature = crypto_of(corp).signature(bad, query["nonce"], _encrypt_of(body))
        forged = {**query, "timestamp": bad, "msg_signature": signature}
        assert client.post(url_of(corp, forged), body, "text/xml").status_code == 400, bad


def _encrypt_of(body: bytes) -> str:
    text = body.decode()
    return text.split("<Encrypt><![CDATA[", 1)[1].split("]]>", 1)[0]


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><ToUserName><![CDATA[{corp}]]></ToUserName><MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[del_follow_user]]></ChangeType>
<UserID><![CDATA[&lol9;]]></UserID><ExternalUserID>&lol9;</ExternalUserID><CreateTime>1</CreateTime></xml>"""

QUADRATIC_BLOWUP = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "' + "A" * 20000 + '">]>'
    "<xml><ToUserName><![CDATA[{corp}]]></ToUserName><UserID>" + "&a;" * 2000 + "</UserID></xml>"
)

XXE = [
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<xml><ToUserName><![CDATA[{corp}]]></ToUserName><UserID>&xxe;</UserID><CreateTime>1</CreateTime></xml>",
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:1/evil.dtd"> %p;]>'
    "<xml><ToUserName><![CDATA[{corp}]]></ToUserName></xml>",
    '<?xml version="1.0"?><!DOCTYPE xml SYSTEM "http://127.0.0.1:1/evil.dtd">'
    "<xml><ToUserName><![CDATA[{corp}]]></ToUserName></xml>",
    '<?xml version="1.0"?><xml xmlns:xi="http://www.w3.org/2001/XInclude">'
    '<ToUserName><![CDATA[{corp}]]></ToUserName><xi:include parse="text" href="file:///etc/passwd"/></xml>',
]


@pytest.mark.parametrize(
    "name,template",
    [("billion_laughs", BILLION_LAUGHS), ("quadratic_blowup", QUADRATIC_BLOWUP)]
    + [(f"xxe{i}", t) for i, t in enumerate(XXE)],
)
def test_encrypted_bombs_and_external_entities_are_refused(
    world: World, nothing_stored: None, name: str, template: str
) -> None:
    """Signed and encrypted with corp A's own key, so they pass the signature and reach the event parser."""
    corp, client = world.corp_a, Client()
    plaintext = template.replace("{corp}", corp.corp_id)
    query, body = crypto_of(corp).build_callback(plaintext, agent_id=corp.agent_id, timestamp=now())
    assert len(body) <= MAX_CALLBACK_BYTES, "the attack must fit the size limit to reach the parser"
    # The envelope is fine and correctly signed: only the inner event is hostile.
    assert (
        crypto_of(corp).decrypt(query["msg_signature"], query["timestamp"], query["nonce"], body) == plaintext
    )
    response = client.post(url_of(corp, query), body, "text/xml")
    if name == "xxe3":  # XInclude is not processed at all: a harmless unknown element, refused as no event
        assert response.status_code in (200, 400)
        assert b"root:" not in response.content
        InboxEvent.objects.all().delete()  # (an inert XInclude event may be stored: it carries no file)
        return
    assert response.status_code == 400, (name, response.status_code)
    assert b"root:" not in response.content and b"lol" not in response.content


def test_bombs_in_the_envelope_itself_are_refused(world: World, nothing_stored: None) -> None:
    corp, client = world.corp_a, Client()
    query, _ = crypto_of(corp).build_callback("<xml/>", agent_id=corp.agent_id, timestamp=now())
    for template in (BILLION_LAUGHS, XXE[0], XXE[1]):
        body = template.replace("{corp}", corp.corp_id).replace("<UserID>", "<Encrypt>", 1)
        assert client.post(url_of(corp, query), body.encode(), "text/xml").status_code == 400


def test_oversized_bodies_are_refused_before_parsing(world: World, nothing_stored: None) -> None:
    corp, client = world.corp_a, Client()
    query, _ = crypto_of(corp).build_callback("<xml/>", agent_id=corp.agent_id, timestamp=now())
    for size in (MAX_CALLBACK_BYTES + 1, 10 * 1024 * 1024):
        body = b"<xml><Encrypt>" + b"A" * size + b"</Encrypt></xml>"
        assert client.post(url_of(corp, query), body, "text/xml").status_code == 413, size
    # A signed, encrypted event just over the limit is refused too (the limit is not only a header check).
    big = fixture_xml("change_external_contact.del_follow_user", corp).replace(
        "</xml>", "<Pad>" + "p" * MAX_CALLBACK_BYTES + "</Pad></xml>"
    )
    response = post_callback(client, corp, big)
    assert response.status_code == 413
    # An echostr over the limit on the GET handshake
    verify = crypto_of(corp).build_url_verification("e", timestamp=now())
    assert client.get(url_of(corp, {**verify, "echostr": "A" * (MAX_CALLBACK_BYTES + 1)})).status_code == 400


# -- 10,000 fuzzed requests ------------------------------------------------------------------------------

FUZZ_CASES = 10_000
ALPHABET = "<>/![]CDATA&;%\"'=? \n\txmlEncryptToUserName\x00\x7f\ud800é字🙂+/="


def _random_text(rng: random.Random, limit: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(limit)))


def _fuzz_request(
    rng: random.Random, corp: Corp, crypto: CallbackCrypto, valid: tuple[dict, bytes]
) -> tuple[str, dict[str, str], bytes]:
    """One hostile (method, query, body), from a mix of strategies that reach every stage of the view."""
    query, body = dict(valid[0]), valid[1]
    strategy = rng.randrange(8)
    if strategy == 0:  # random bytes
        body = rng.randbytes(rng.randrange(2000))
    elif (
        strategy == 1
    ):  # a valid envelope with bytes of the signed Encrypt value changed, then cut or repeated
        data = bytearray(body)
        start = body.index(b"CDATA[", body.index(b"<Encrypt>")) + 6
        for _ in range(rng.randrange(1, 8)):
            at = rng.randrange(start, start + 40)
            data[at] = (data[at] + rng.randrange(1, 256)) % 256
        body = bytes(data[: rng.randrange(start + 1, len(data) + 1)]) * rng.choice((1, 1, 2))
    elif strategy == 2:  # random XML-ish text
        body = _random_text(rng, 400).encode("utf-8", "surrogatepass")
    elif strategy == 3:  # correctly signed garbage in Encrypt: reaches base64, AES and the padding checks
        encrypted = rng.choice(
            [
                base64.b64encode(rng.randbytes(rng.randrange(0, 200))).decode(),
                _random_text(rng, 100).replace("]]>", ""),
                base64.b64encode(rng.randbytes(32) * rng.randrange(1, 4)).decode()[: rng.randrange(1, 100)],
            ]
        )
        body = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode("utf-8", "surrogatepass")
        query["msg_signature"] = crypto.signature(query["timestamp"], query["nonce"], encrypted)
    elif strategy == 4:  # correctly signed and encrypted garbage: reaches the event parser
        plaintext = rng.choice(
            [
                _random_text(rng, 300).replace("\ud800", ""),
                "<xml>" + "<a>" * rng.randrange(1, 300) + "</xml>",
                f"<xml><MsgType>event</MsgType><Event>{_random_text(rng, 20)}</Event></xml>",
                "<xml><ToUserName>wwsomebodyelse</ToUserName><CreateTime>x</CreateTime></xml>",
            ]
        )
        # (a lone surrogate can't be encrypted at all: it is fuzzed in the other strategies)
        plaintext = plaintext.replace("\ud800", "")
        query, body = crypto.build_callback(plaintext, agent_id=corp.agent_id, timestamp=query["timestamp"])
    elif strategy == 5:  # hostile query parameters
        query[rng.choice(["msg_signature", "timestamp", "nonce"])] = _random_text(rng, 80)
        query[rng.choice(["echostr", "extra", "nonce"])] = _random_text(rng, 80)
        if rng.random() < 0.3:
            query.pop(rng.choice(list(query)), None)
    elif strategy == 6:  # the GET handshake with hostile echostr
        verify = crypto.build_url_verification("e", timestamp=query["timestamp"])
        echostr = rng.choice([_random_text(rng, 200), base64.b64encode(rng.randbytes(48)).decode()])
        signed = {**verify, "echostr": echostr}
        signed["msg_signature"] = crypto.signature(verify["timestamp"], verify["nonce"], echostr)
        return "get", signed, b""
    else:  # declared length lies and odd content types are covered by bodies of any size
        body = (
            b"<xml><Encrypt>"
            + b"A" * rng.choice((10, 5000, MAX_CALLBACK_BYTES + rng.randrange(1, 99)))
            + b"</Encrypt></xml>"
        )
    return "post", query, body


def test_ten_thousand_fuzzed_callbacks_never_error_and_store_nothing(
    world: World, nothing_stored: None
) -> None:
    corp = world.corp_a
    crypto = crypto_of(corp)
    valid = crypto.build_callback(
        fixture_xml("change_external_contact.del_follow_user", corp), agent_id=corp.agent_id, timestamp=now()
    )
    factory, rng = RequestFactory(), random.Random(20240909)
    statuses: dict[int, int] = {}
    logging.getLogger("scrm.callbacks").setLevel(logging.ERROR)  # 10,000 warnings would only slow this down
    try:
        for i in range(FUZZ_CASES):
            method, query, body = _fuzz_request(rng, corp, crypto, valid)
            encoded = urlencode(query, encoding="utf-8", errors="surrogatepass")
            path = f"/wecom/callback/{corp.corp_id}/?{encoded}"
            if method == "get":
                request = factory.get(path)
            else:
                request = factory.post(path, data=body, content_type="text/xml")
            try:
                response = wecom_callback(request, corp_id=corp.corp_id)
            except Exception as exc:  # anything escaping the view is a 500 in production
                raise AssertionError(f"case {i}: {method} {query!r} {body[:200]!r} raised {exc!r}") from exc
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code in (400, 403, 413), (
                i,
                method,
                query,
                body[:200],
                response.status_code,
            )
    finally:
        logging.getLogger("scrm.callbacks").setLevel(logging.NOTSET)
    assert sum(statuses.values()) == FUZZ_CASES
    # The mix reached every kind of refusal: bad request, bad signature and too large.
    assert {400, 403, 413} <= set(statuses), statuses
