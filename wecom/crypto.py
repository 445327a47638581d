"""WeCom callback crypto: signature check, AES-256-CBC decryption, and the encrypted reply envelope.

References: Doc 90968 (加解密方案), Doc 90930 (回调配置), Doc 90468 (加解密错误码).

Used by the callback view (verify_url on GET, decrypt on POST) and by the WeCom sandbox, which builds
callbacks with the same code (build_callback). No Django here: this module is pure protocol.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from typing import ClassVar

from Crypto.Cipher import AES

from wecom.xml import UnsafeXmlError, parse_untrusted

__all__ = [
    "Base64Error",
    "BodyTooLargeError",
    "CallbackCrypto",
    "CallbackError",
    "DecryptError",
    "InvalidKeyError",
    "LengthError",
    "PaddingError",
    "ReceiveIdError",
    "SignatureError",
    "TimestampError",
    "XmlError",
]

_TOKEN_RE = re.compile(r"[A-Za-z0-9]{1,32}")
_AES_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
# CorpIDs (ww…/wx…) and suite ids are short ASCII identifiers; anything else is a configuration mistake.
_RECEIVE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,20}")
_AGENT_ID_RE = re.compile(r"[0-9]{1,20}")

# Reference: Doc 90968 — PKCS#7 to a multiple of 32 bytes (not AES's 16), pad value 1..32.
_PAD_BLOCK = 32
_RANDOM_PREFIX = 16
_LENGTH_FIELD = 4


class CallbackError(Exception):
    """Base of every callback-crypto failure.

    ``code`` is the official WeCom crypto error code (Doc 90468) where one fits, else None;
    ``reason`` is a short machine string for logs and metrics. Messages never contain the key or token.
    """

    code: ClassVar[int | None] = None

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class SignatureError(CallbackError):
    """msg_signature does not match SHA1(sorted(token, timestamp, nonce, encrypted))."""

    code = -40001


class XmlError(CallbackError):
    """The envelope is not well-formed XML, carries a DTD/entities, or has no Encrypt value."""

    code = -40002


class InvalidKeyError(CallbackError, ValueError):
    """Bad callback configuration: EncodingAESKey, Token or CorpID (receiveid) malformed."""

    code = -40004


class ReceiveIdError(CallbackError):
    """The receiveid inside the message is not this app's CorpID."""

    code = -40005


class DecryptError(CallbackError):
    """AES decryption failed: ciphertext not block-aligned, or the message is not UTF-8."""

    code = -40007


class PaddingError(DecryptError):
    """PKCS#7 padding invalid (value outside 1..32 or inconsistent pad bytes): usually a wrong key."""


class LengthError(CallbackError):
    """The declared message length does not fit in the decrypted buffer."""

    code = -40008


class Base64Error(CallbackError):
    """The Encrypt value (or echostr) is not valid base64."""

    code = -40010


class TimestampError(CallbackError):
    """timestamp is not an integer, or lies outside the configured replay window."""


class BodyTooLargeError(CallbackError):
    """The POST body (or echostr) exceeds max_body_bytes; refused before parsing."""


