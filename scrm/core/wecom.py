"""The one place the product builds WeCom clients: per corp, per process, shared across threads."""

from __future__ import annotations

import hashlib
import threading

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from scrm.core.redis import get_redis
from scrm.tenancy.models import Corp
from wecom.client import WeComClient
from wecom.errors import WeComError

_clients: dict[tuple[str, str, str], WeComClient] = {}
_lock = threading.Lock()


def _app_key(corp: Corp) -> str:
    # The token is cached per app secret (Doc 91039): a new secret gets a new cache slot, so a token
    # fetched with the old secret is never served for the new one.
    digest = hashlib.sha256(corp.secret.encode()).hexdigest()[:12]
    return f"{corp.agent_id}-{digest}"


def wecom_client(*, corp: Corp, lane: str = "events") -> WeComClient:
    key = (corp.corp_id, corp.effective_api_base, _app_key(corp))
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = WeComClient(
                corp_id=corp.corp_id,
                secret=corp.secret,
                redis=get_redis(),
                base_url=corp.effective_api_base,
                app_key=key[2],
            )
            _clients[key] = client
    return client if lane == client.lane else client.with_lane(lane)


def wecom_lang(language: str | None = None) -> str:
    """The language of WeCom's error messages (wecom/errors.py) for a Django language, default the
    current one: English for English, Simplified Chinese otherwise."""
    return "en" if (language or get_language() or "").startswith("en") else "zh-hans"


def wecom_error_text(exc: WeComError, lang: str | None = None) -> str:
    """WeCom's refusal in plain language, with the errcode support will ask for."""
    text = exc.message(lang or wecom_lang())
    if exc.errcode is not None:
        text += " " + _("(WeCom error code %(code)s)") % {"code": exc.errcode}
    return text
