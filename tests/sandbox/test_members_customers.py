"""Members, customers (list / get / batch get_by_user with cursors and limits) and remark."""

from __future__ import annotations

from .conftest import Env, make_env


def test_members_follow_user_list_user_get_and_list_id(env: Env) -> None:
    members = env.ok("externalcontact/get_follow_user_list", method="GET")["follow_user"]
    assert len(members) == 4
    user = env.ok("user/get", method="GET", userid=members[0])
    assert user["userid"] == members[0] and user["name"] and user["status"] == 1
    assert env.call("user/get", method="GET", userid="nobody")["errcode"] == 60111
    assert env.call("user/get", method="GET")["errcode"] == 41009
    page = env.ok("user/list_id", {"limit": 3})
    assert len(page["dept_user"]) == 3 and page["next_cursor"]
    rest = env.ok("user/list_id", {"limit": 3, "cursor": page["next_cursor"]})
    assert {d["userid"] for d in page["dept_user"] + rest["dept_user"]} == set(members)
    assert rest["next_cursor"] == ""
    assert env.call("user/list_id", {"limit": 10001})["errcode"] == 40058
    depts = env.ok("department/simplelist", method="GET")["department_id"]
    assert {d["id"] for d in depts} >= {1, 2, 3, 4}
    dept = env.ok("user/get", method="GET", userid=members[0])["department"][0]
    simple = env.ok("user/simplelist", method="GET", department_id=dept)["userlist"]
    assert members[0] in {u["userid"] for u in simple}


def test_list_and_get_customer(env: Env) -> None:
    userid = env.members()[0]
    ids = env.ok("externalcontact/list", method="GET", userid=userid)["external_userid"]
    assert ids == env.follows(userid)
    got = env.ok("externalcontact/get", method="GET", external_userid=ids[0])
    assert got["external_contact"]["external_userid"] == ids[0]
    assert userid in {f["userid"] for f in got["follow_user"]}
    follow = next(f for f in got["follow_user"] if f["userid"] == userid)
    assert {"remark", "description", "createtime", "tags", "add_way", "oper_userid"} <= set(follow)
    for tag in follow["tags"]:
        assert set(tag) == {"group_name", "tag_name", "tag_id", "type"}


def test_customer_errors(env: Env) -> None:
    assert env.call("externalcontact/list", method="GET", userid="ghost")["errcode"] == 40003
    assert env.call("externalcontact/get", method="GET", external_userid="not-an-id")["errcode"] == 40096
    assert env.call("externalcontact/get", method="GET", external_userid="wm" + "x" * 30)["errcode"] == 40096
    lonely = env.ok("user/get", method="GET", userid=env.members()[0])
    env.sb.control("POST", f"/sandbox/corps/{env.corp_id}/world/add_member", {"userid": "newbie"})
    assert env.call("externalcontact/list", method="GET", userid="newbie")["errcode"] == 84061
    assert lonely["userid"]


def test_get_pages_follow_user_by_500(sandbox, callback_receiver) -> None:
    env = make_env(sandbox, callback_receiver, members=600, customers=1, follows=0, seed=3)
    ext = env.world("scan", userid=env.members()[0])["external_userid"]
    for userid in env.members()[1:]:
        env.world("scan", userid=userid, external_userid=ext, deliver=False)
    first = env.ok("externalcontact/get", method="GET", external_userid=ext)
    assert len(first["follow_user"]) == 500 and first["next_cursor"]
    second = env.ok("externalcontact/get", method="GET", external_userid=ext, cursor=first["next_cursor"])
    assert len(second["follow_user"]) == 100 and second["next_cursor"] == ""
    users = {f["userid"] for f in first["follow_user"] + second["follow_user"]}
    assert users == set(env.members())


def test_batch_get_by_user_cursor_and_limits(env: Env) -> None:
    members = env.members()
    expected = {(u, e) for u in members for e in env.follows(u)}
    seen: set[tuple[str, str]] = set()
    cursor, pages = "", 0
    while True:
        page = env.ok(
            "externalcontact/batch/get_by_user", {"userid_list": members, "limit": 7, "cursor": cursor}
        )
        assert len(page["external_contact_list"]) <= 7
        for item in page["external_contact_list"]:
            key = (item["follow_info"]["userid"], item["external_contact"]["external_userid"])
            assert key not in seen
            seen.add(key)
            assert isinstance(item["follow_info"]["tag_id"], list)
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == expected and pages == -(-len(expected) // 7)
    assert (
        env.call("externalcontact/batch/get_by_user", {"userid_list": members, "limit": 101})["errcode"]
        == 40058
    )
    too_many = [f"u{i}" for i in range(101)]
    assert env.call("externalcontact/batch/get_by_user", {"userid_list": too_many})["errcode"] == 40058
    assert env.call("externalcontact/batch/get_by_user", {"userid_list": []})["errcode"] == 40058
    assert env.call("externalcontact/batch/get_by_user", {"userid_list": ["ghost"]})["errcode"] == 40003
    default = env.ok("externalcontact/batch/get_by_user", {"userid_list": members})
    assert len(default["external_contact_list"]) == min(50, len(expected))


def test_batch_cursor_survives_deletions_between_pages(env: Env) -> None:
    userid = env.members()[0]
    page = env.ok("externalcontact/batch/get_by_user", {"userid_list": [userid], "limit": 2})
    returned = [i["external_contact"]["external_userid"] for i in page["external_contact_list"]]
    for ext in env.follows(userid)[:2]:
        env.world("del_external_contact", userid=userid, external_userid=ext)
    rest = env.ok(
        "externalcontact/batch/get_by_user", {"userid_list": [userid], "cursor": page["next_cursor"]}
    )
    after = [i["external_contact"]["external_userid"] for i in rest["external_contact_list"]]
    assert not set(after) & set(returned)
    assert set(after) == set(env.follows(userid))


def test_remark(env: Env) -> None:
    userid = env.members()[0]
    ext = env.follows(userid)[0]
    env.ok(
        "externalcontact/remark",
        {"userid": userid, "external_userid": ext, "remark": "王总", "description": "VIP"},
    )
    follow = next(
        f
        for f in env.ok("externalcontact/get", method="GET", external_userid=ext)["follow_user"]
        if f["userid"] == userid
    )
    assert follow["remark"] == "王总" and follow["description"] == "VIP"
    assert (
        env.call("externalcontact/remark", {"userid": userid, "external_userid": ext, "remark": "长" * 21})[
            "errcode"
        ]
        == 40058
    )
    other = next(m for m in env.members() if ext not in env.follows(m))
    assert (
        env.call("externalcontact/remark", {"userid": other, "external_userid": ext, "remark": "x"})[
            "errcode"
        ]
        == 84061
    )
