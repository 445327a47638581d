import logging
import socket
import time
from email.parser import BytesParser
from email.policy import HTTP

import httpx
import pytest

from wecom.client import WeComClient
from wecom.errors import (
    Category,
    ConcurrencyLimited,
    ConfigError,
    PermanentError,
    RateLimited,
    TokenInvalid,
    TransientError,
    WelcomeAlreadySent,
    WelcomeBusy,
    WelcomeCodeInvalid,
)
from wecom.ratelimit import RateLimitConfig, RateLimiter

# API.md §5 -> the class a caller catches.
EXPECTED = {
    -1: TransientError,
    40001: ConfigError,
    40013: ConfigError,
    40014: TokenInvalid,
    42001: TokenInvalid,
    41001: PermanentError,
    40003: PermanentError,
    60011: PermanentError,
    81013: PermanentError,
    40068: PermanentError,
    40096: PermanentError,
    40098: PermanentError,
    40099: PermanentError,
    41048: PermanentError,
    41050: WelcomeCodeInvalid,
    41051: WelcomeAlreadySent,
    41063: TransientError,
    41096: WelcomeBusy,
    45009: RateLimited,
    45033: ConcurrencyLimited,
    48002: ConfigError,
    84074: ConfigError,
    301002: ConfigError,
    60020: ConfigError,
    81017: PermanentError,
    84061: PermanentError,
    90500: PermanentError,
    90501: PermanentError,
}


@pytest.mark.parametrize(("errcode", "cls"), sorted(EXPECTED.items()))
def test_each_errcode_answer_raises_its_class(fake_wecom, make_client, errcode, cls):
    fake_wecom.route(
        "externalcontact/send_welcome_msg",
        {"errcode": errcode, "errmsg": f"error {errcode}, hint: [h{errcode}], from ip: 127.0.0.1"},
    )
    client = make_client()
    with pytest.raises(cls) as caught:
        client.send_welcome_msg(welcome_code="WC", text="hello")
    error = caught.value
    assert type(error) is cls
    assert (error.errcode, error.api, error.hint) == (
        errcode,
        "externalcontact/send_welcome_msg",
        f"h{errcode}",
    )
    assert str(errcode) in str(error)
    assert error.message("zh-hans") and error.message("en")


def test_45009_opens_the_breaker_for_every_later_call(fake_wecom, make_client):
    fake_wecom.route("externalcontact/get", {"errcode": 45009, "errmsg": "api freq out of limit"})
    client = make_client()
    with pytest.raises(RateLimited) as caught:
        client.get_external_contact("wm1")
    assert caught.value.retry_after == pytest.approx(60, abs=1)
    # Every process sharing the limiter now stops calling that API, without touching WeCom.
    other = make_client(acquire_timeout=0.1)
    with pytest.raises(RateLimited) as caught:
        other.get_external_contact("wm2")
    assert caught.value.message_key == 45009
    assert len(fake_wecom.requests_to("externalcontact/get")) == 1
    assert other.list_external_contacts("u1")["errcode"] == 0  # other APIs go on


def test_45033_lowers_the_concurrency_cap(fake_wecom, make_client):
    fake_wecom.route(
        "externalcontact/batch/get_by_user", {"errcode": 45033, "errmsg": "api concurrent out of limit"}
    )
    client = make_client()
    with pytest.raises(ConcurrencyLimited):
        next(client.iter_external_contacts_by_user(["u1"]))
    usage = client.limiter.usage(client.corp_id, "externalcontact/batch/get_by_user")
    assert (usage.concurrency_limit, usage.in_flight) == (1, 0)


def test_our_own_budget_refuses_before_calling_wecom(fake_wecom, make_client, redis_client, key_prefix):
    config = RateLimitConfig(per_minute=2, margin=1.0, minute_seconds=3600, hour_seconds=3600, reserved={})
    limiter = RateLimiter(redis_client, config, key_prefix=key_prefix)
    client = make_client(limiter=limiter, acquire_timeout=0.5)
    client.get_follow_user_list()
    client.get_follow_user_list()
    with pytest.raises(RateLimited) as caught:
        client.get_follow_user_list()
    assert caught.value.retry_after is not None and caught.value.retry_after > 0.5
    assert len(fake_wecom.requests_to("externalcontact/get_follow_user_list")) == 2


