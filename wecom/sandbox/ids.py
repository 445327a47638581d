"""Identifiers shaped like WeCom's, and the format checks the simulated APIs apply to them."""

from __future__ import annotations

import random
import re
import secrets
import string

_URLSAFE = string.ascii_letters + string.digits + "-_"
_ALNUM = string.ascii_letters + string.digits

# external_userid: "wm"/"wo" + base64url-ish body (32 chars in every sample; allow some slack).
EXTERNAL_USERID_RE = re.compile(r"^w[mo][A-Za-z0-9_-]{20,62}$")
CHAT_ID_RE = re.compile(r"^wr[A-Za-z0-9_-]{20,62}$")
# Member userids: 1-64 bytes of letters, digits, '_', '-', '.', '@' (Doc 90195).
USERID_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
CORP_ID_RE = re.compile(r"^ww[0-9a-f]{16}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
AES_KEY_RE = re.compile(r"^[A-Za-z0-9]{43}$")


class IdFactory:
    """Random but optionally reproducible ids (seeded scenarios produce the same ids)."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)

    def _body(self, n: int, alphabet: str = _URLSAFE) -> str:
        return "".join(self.rng.choices(alphabet, k=n))

    def external_userid(self) -> str:
        return "wm" + self._body(30, _ALNUM)

    def chat_id(self) -> str:
        return "wr" + self._body(30, _ALNUM)

    def tag_id(self) -> str:
        return "et" + self._body(30, _ALNUM)

    def config_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def msgid(self) -> str:
        return "msg" + self._body(29, _ALNUM)

    def template_id(self) -> str:
        return "msg" + self._body(29, _ALNUM)

    def unionid(self) -> str:
        return "o" + self._body(27, _ALNUM)

    def hint(self) -> str:
        return self._body(3, string.ascii_lowercase)


def secret_token(nbytes: int = 48) -> str:
    """Unguessable values for access tokens, welcome codes and media ids."""
    return secrets.token_urlsafe(nbytes)
