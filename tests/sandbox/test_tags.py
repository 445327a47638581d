"""Corp tags: add/get/edit/del, the 3,000 cap, app ownership (81011), mark_tag (40068)."""

from __future__ import annotations

from .conftest import Env


def _add(env: Env, group: str, *names: str) -> dict:
    return env.ok("externalcontact/add_corp_tag", {"group_name": group, "tag": [{"name": n} for n in names]})


def test_add_get_edit_delete_own_tags(env: Env) -> None:
    group = _add(env, "会员等级", "金卡", "银卡")["tag_group"]
    assert group["group_name"] == "会员等级" and [t["name"] for t in group["tag"]] == ["金卡", "银卡"]
    gold, silver = (t["id"] for t in group["tag"])
    more = env.ok("externalcontact/add_corp_tag", {"group_id": group["group_id"], "tag": [{"name": "铜卡"}]})
    assert [t["name"] for t in more["tag_group"]["tag"]] == ["铜卡"]
    listed = env.ok("externalcontact/get_corp_tag_list", {"group_id": [group["group_id"]]})["tag_group"]
    assert [t["name"] for t in listed[0]["tag"]] == ["金卡", "银卡", "铜卡"]
    only = env.ok("externalcontact/get_corp_tag_list", {"tag_id": [silver]})["tag_group"]
    assert [t["id"] for t in only[0]["tag"]] == [silver]
    env.ok("externalcontact/edit_corp_tag", {"id": gold, "name": "黑金卡", "order": 9})
    env.ok("externalcontact/edit_corp_tag", {"id": group["group_id"], "name": "会员卡等级"})
    after = env.ok("externalcontact/get_corp_tag_list", {"tag_id": [gold]})["tag_group"][0]
    assert (
        after["group_name"] == "会员卡等级"
        and after["tag"][0]["name"] == "黑金卡"
        and after["tag"][0]["order"] == 9
    )
    assert (
        env.call("externalcontact/add_corp_tag", {"group_id": group["group_id"], "tag": [{"name": "银卡"}]})[
            "errcode"
        ]
        == 40071
    )
    env.ok("externalcontact/del_corp_tag", {"tag_id": [gold, silver]})
    env.ok("externalcontact/del_corp_tag", {"tag_id": [more["tag_group"]["tag"][0]["id"]]})
    # Deleting a group's last tag deletes the group.
    assert env.ok("externalcontact/get_corp_tag_list", {"group_id": [group["group_id"]]})["tag_group"] == []


def test_app_may_edit_only_tags_it_created(env: Env) -> None:
    console = env.data("tags")[0]  # seeded in the admin console
    tag_id = console["tags"][0]["id"]
    assert env.call("externalcontact/edit_corp_tag", {"id": tag_id, "name": "改名"})["errcode"] == 81011
    assert env.call("externalcontact/del_corp_tag", {"tag_id": [tag_id]})["errcode"] == 81011
    assert env.call("externalcontact/del_corp_tag", {"group_id": [console["group_id"]]})["errcode"] == 81011
    assert (
        env.call("externalcontact/add_corp_tag", {"group_id": console["group_id"], "tag": [{"name": "新"}]})[
            "errcode"
        ]
        == 81011
    )
    # Another app of the same corp cannot edit this app's tags either.
    mine = _add(env, "我的分组", "甲")["tag_group"]["tag"][0]["id"]
    env.sb.control("POST", f"/sandbox/corps/{env.corp_id}/apps", {"agent_id": 1000003, "secret": "other-app"})
    other = env.sb.token(env.corp_id, "other-app")
    assert (
        env.sb.api("POST", "externalcontact/edit_corp_tag", other, {"id": mine, "name": "乙"})["errcode"]
        == 81011
    )
    # ...but any app may put any corp tag on a customer.
    userid = env.members()[0]
    ext = env.follows(userid)[0]
    env.ok("externalcontact/mark_tag", {"userid": userid, "external_userid": ext, "add_tag": [tag_id, mine]})


def test_tag_cap_3000(env: Env) -> None:
    existing = sum(len(g["tags"]) for g in env.data("tags"))
    for i in range((3000 - existing) // 100):
        _add(env, f"批量{i}", *(f"t{i}-{j}" for j in range(100)))
    left = 3000 - sum(len(g["tags"]) for g in env.data("tags"))
    payload = env.call(
        "externalcontact/add_corp_tag",
        {"group_name": "最后", "tag": [{"name": f"x{j}"} for j in range(left + 1)]},
    )
    assert payload["errcode"] == 40126
    _add(env, "最后", *(f"x{j}" for j in range(left)))
    assert sum(len(g["tags"]) for g in env.data("tags")) == 3000
    assert (
        env.call("externalcontact/add_corp_tag", {"group_name": "再来", "tag": [{"name": "y"}]})["errcode"]
        == 40126
    )


def test_mark_tag(env: Env) -> None:
    userid = env.members()[0]
    ext = env.follows(userid)[0]
    tags = _add(env, "兴趣爱好", "咖啡", "茶")["tag_group"]["tag"]
    coffee, tea = tags[0]["id"], tags[1]["id"]
    env.ok("externalcontact/mark_tag", {"userid": userid, "external_userid": ext, "add_tag": [coffee, tea]})
    env.ok("externalcontact/mark_tag", {"userid": userid, "external_userid": ext, "remove_tag": [coffee]})
    follow = next(
        f
        for f in env.ok("externalcontact/get", method="GET", external_userid=ext)["follow_user"]
        if f["userid"] == userid
    )
    ids = [t["tag_id"] for t in follow["tags"]]
    assert tea in ids and coffee not in ids
    bad = env.call(
        "externalcontact/mark_tag", {"userid": userid, "external_userid": ext, "add_tag": ["etNOPE"]}
    )
    assert bad["errcode"] == 40068
    assert (
        env.call("externalcontact/mark_tag", {"userid": userid, "external_userid": ext})["errcode"] == 40058
    )
    # A deleted tag disappears from customers without touching each of them.
    env.ok("externalcontact/del_corp_tag", {"tag_id": [tea]})
    follow = next(
        f
        for f in env.ok("externalcontact/get", method="GET", external_userid=ext)["follow_user"]
        if f["userid"] == userid
    )
    assert tea not in [t["tag_id"] for t in follow["tags"]]
