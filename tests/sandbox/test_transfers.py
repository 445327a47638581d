"""Succession: on-job transfers (twice per 90 days, 24 h refusal window, results), resigned transfers,
unassigned customers."""

from __future__ import annotations

from .conftest import Env


def _transfer(
    env: Env, handover: str, takeover: str, ids: list[str], *, resigned: bool = False
) -> dict[str, int]:
    path = "externalcontact/resigned/transfer_customer" if resigned else "externalcontact/transfer_customer"
    res = env.ok(path, {"handover_userid": handover, "takeover_userid": takeover, "external_userid": ids})
    return {c["external_userid"]: c["errcode"] for c in res["customer"]}


def _result(env: Env, handover: str, takeover: str, *, resigned: bool = False) -> dict[str, dict]:
    path = "externalcontact/resigned/transfer_result" if resigned else "externalcontact/transfer_result"
    res = env.ok(path, {"handover_userid": handover, "takeover_userid": takeover})
    return {c["external_userid"]: c for c in res["customer"]}


def _pair(env: Env) -> tuple[str, str, list[str]]:
    a, b = env.members()[:2]
    mine = [e for e in env.follows(a) if e not in env.follows(b)]
    return a, b, mine


def test_onjob_transfer_completes_after_24_hours(env: Env) -> None:
    a, b, mine = _pair(env)
    x = mine[0]
    assert _transfer(env, a, b, [x]) == {x: 0}
    assert _result(env, a, b)[x]["status"] == 2
    env.sb.advance(86400 + 1)
    env.refresh_token()
    done = _result(env, a, b)[x]
    assert done["status"] == 1 and done["takeover_time"] > 0
    assert x not in env.follows(a) and x in env.follows(b)
    event = env.receiver.wait_for(1, ChangeType="del_external_contact")[0]
    assert event["UserID"] == a and event["ExternalUserID"] == x and event["Source"] == "DELETE_BY_TRANSFER"


def test_customer_refuses_within_the_window(env: Env) -> None:
    env.sb.settings(env.corp_id, transfer_refuse_rate=1.0)
    a, b, mine = _pair(env)
    x, y = mine[:2]
    _transfer(env, a, b, [x, y])
    env.world("refuse_transfer", external_userid=y)
    env.sb.advance(86400)
    env.refresh_token()
    results = _result(env, a, b)
    assert results[x]["status"] == 3 and results[y]["status"] == 3
    assert x in env.follows(a) and x not in env.follows(b)
    fails = env.receiver.wait_for(2, ChangeType="transfer_fail")
    assert {f["ExternalUserID"] for f in fails} == {x, y}
    assert all(f["FailReason"] == "customer_refused" and f["UserID"] == b for f in fails)


def test_each_customer_at_most_twice_per_90_days(env: Env) -> None:
    a, b, mine = _pair(env)
    x = mine[0]
    for handover, takeover in ((a, b), (b, a)):
        assert _transfer(env, handover, takeover, [x]) == {x: 0}
        env.sb.advance(86400 + 1)
        env.refresh_token()
    assert _transfer(env, a, b, [x]) == {x: 40128}
    env.sb.advance(89 * 86400)
    env.refresh_token()
    assert _transfer(env, a, b, [x]) == {x: 0}


def test_per_customer_errors(env: Env) -> None:
    a, b, mine = _pair(env)
    other = next(e for e in env.follows(b) if e not in env.follows(a))
    x = mine[0]
    assert _transfer(env, a, b, [x, "bogus", other]) == {x: 0, "bogus": 40096, other: 84061}
    assert _transfer(env, a, env.members()[2], [x]) == {x: 40129}  # already being transferred
    too_many = env.call(
        "externalcontact/transfer_customer",
        {"handover_userid": a, "takeover_userid": b, "external_userid": [x] * 101},
    )
    assert too_many["errcode"] == 40058
    assert (
        env.call(
            "externalcontact/transfer_customer",
            {"handover_userid": a, "takeover_userid": "ghost", "external_userid": [x]},
        )["errcode"]
        == 40003
    )


def test_takeover_over_its_cap_gets_status_4(env: Env) -> None:
    a, b, mine = _pair(env)
    env.sb.settings(env.corp_id, member_customer_cap=len(env.follows(b)))
    _transfer(env, a, b, [mine[0]])
    env.sb.advance(86401)
    env.refresh_token()
    assert _result(env, a, b)[mine[0]]["status"] == 4
    assert env.receiver.wait_for(1, ChangeType="transfer_fail")[0]["FailReason"] == "customer_limit_exceed"


def test_resigned_member_customers_are_unassigned_until_transferred(env: Env) -> None:
    a, b, mine = _pair(env)
    assert (
        env.call(
            "externalcontact/resigned/transfer_customer",
            {"handover_userid": a, "takeover_userid": b, "external_userid": mine[:1]},
        )["errcode"]
        == 40097
    )
    owned = env.follows(a)
    env.world("resign", userid=a)
    event = env.receiver.wait_for(1, Event="change_contact")[0]
    assert event["ChangeType"] == "delete_user" and event["UserID"] == a
    first = env.ok("externalcontact/get_unassigned_list", {"page_size": 2})
    assert len(first["info"]) == 2 and first["is_last"] is False and first["next_cursor"]
    rows = list(first["info"])
    cursor = first["next_cursor"]
    while cursor:
        page = env.ok("externalcontact/get_unassigned_list", {"page_size": 2, "cursor": cursor})
        rows += page["info"]
        cursor = page["next_cursor"]
    assert {r["external_userid"] for r in rows} == set(owned)
    assert {r["handover_userid"] for r in rows} == {a} and all(r["dimission_time"] > 0 for r in rows)
    assert env.call("externalcontact/get_unassigned_list", {"page_size": 1001})["errcode"] == 40058
    assert _transfer(env, a, b, mine[:2], resigned=True) == dict.fromkeys(mine[:2], 0)
    left = env.ok("externalcontact/get_unassigned_list", {})["info"]
    assert len(left) == len(owned) - 2
    env.sb.advance(86401)
    env.refresh_token()
    assert {r["status"] for r in _result(env, a, b, resigned=True).values()} == {1}
    assert set(mine[:2]) <= set(env.follows(b))
    assert env.call("user/get", method="GET", userid=a)["errcode"] == 60111
