"""Build callbacks exactly as WeCom sends them, from the fixture files."""

from __future__ import annotations

import time
from pathlib import Path

from django.test import Client
from django.test.client import Client as _Client

from scrm.tenancy.models import Corp
from wecom.crypto import CallbackCrypto

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wecom"


def fixture_xml(name: str, corp: Corp, **replace: str) -> str:
    """A fixture event addressed to `corp`, with placeholder values replaced (e.g. CreateTime)."""
    xml = (FIXTURES / f"{name}.xml").read_text(encoding="utf-8")
    import re

    xml = re.sub(
        r"<ToUserName><!\[CDATA\[[^\]]*\]\]></ToUserName>",
        f"<ToUserName><![CDATA[{corp.corp_id}]]></ToUserName>",
        xml,
    )
    for tag, value in replace.items():
        xml = re.sub(
            rf"<{tag}>(<!\[CDATA\[)?[^<\]]*(\]\]>)?</{tag}>",
            f"<{tag}><![CDATA[{value}]]></{tag}>" if not value.isdigit() else f"<{tag}>{value}</{tag}>",
            xml,
        )
    return xml


def post_callback(client: _Client | Client, corp: Corp, plaintext: str, *, timestamp: str | None = None):
    crypto = CallbackCrypto(corp.callback_token, corp.encoding_aes_key, corp.corp_id)
    query, body = crypto.build_callback(
        plaintext, agent_id=corp.agent_id, timestamp=timestamp or str(int(time.time()))
    )
    from urllib.parse import urlencode

    return client.post(
        f"/wecom/callback/{corp.corp_id}/?{urlencode(query)}", data=body, content_type="text/xml"
    )
