from __future__ import annotations

from functools import lru_cache

from scrm.tenancy.models import Corp
from wecom.crypto import CallbackCrypto


@lru_cache(maxsize=256)
def _crypto(token: str, aes_key: str, corp_id: str) -> CallbackCrypto:
    # Key derivation once per credentials, not per callback.
    return CallbackCrypto(token, aes_key, corp_id)


def callback_crypto_for(*, corp: Corp) -> CallbackCrypto:
    return _crypto(corp.callback_token, corp.encoding_aes_key, corp.corp_id)