# ------------------------------------------------------------------ transport failures


def answer_late(request):
    time.sleep(1)
    return {"errcode": 0}


@pytest.mark.parametrize("injected_http", [False, True])
def test_timeouts_are_transient_even_with_an_injected_http_client(fake_wecom, make_client, injected_http):
    fake_wecom.route("externalcontact/get", answer_late)
    http = httpx.Client(timeout=30) if injected_http else None
    client = make_client(timeout=0.2, http=http)
    with pytest.raises(TransientError) as caught:
        client.get_external_contact("wm1")
    assert caught.value.errcode is None
    assert caught.value.message_key == "timeout"
    assert caught.value.category is Category.RETRY
    if http:
        http.close()


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_5xx_is_transient(fake_wecom, make_client, status):
    fake_wecom.route("externalcontact/remark", (status, b"<html>busy</html>"))
    with pytest.raises(TransientError) as caught:
        make_client().remark(userid="u1", external_userid="wm1", remark="VIP")
    assert caught.value.http_status == status


def test_other_http_errors_are_permanent_and_garbage_is_transient(fake_wecom, make_client):
    client = make_client()
    fake_wecom.route("externalcontact/get", (404, b"not found"))
    with pytest.raises(PermanentError) as permanent:
        client.get_external_contact("wm1")
    assert (permanent.value.http_status, permanent.value.category) == (404, Category.BUG)
    fake_wecom.route("externalcontact/get", (200, b"<html>captive portal</html>"))
    with pytest.raises(TransientError) as transient:
        client.get_external_contact("wm1")
    assert transient.value.message_key == "bad_response"


def test_unreachable_server_is_transient(make_client):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{port}/cgi-bin/")
    with pytest.raises(TransientError) as caught:
        client.get_follow_user_list()
    assert caught.value.message_key == "network"


# ------------------------------------------------------------------ cursor APIs


def paged(pages, cursor_of):
    """A handler answering page i for the cursor the previous page returned."""

    def handle(request):
        cursor = cursor_of(request) or ""
        index = 0 if not cursor else int(cursor.removeprefix("c"))
        return {"errcode": 0, "errmsg": "ok", **pages[index]}

    return handle


def test_cursor_generators_fetch_one_page_per_next(fake_wecom, make_client):
    path = "externalcontact/batch/get_by_user"
    pages = [
        {"external_contact_list": [{"external_contact": {"external_userid": "wm1"}}], "next_cursor": "c1"},
        {"external_contact_list": [{"external_contact": {"external_userid": "wm2"}}], "next_cursor": "c2"},
        {"external_contact_list": [{"external_contact": {"external_userid": "wm3"}}], "next_cursor": ""},
    ]
    fake_wecom.route(path, paged(pages, lambda request: request.json.get("cursor")))
    client = make_client()
    stream = client.iter_external_contacts_by_user(["u1", "u2"], limit=1)
    assert fake_wecom.requests_to(path) == []
    seen = []
    for expected_requests, page in enumerate(stream, start=1):
        assert len(fake_wecom.requests_to(path)) == expected_requests
        seen += [item["external_contact"]["external_userid"] for item in page["external_contact_list"]]
    assert seen == ["wm1", "wm2", "wm3"]
    bodies = [request.json for request in fake_wecom.requests_to(path)]
    assert bodies == [
        {"userid_list": ["u1", "u2"], "limit": 1},
        {"userid_list": ["u1", "u2"], "limit": 1, "cursor": "c1"},
        {"userid_list": ["u1", "u2"], "limit": 1, "cursor": "c2"},
    ]


def test_get_cursor_pages_through_the_query(fake_wecom, make_client):
    path = "externalcontact/get"
    pages = [{"follow_user": [{"userid": "u1"}], "next_cursor": "c1"}, {"follow_user": [{"userid": "u2"}]}]
    fake_wecom.route(path, paged(pages, lambda request: request.query.get("cursor")))
    stream = make_client().iter_external_contact("wm1")
    assert [page["follow_user"][0]["userid"] for page in stream] == ["u1", "u2"]
    queries = [request.query for request in fake_wecom.requests_to(path)]
    assert [(q["external_userid"], q.get("cursor")) for q in queries] == [("wm1", None), ("wm1", "c1")]