class CallbackCrypto:
    """Verify, decrypt and encrypt WeCom callbacks for one app (one Token + EncodingAESKey + CorpID)."""

    __slots__ = (
        "_clock",
        "_iv",
        "_key",
        "_max_body_bytes",
        "_receive_id",
        "_replay_window",
        "_token",
        "corp_id",
    )

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        corp_id: str,
        *,
        replay_window: int | None = None,
        max_body_bytes: int = 256 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Reference: Doc 90930 — Token ≤32 letters/digits, EncodingAESKey exactly 43 letters/digits.
        if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
            raise InvalidKeyError(
                "callback Token must be 1 to 32 ASCII letters or digits", reason="bad_token"
            )
        if not isinstance(encoding_aes_key, str) or not _AES_KEY_RE.fullmatch(encoding_aes_key):
            raise InvalidKeyError(
                "EncodingAESKey must be exactly 43 ASCII letters or digits", reason="bad_aes_key"
            )
        if not isinstance(corp_id, str) or not _RECEIVE_ID_RE.fullmatch(corp_id):
            raise InvalidKeyError(
                "corp_id (receiveid) must be 1 to 64 ASCII letters, digits, '_' or '-'", reason="bad_corp_id"
            )
        if replay_window is not None and replay_window < 0:
            raise ValueError("replay_window must be None (off) or a non-negative number of seconds")
        if max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        self._token = token
        # Derived once: decoding the key per callback would be wasted work on the hot path.
        self._key = base64.b64decode(encoding_aes_key + "=")
        self._iv = self._key[:16]
        self._receive_id = corp_id.encode("ascii")
        self.corp_id = corp_id
        self._replay_window = replay_window
        self._max_body_bytes = max_body_bytes
        self._clock = clock

    def __repr__(self) -> str:
        return f"CallbackCrypto(corp_id={self.corp_id!r})"

    # -- receiving -------------------------------------------------------------------------------

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """GET handshake: check the signature over echostr and return its decrypted plaintext.

        ``echostr`` must be the value as the framework decoded it from the query string (once);
        decoding it again would turn '+' into ' ' and break the signature.
        """
        # Reference: Doc 90930 — signature over [token, timestamp, nonce, echostr]; answer the plaintext.
        if len(echostr) > self._max_body_bytes:
            raise BodyTooLargeError(
                f"echostr is {len(echostr)} characters, over the {self._max_body_bytes}-byte limit",
                reason="body_too_large",
            )
        self._check_timestamp(timestamp)
        self._check_signature(msg_signature, timestamp, nonce, echostr, what="echostr")
        return self._open(echostr, what="echostr")

    def decrypt(self, msg_signature: str, timestamp: str, nonce: str, body: bytes | str) -> str:
        """POST callback: parse the envelope safely, check the signature over Encrypt, return inner XML."""
        # Reference: Doc 90930 — body <xml><ToUserName/><Encrypt/><AgentID/></xml>, signature over Encrypt.
        data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
        if len(data) > self._max_body_bytes:
            raise BodyTooLargeError(
                f"callback body is {len(data)} bytes, over the {self._max_body_bytes}-byte limit",
                reason="body_too_large",
            )
        self._check_timestamp(timestamp)
        try:
            envelope = parse_untrusted(data)
        except UnsafeXmlError as exc:
            raise XmlError(f"callback envelope refused: {exc}", reason=exc.reason) from exc
        node = envelope.find("Encrypt")
        encrypted = node.text if node is not None else None
        if not encrypted:
            raise XmlError("callback envelope has no Encrypt value", reason="encrypt_missing")
        self._check_signature(msg_signature, timestamp, nonce, encrypted, what="Encrypt value")
        return self._open(encrypted, what="Encrypt value")

    # -- sending (replies, and the sandbox that plays WeCom) ----------------------------------------

    def signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        """SHA1 hex of token, timestamp, nonce and the encrypted value, sorted and concatenated."""
        # Reference: Doc 90968 — dev_msg_signature = sha1(sort(token, timestamp, nonce, msg_encrypt)).
        joined = "".join(sorted((self._token, timestamp, nonce, encrypted)))
        # SHA1 is what the protocol mandates; surrogatepass so hostile query strings cannot raise here.
        return hashlib.sha1(joined.encode("utf-8", "surrogatepass")).hexdigest()  # noqa: S324

    def encrypt_message(self, plaintext: str) -> str:
        """Encrypt ``plaintext`` for this app: base64(AES-256-CBC(random16 + len + msg + receiveid + pad))."""
        # Reference: Doc 90968 — msg_len is 4 bytes big-endian; padding to a multiple of 32.
        msg = plaintext.encode("utf-8")
        buf = b"".join(
            (
                secrets.token_bytes(_RANDOM_PREFIX),
                len(msg).to_bytes(_LENGTH_FIELD, "big"),
                msg,
                self._receive_id,
            )
        )
        pad = _PAD_BLOCK - len(buf) % _PAD_BLOCK
        buf += bytes((pad,)) * pad
        # A CBC object carries chaining state, so each message needs a fresh one (cheap: the key is ready).
        return base64.b64encode(AES.new(self._key, AES.MODE_CBC, iv=self._iv).encrypt(buf)).decode("ascii")

    def encrypt(self, plaintext: str, nonce: str, timestamp: str) -> str:
        """The encrypted passive-reply envelope, as WeCom's SDKs produce it."""
        # Reference: Doc 90968 — reply packet: Encrypt, MsgSignature, TimeStamp, Nonce.
        _check_outgoing(timestamp=timestamp, nonce=nonce)
        encrypted = self.encrypt_message(plaintext)
        sig = self.signature(timestamp, nonce, encrypted)
        return (
            f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp>"
            f"<Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )

    def build_callback(
        self,
        plaintext: str,
        *,
        agent_id: int | str,
        timestamp: str | None = None,
        nonce: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """What WeCom sends for an event: the POST query (msg_signature, timestamp, nonce) and body."""
        timestamp, nonce = self._outgoing_defaults(timestamp, nonce)
        agent = str(agent_id)
        if not _AGENT_ID_RE.fullmatch(agent):
            raise ValueError("agent_id must be a non-negative integer")
        encrypted = self.encrypt_message(plaintext)
        query = {
            "msg_signature": self.signature(timestamp, nonce, encrypted),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<AgentID><![CDATA[{agent}]]></AgentID></xml>"
        ).encode("ascii")
        return query, body

    def build_url_verification(
        self, echo: str, *, timestamp: str | None = None, nonce: str | None = None
    ) -> dict[str, str]:
        """What WeCom sends to verify a callback URL: the GET query; the URL must answer ``echo``."""
        timestamp, nonce = self._outgoing_defaults(timestamp, nonce)
        echostr = self.encrypt_message(echo)
        return {
            "msg_signature": self.signature(timestamp, nonce, echostr),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": echostr,
        }

    # -- internals -------------------------------------------------------------------------------

    def _outgoing_defaults(self, timestamp: str | None, nonce: str | None) -> tuple[str, str]:
        timestamp = str(int(self._clock())) if timestamp is None else timestamp
        nonce = str(secrets.randbelow(10**10)) if nonce is None else nonce
        _check_outgoing(timestamp=timestamp, nonce=nonce)
        return timestamp, nonce

    def _check_timestamp(self, timestamp: str) -> None:
        if not _TIMESTAMP_RE.fullmatch(timestamp):
            raise TimestampError("timestamp is not a non-negative integer", reason="timestamp_not_integer")
        if self._replay_window is None:
            return
        # Our own choice (API.md §1): WeCom documents no replay window.
        skew = int(timestamp) - self._clock()
        if abs(skew) > self._replay_window:
            raise TimestampError(
                f"timestamp is {skew:+.0f} s from now, outside the {self._replay_window} s replay window",
                reason="timestamp_out_of_window",
            )

    def _check_signature(
        self, msg_signature: str, timestamp: str, nonce: str, encrypted: str, *, what: str
    ) -> None:
        expected = self.signature(timestamp, nonce, encrypted).encode("ascii")
        # Bytes, not str: compare_digest refuses non-ASCII str, and the query string is attacker-controlled.
        if not hmac.compare_digest(expected, msg_signature.encode("utf-8", "surrogatepass")):
            raise SignatureError(
                f"msg_signature does not match the {what} (signed with token, timestamp and nonce)",
                reason="signature_mismatch",
            )

    def _open(self, encrypted: str, *, what: str) -> str:
        try:
            ciphertext = base64.b64decode(encrypted, validate=True)
        except ValueError as exc:  # binascii.Error, or non-ASCII characters in the str
            raise Base64Error(f"the {what} is not valid base64", reason="bad_base64") from exc
        if not ciphertext or len(ciphertext) % AES.block_size:
            raise DecryptError(
                f"the {what} decodes to {len(ciphertext)} bytes, not a positive multiple of the AES block",
                reason="ciphertext_not_block_aligned",
            )
        plain = AES.new(self._key, AES.MODE_CBC, iv=self._iv).decrypt(ciphertext)

        pad = plain[-1]
        if not 1 <= pad <= _PAD_BLOCK or plain[-pad:] != bytes((pad,)) * pad:
            raise PaddingError(
                f"the {what} decrypts to invalid PKCS#7 padding (wrong key?)", reason="bad_padding"
            )
        end = len(plain) - pad
        header = _RANDOM_PREFIX + _LENGTH_FIELD
        if end < header:
            raise LengthError(
                f"the decrypted {what} is {end} bytes, too short for the random prefix and length field",
                reason="buffer_too_short",
            )
        msg_len = int.from_bytes(plain[_RANDOM_PREFIX:header], "big")
        msg_end = header + msg_len
        if msg_end > end:
            raise LengthError(
                f"the decrypted {what} declares a {msg_len}-byte message but holds only {end - header} bytes",
                reason="length_mismatch",
            )
        receive_id = plain[msg_end:end]
        if receive_id != self._receive_id:
            raise ReceiveIdError(
                f"the {what} is addressed to receiveid {receive_id[:64]!r}, not {self.corp_id!r}",
                reason="receive_id_mismatch",
            )
        try:
            return plain[header:msg_end].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecryptError(f"the decrypted {what} is not UTF-8", reason="message_not_utf8") from exc


def _check_outgoing(*, timestamp: str, nonce: str) -> None:
    # Values we put in the envelope must not break out of it (CDATA) or fail the receiver's checks.
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise ValueError("timestamp must be a non-negative integer string")
    if not nonce or "]]>" in nonce:
        raise ValueError("nonce must be a non-empty string without ']]>'")
