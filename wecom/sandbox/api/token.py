"""Access tokens."""

from __future__ import annotations

from typing import Any

from . import Call, api


# Reference: Doc 91039 (获取access_token). The dispatcher has already matched corpid and corpsecret.
@api("gettoken", "GET")
def gettoken(call: Call) -> dict[str, Any]:
    tok = call.sb.issue_token(call.corp, call.app)
    # Stricter reading: a repeated call returns the same token with its *remaining* lifetime, so a
    # client that trusts expires_in never uses a token past its real expiry.
    return {"access_token": tok.value, "expires_in": max(1, int(tok.expires_at - call.now))}