def test_is_last_ends_the_stream(fake_wecom, make_client):
    path = "externalcontact/get_unassigned_list"
    fake_wecom.route(path, {"errcode": 0, "info": [], "is_last": True, "next_cursor": "dangling"})
    assert len(list(make_client().iter_unassigned_list(page_size=10))) == 1
    assert [request.json for request in fake_wecom.requests_to(path)] == [{"page_size": 10}]


def test_an_error_mid_stream_is_raised_by_the_next_page(fake_wecom, make_client):
    path = "externalcontact/groupchat/list"
    fake_wecom.route(
        path,
        lambda request: (
            {"errcode": 0, "group_chat_list": [{"chat_id": "wr1", "status": 0}], "next_cursor": "c1"}
            if not request.json.get("cursor")
            else {"errcode": 81017, "errmsg": "need owner_filter"}
        ),
    )
    stream = make_client().iter_groupchats(limit=1)
    assert next(stream)["group_chat_list"] == [{"chat_id": "wr1", "status": 0}]
    with pytest.raises(PermanentError) as caught:
        next(stream)
    assert caught.value.category is Category.ADJUST


# ------------------------------------------------------------------ request shapes


def shapes():
    """(call, method, path, query besides access_token, JSON body)."""
    welcome_attachment = {"msgtype": "image", "image": {"media_id": "MEDIA"}}
    return [
        (lambda c: c.get_user("zhangsan"), "GET", "user/get", {"userid": "zhangsan"}, None),
        (lambda c: next(c.iter_user_ids()), "POST", "user/list_id", {}, {"limit": 10000}),
        (lambda c: c.get_follow_user_list(), "GET", "externalcontact/get_follow_user_list", {}, None),
        (lambda c: c.list_external_contacts("u1"), "GET", "externalcontact/list", {"userid": "u1"}, None),
        (
            lambda c: c.get_external_contact("wm1", cursor="c9"),
            "GET",
            "externalcontact/get",
            {"external_userid": "wm1", "cursor": "c9"},
            None,
        ),
        (
            lambda c: c.remark(userid="u1", external_userid="wm1", remark="VIP", remark_mobiles=["138"]),
            "POST",
            "externalcontact/remark",
            {},
            {"userid": "u1", "external_userid": "wm1", "remark": "VIP", "remark_mobiles": ["138"]},
        ),
        (
            lambda c: c.get_corp_tag_list(group_id=["g1"]),
            "POST",
            "externalcontact/get_corp_tag_list",
            {},
            {"group_id": ["g1"]},
        ),
        (
            lambda c: c.add_corp_tag(group_name="来源", tags=[{"name": "抖音", "order": 1}]),
            "POST",
            "externalcontact/add_corp_tag",
            {},
            {"group_name": "来源", "tag": [{"name": "抖音", "order": 1}]},
        ),
        (
            lambda c: c.edit_corp_tag(id="et1", name="快手"),
            "POST",
            "externalcontact/edit_corp_tag",
            {},
            {"id": "et1", "name": "快手"},
        ),
        (
            lambda c: c.del_corp_tag(tag_id=["et1"]),
            "POST",
            "externalcontact/del_corp_tag",
            {},
            {"tag_id": ["et1"]},
        ),
        (
            lambda c: c.mark_tag(userid="u1", external_userid="wm1", add_tag=["et1"]),
            "POST",
            "externalcontact/mark_tag",
            {},
            {"userid": "u1", "external_userid": "wm1", "add_tag": ["et1"], "remove_tag": []},
        ),
        (
            lambda c: c.add_contact_way(type=1, scene=2, user=["u1"], state="ch_42", skip_verify=True),
            "POST",
            "externalcontact/add_contact_way",
            {},
            {"type": 1, "scene": 2, "user": ["u1"], "state": "ch_42", "skip_verify": True},
        ),
        (
            lambda c: c.update_contact_way(config_id="cfg1", user=["u1", "u2"]),
            "POST",
            "externalcontact/update_contact_way",
            {},
            {"config_id": "cfg1", "user": ["u1", "u2"]},
        ),
        (
            lambda c: next(c.iter_contact_ways(limit=500)),
            "POST",
            "externalcontact/list_contact_way",
            {},
            {"limit": 500},
        ),
        (
            lambda c: c.send_welcome_msg(welcome_code="WC", text="你好", attachments=[welcome_attachment]),
            "POST",
            "externalcontact/send_welcome_msg",
            {},
            {"welcome_code": "WC", "text": {"content": "你好"}, "attachments": [welcome_attachment]},
        ),
        (
            lambda c: c.add_group_welcome_template(text="欢迎", notify=1),
            "POST",
            "externalcontact/group_welcome_template/add",
            {},
            {"text": {"content": "欢迎"}, "notify": 1},
        ),
        (
            lambda c: c.del_group_welcome_template("tpl1"),
            "POST",
            "externalcontact/group_welcome_template/del",
            {},
            {"template_id": "tpl1"},
        ),
        (
            lambda c: c.get_groupchat("wr1", need_name=True),
            "POST",
            "externalcontact/groupchat/get",
            {},
            {"chat_id": "wr1", "need_name": 1},
        ),
        (
            lambda c: next(c.iter_groupchats(status_filter=1, owner_userids=["u1"], limit=100)),
            "POST",
            "externalcontact/groupchat/list",
            {},
            {"status_filter": 1, "owner_filter": {"userid_list": ["u1"]}, "limit": 100},
        ),
        (
            lambda c: c.add_join_way(scene=2, chat_id_list=["wr1"], state="grp_7", auto_create_room=1),
            "POST",
            "externalcontact/groupchat/add_join_way",
            {},
            {"scene": 2, "chat_id_list": ["wr1"], "state": "grp_7", "auto_create_room": 1},
        ),
        (
            lambda c: c.add_msg_template(external_userid=["wm1"], sender="u1", text="新品"),
            "POST",
            "externalcontact/add_msg_template",
            {},
            {"chat_type": "single", "external_userid": ["wm1"], "sender": "u1", "text": {"content": "新品"}},
        ),
        (
            lambda c: next(c.iter_groupmsg_send_result("msg1", "u1")),
            "POST",
            "externalcontact/get_groupmsg_send_result",
            {},
            {"msgid": "msg1", "userid": "u1", "limit": 1000},
        ),
        (
            lambda c: c.remind_groupmsg_send("msg1"),
            "POST",
            "externalcontact/remind_groupmsg_send",
            {},
            {"msgid": "msg1"},
        ),
        (
            lambda c: c.cancel_groupmsg_send("msg1"),
            "POST",
            "externalcontact/cancel_groupmsg_send",
            {},
            {"msgid": "msg1"},
        ),
        (
            lambda c: c.transfer_customer(handover_userid="a", takeover_userid="b", external_userid=["wm1"]),
            "POST",
            "externalcontact/transfer_customer",
            {},
            {"handover_userid": "a", "takeover_userid": "b", "external_userid": ["wm1"]},
        ),
        (
            lambda c: next(c.iter_resigned_transfer_result(handover_userid="a", takeover_userid="b")),
            "POST",
            "externalcontact/resigned/transfer_result",
            {},
            {"handover_userid": "a", "takeover_userid": "b"},
        ),
        (
            lambda c: c.onjob_transfer_groupchat(chat_id_list=["wr1"], new_owner="b"),
            "POST",
            "externalcontact/groupchat/onjob_transfer",
            {},
            {"chat_id_list": ["wr1"], "new_owner": "b"},
        ),
    ]


