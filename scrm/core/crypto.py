"""Secrets at rest: AES-256-GCM with a key id, so keys can be rotated without downtime.

FIELD_ENCRYPTION_KEY holds one or more `kid:base64key` pairs separated by commas. The first is used to
encrypt; all of them can decrypt. Rotate by putting a new key first, then `manage.py rotate_field_key`.
Stored form: `gcm1$<kid>$<base64(nonce | ciphertext | tag)>`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from functools import lru_cache

from Crypto.Cipher import AES
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "gcm1"
_NONCE = 12
_TAG = 16


class DecryptionError(Exception):
    """The stored value can't be decrypted with any configured key (wrong key, or tampered)."""


@dataclass(frozen=True)
class Keyring:
    active_kid: str
    keys: dict[str, bytes]


def parse_keyring(raw: str) -> Keyring:
    keys: dict[str, bytes] = {}
    order: list[str] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        kid, sep, b64 = part.partition(":")
        if not sep or not kid.isalnum():
            raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY entries must look like kid:base64key")
        try:
            key = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEY key {kid!r} is not valid base64") from exc
        if len(key) != 32:
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEY key {kid!r} must decode to 32 bytes")
        keys[kid] = key
        order.append(kid)
    if not order:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is empty")
    return Keyring(active_kid=order[0], keys=keys)


@lru_cache(maxsize=4)
def _keyring(raw: str) -> Keyring:
    return parse_keyring(raw)


def keyring() -> Keyring:
    return _keyring(settings.FIELD_ENCRYPTION_KEY)


def generate_key(kid: str = "k1") -> str:
    return f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def encrypt_str(plaintext: str, *, aad: bytes) -> str:
    ring = keyring()
    nonce = secrets.token_bytes(_NONCE)
    cipher = AES.new(ring.keys[ring.active_kid], AES.MODE_GCM, nonce=nonce)
    cipher.update(aad)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext.encode("utf-8"))
    blob = base64.b64encode(nonce + ciphertext + tag).decode("ascii")
    return f"{PREFIX}${ring.active_kid}${blob}"


def key_id_of(stored: str) -> str | None:
    parts = stored.split("$", 2)
    return parts[1] if len(parts) == 3 and parts[0] == PREFIX else None


def decrypt_str(stored: str, *, aad: bytes) -> str:
    parts = stored.split("$", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        raise DecryptionError("value is not in the encrypted format")
    kid, blob = parts[1], parts[2]
    key = keyring().keys.get(kid)
    if key is None:
        raise DecryptionError(f"no key with id {kid!r} in FIELD_ENCRYPTION_KEY")
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptionError("value is not valid base64") from exc
    if len(raw) < _NONCE + _TAG:
        raise DecryptionError("value is truncated")
    nonce, ciphertext, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
    cipher.update(aad)
    try:
        return cipher.decrypt_and_verify(ciphertext, tag).decode("utf-8")
    except ValueError as exc:
        raise DecryptionError("authentication failed (wrong key or tampered value)") from exc
