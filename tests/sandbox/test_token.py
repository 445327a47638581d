"""gettoken: 7200 s expiry, same token while valid, invalidation on demand, missing/bad credentials."""

from __future__ import annotations

from wecom.sandbox.testing import SandboxServer

from .conftest import CORP_ID, SECRET, Env


def test_gettoken_answers_7200_and_the_same_token_while_valid(env: Env) -> None:
    sb = env.sb
    first = sb.api("GET", "gettoken", None, params={"corpid": CORP_ID, "corpsecret": SECRET})
    assert first["errcode"] == 0 and first["errmsg"] == "ok"
    assert 7199 <= first["expires_in"] <= 7200
    sb.advance(100)
    again = sb.api("GET", "gettoken", None, params={"corpid": CORP_ID, "corpsecret": SECRET})
    assert again["access_token"] == first["access_token"]
    assert again["expires_in"] <= 7100  # the remaining lifetime, not a fresh 7200


def test_token_expires_after_7200_seconds_with_42001(env: Env) -> None:
    assert env.call("externalcontact/get_follow_user_list", method="GET")["errcode"] == 0
    env.sb.advance(7201)
    payload = env.call("externalcontact/get_follow_user_list", method="GET")
    assert payload["errcode"] == 42001
    assert "hint: [" in payload["errmsg"] and "from ip: 127.0.0.1" in payload["errmsg"]
    assert payload["errmsg"].endswith("more info at https://open.work.weixin.qq.com/devtool/query?e=42001")
    fresh = env.sb.token(CORP_ID, SECRET)
    assert fresh != env.token
    assert env.sb.api("GET", "externalcontact/get_follow_user_list", fresh)["errcode"] == 0


def test_tokens_invalidated_on_demand_answer_40014(env: Env) -> None:
    revoked = env.sb.control("POST", f"/sandbox/corps/{CORP_ID}/tokens/invalidate", {})
    assert revoked["revoked"] == 1
    assert env.call("externalcontact/get_follow_user_list", method="GET")["errcode"] == 40014
    assert env.sb.token(CORP_ID, SECRET) != env.token


def test_gettoken_credential_errors(sandbox: SandboxServer) -> None:
    sandbox.register_corp(CORP_ID, secret=SECRET)

    def code(**params: str) -> int:
        return int(sandbox.api("GET", "gettoken", None, params=params)["errcode"])

    assert code(corpsecret=SECRET) == 41002
    assert code(corpid=CORP_ID) == 41004
    assert code(corpid="ww9999999999999999", corpsecret=SECRET) == 40013
    assert code(corpid=CORP_ID, corpsecret="wrong") == 40001


def test_access_token_missing_or_unknown(env: Env) -> None:
    assert env.sb.api("GET", "externalcontact/get_follow_user_list", None)["errcode"] == 41001
    assert env.sb.api("GET", "externalcontact/get_follow_user_list", "nope")["errcode"] == 40014


def test_wrong_method_and_bad_json(env: Env) -> None:
    assert env.call("externalcontact/get_follow_user_list")["errcode"] == 43001  # POST to a GET API
    assert env.call("externalcontact/mark_tag", method="GET")["errcode"] == 43002
    raw = env.sb.api("POST", "externalcontact/mark_tag", env.token, None, content=b"{not json")
    assert raw["errcode"] == 47001