@pytest.mark.parametrize(
    ("call", "method", "path", "query", "body"), [pytest.param(*shape, id=shape[2]) for shape in shapes()]
)
def test_request_shapes(fake_wecom, make_client, call, method, path, query, body):
    call(make_client())
    [request] = fake_wecom.requests_to(path)
    assert request.method == method
    assert request.query == {**query, "access_token": fake_wecom.issued[0]}
    assert request.json == body
    if body is not None:
        assert request.headers["content-type"] == "application/json"


def test_mark_tag_with_nothing_to_do_is_refused_locally(fake_wecom, make_client):
    with pytest.raises(ValueError):
        make_client().mark_tag(userid="u1", external_userid="wm1")
    assert fake_wecom.requests == []


def test_media_upload_is_multipart_and_survives_a_token_refresh(fake_wecom, make_client):
    fake_wecom.route("media/upload", {"errcode": 0, "type": "image", "media_id": "MEDIA1", "created_at": "1"})
    client = make_client()
    client.get_follow_user_list()
    fake_wecom.revoke_tokens()  # the upload is rejected once (40014) and sent again
    answer = client.upload_media(
        media_type="image", filename="qr.png", content=b"\x89PNG...", content_type="image/png"
    )
    assert answer["media_id"] == "MEDIA1"
    uploads = fake_wecom.requests_to("media/upload")
    assert len(uploads) == 2
    for upload in uploads:
        assert upload.method == "POST"
        assert upload.query["type"] == "image"
        head = f"Content-Type: {upload.headers['content-type']}\r\n\r\n".encode()
        form = BytesParser(policy=HTTP).parsebytes(head + upload.body)
        [part] = form.iter_parts()
        assert part.get_param("name", header="content-disposition") == "media"
        assert part.get_filename() == "qr.png"
        assert part.get_content_type() == "image/png"
        assert part.get_payload(decode=True) == b"\x89PNG..."


# ------------------------------------------------------------------ logging, metrics, lanes


def test_every_call_is_logged_with_corp_api_errcode_and_latency(fake_wecom, make_client, caplog):
    caplog.set_level(logging.INFO, logger="wecom.client")
    fake_wecom.route("externalcontact/list", {"errcode": 40003, "errmsg": "invalid userid, hint: [h1]"})
    client = make_client()
    client.get_follow_user_list()
    with pytest.raises(PermanentError):
        client.list_external_contacts("ghost")
    records = [r for r in caplog.records if r.name == "wecom.client"]
    summary = [(r.levelno, r.wecom_corp, r.wecom_api, r.wecom_errcode, r.wecom_hint) for r in records]
    assert summary == [
        (logging.INFO, client.corp_id, "gettoken", 0, None),
        (logging.INFO, client.corp_id, "externalcontact/get_follow_user_list", 0, None),
        (logging.WARNING, client.corp_id, "externalcontact/list", 40003, "h1"),
    ]
    assert all(r.wecom_latency_ms >= 0 for r in records)
    assert "api=externalcontact/list errcode=40003" in records[-1].getMessage()


def test_calls_are_counted_per_corp_api_and_minute(fake_wecom, make_client):
    fake_wecom.route(
        "externalcontact/get", lambda request: (502, b"") if request.query["external_userid"] == "x" else {}
    )
    client = make_client()
    client.get_external_contact("wm1")
    client.with_lane("realtime").get_external_contact("wm2")
    with pytest.raises(TransientError):
        client.with_lane("bulk").get_external_contact("x")
    [current] = client.limiter.usage_history(client.corp_id, "externalcontact/get", windows=1)
    counts = dict(current.counts)
    assert counts.pop("latency_ms") >= 0
    assert counts == {
        "lane:events": 1,
        "lane:realtime": 1,
        "lane:bulk": 1,
        "calls": 3,
        "outcome:0": 2,
        "outcome:http_502": 1,
    }
    assert client.limiter.usage(client.corp_id, "externalcontact/get").minute_used == 3


def test_lane_views_share_the_connection_and_the_token(fake_wecom, make_client):
    client = make_client()
    welcome = client.with_lane("realtime", acquire_timeout=2.0)
    assert (welcome.lane, welcome.acquire_timeout, client.lane) == ("realtime", 2.0, "events")
    welcome.close()  # a view doesn't own the connection pool
    client.get_follow_user_list()
    welcome.get_follow_user_list()
    assert fake_wecom.gettoken_calls == 1
    with pytest.raises(ValueError):
        client.with_lane("vip")
    with pytest.raises(ValueError):
        WeComClient(corp_id="c", secret="s", redis=client.limiter.redis, lane="vip")
