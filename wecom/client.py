"""The WeCom server API client: every outbound call to WeCom goes through here (API.md §3).

``call()`` takes a rate-limit token (shared limiter), adds the shared access_token, maps errcodes to
``wecom.errors`` (refreshing the token once on 40014/42001), logs corp, API, errcode and latency on
the "wecom.client" logger and counts the outcome in Redis. The typed methods on top are thin: keyword
arguments in, WeCom's JSON answer out. Cursor APIs are generators that fetch one page per ``next()``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar, cast

import httpx
from redis import Redis

from wecom.errors import (
    TOKEN_ERRCODES,
    Category,
    PermanentError,
    TransientError,
    WeComError,
    error_from_response,
    hint_of,
)
from wecom.ratelimit import LANES, RateLimiter
from wecom.token import TokenCache
from wecom.types import (
    AddContactWayResponse,
    AddCorpTagResponse,
    AddMsgTemplateResponse,
    BatchGetByUserPage,
    ConfigIdResponse,
    ContactWayListPage,
    ContactWayResponse,
    CorpTagListResponse,
    ExternalContactPage,
    ExternalUserIdListResponse,
    FollowUserListResponse,
    GroupChatListPage,
    GroupChatResponse,
    GroupChatStatisticResponse,
    GroupChatTransferResponse,
    GroupMsgListPage,
    GroupMsgSendResultPage,
    GroupMsgTaskPage,
    GroupWelcomeTemplateResponse,
    JoinWayResponse,
    MediaUploadResponse,
    TemplateIdResponse,
    TransferCustomerResponse,
    TransferResultPage,
    UnassignedListPage,
    UserIdListPage,
    UserResponse,
    WeComResponse,
)

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com/cgi-bin/"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)

logger = logging.getLogger("wecom.client")

T = TypeVar("T")

_SECRET_QUERY = re.compile(r"(access_token|corpsecret)=[^&\s\"'>]*")


def redact(text: str) -> str:
    """Mask access_token and corpsecret query values in a URL or message."""
    return _SECRET_QUERY.sub(r"\1=***", text)


class _RedactSecrets(logging.Filter):
    """httpx logs every request URL at INFO, and WeCom puts the token (or secret) in the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


_httpx_logger = logging.getLogger("httpx")
if not any(isinstance(f, _RedactSecrets) for f in _httpx_logger.filters):
    _httpx_logger.addFilter(_RedactSecrets())


def _compact(**fields: Any) -> dict[str, Any]:
    """A JSON body without the fields left unset."""
    return {key: value for key, value in fields.items() if value is not None}


def _listed(values: Sequence[Any] | None) -> list[Any] | None:
    return None if values is None else list(values)


def _owner_filter(userids: Sequence[str] | None) -> dict[str, Any] | None:
    return None if userids is None else {"userid_list": list(userids)}


def _outcome(exc: WeComError) -> str:
    if exc.errcode is not None:
        return str(exc.errcode)
    if exc.http_status is not None:
        return f"http_{exc.http_status}"
    return str(exc.message_key)


class WeComClient:
    """One corp's app. Thread-safe; share one per (corp, app) in a process.

    ``lane`` picks the rate-limit lane of every call ("realtime", "events", "bulk"); ``with_lane()``
    gives a view of the same client in another lane. ``acquire_timeout`` bounds the wait for a
    rate-limit token (None: wait as long as it takes); past it, RateLimited is raised.
    """

    def __init__(
        self,
        *,
        corp_id: str,
        secret: str,
        redis: Redis,
        base_url: str = DEFAULT_BASE_URL,
        app_key: str = "default",
        limiter: RateLimiter | None = None,
        lane: str = "events",
        http: httpx.Client | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        acquire_timeout: float | None = 30.0,
        key_prefix: str = "wecom:",
        token_refresh_ahead: float = 300.0,
    ) -> None:
        if lane not in LANES:
            raise ValueError(f"unknown lane {lane!r}; expected one of {LANES}")
        self.corp_id = corp_id
        self.app_key = app_key
        self.base_url = base_url.rstrip("/") + "/"
        self.lane = lane
        self.acquire_timeout = acquire_timeout
        self.limiter = limiter or RateLimiter(redis, key_prefix=key_prefix)
        self._secret = secret
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._owns_http = http is None
        self._http = http or httpx.Client(
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        )
        # The refresh lock must outlive the slowest gettoken the timeout allows.
        slowest = sum(
            part or 0.0
            for part in (self._timeout.connect, self._timeout.write, self._timeout.read, self._timeout.pool)
        )
        self.tokens = TokenCache(
            redis=redis,
            corp_id=corp_id,
            app_key=app_key,
            fetch=self._fetch_token,
            key_prefix=key_prefix,
            refresh_ahead=token_refresh_ahead,
            lock_ttl=slowest + 5.0,
            wait_timeout=slowest + 5.0,
        )

    def with_lane(self, lane: str, *, acquire_timeout: float | None = None) -> WeComClient:
        """The same client (connections, token, limiter) calling in another lane; ``acquire_timeout``
        None keeps this client's."""
        if lane not in LANES:
            raise ValueError(f"unknown lane {lane!r}; expected one of {LANES}")
        view = object.__new__(WeComClient)
        view.__dict__.update(self.__dict__)
        view.lane = lane
        view._owns_http = False
        if acquire_timeout is not None:
            view.acquire_timeout = acquire_timeout
        return view

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> WeComClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ low level

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        files: Mapping[str, Any] | None = None,
        api: str | None = None,
        lane: str | None = None,
    ) -> dict[str, Any]:
        """Call ``path`` (relative to the base URL) and return WeCom's JSON answer (errcode 0).

        ``api`` names the API for rate limiting, logs and metrics (default: ``path``). ``files``
        contents must be bytes so the one retry after a token refresh can send them again.
        Raises a ``wecom.errors.WeComError`` subclass on any failure.
        """
        api = api or path
        lane = lane or self.lane
        token = self.tokens.get()
        payload, retry_after = self._limited(method, path, api, lane, token, params, json, files)
        if payload.get("errcode") in TOKEN_ERRCODES:
            # Refresh once, retry once (Doc 91039); a second rejection is raised as TokenInvalid.
            self.tokens.invalidate(token)
            token = self.tokens.get()
            payload, retry_after = self._limited(method, path, api, lane, token, params, json, files)
        if payload.get("errcode", 0) != 0:
            error = error_from_response(payload, api=api)
            error.retry_after = retry_after
            raise error
        return payload

    def _limited(
        self,
        method: str,
        path: str,
        api: str,
        lane: str,
        token: str,
        params: Mapping[str, Any] | None,
        json: Any,
        files: Mapping[str, Any] | None,
    ) -> tuple[dict[str, Any], float | None]:
        """One HTTP call under a rate-limit grant. Returns the answer and, after 45009, the wait."""
        grant = self.limiter.acquire(self.corp_id, api, lane, timeout=self.acquire_timeout)
        started = time.perf_counter()
        outcome = "network"
        try:
            payload = self._send(
                method, path, api, params={**(params or {}), "access_token": token}, json=json, files=files
            )
            outcome = str(payload.get("errcode", 0))
            retry_after = None
            # Report while still holding our concurrency lease: 45033 halves what is in flight.
            if payload.get("errcode") == 45009:
                retry_after = self.limiter.open_breaker(self.corp_id, api)
            elif payload.get("errcode") == 45033:
                self.limiter.lower_concurrency(self.corp_id, api)
            return payload, retry_after
        except WeComError as exc:
            outcome = _outcome(exc)
            raise
        finally:
            self.limiter.finish(grant, outcome=outcome, latency_ms=(time.perf_counter() - started) * 1000)

    def _send(
        self,
        method: str,
        path: str,
        api: str,
        *,
        params: Mapping[str, Any],
        json: Any = None,
        files: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The HTTP exchange: answers are JSON dicts; transport failures and 5xx are transient."""
        started = time.perf_counter()
        errcode: int | str = "network"
        hint = None
        try:
            try:
                response = self._http.request(
                    method,
                    self.base_url + path.lstrip("/"),
                    params=params,
                    json=json,
                    files=files,
                    timeout=self._timeout,
                )
            except httpx.TimeoutException as exc:
                errcode = "timeout"
                # `from None`: nothing of the request (its URL holds the token) rides along.
                raise TransientError(None, redact(repr(exc)), api=api, message_key="timeout") from None
            except httpx.HTTPError as exc:
                raise TransientError(None, redact(repr(exc)), api=api, message_key="network") from None
            status = response.status_code
            if status != 200:
                errcode = f"http_{status}"
                if status >= 500 or status == 429:
                    raise TransientError(
                        None, f"HTTP {status}", api=api, http_status=status, message_key="http_status"
                    )
                raise PermanentError(
                    None,
                    f"HTTP {status}",
                    api=api,
                    http_status=status,
                    category=Category.BUG,
                    message_key="http_status",
                )
            try:
                payload = response.json()
            except ValueError:
                payload = None
            if not isinstance(payload, dict):
                errcode = "bad_response"
                raise TransientError(None, "answer is not a JSON object", api=api, message_key="bad_response")
            errcode = payload["errcode"] = int(payload.get("errcode", 0))
            hint = hint_of(payload)
            if errcode:
                # errmsg ends up in exceptions and logs: never let it echo a credential.
                errmsg = redact(str(payload.get("errmsg", "")))
                for key in ("access_token", "corpsecret"):
                    if params.get(key):
                        errmsg = errmsg.replace(str(params[key]), "***")
                payload["errmsg"] = errmsg
            return payload
        finally:
            latency_ms = (time.perf_counter() - started) * 1000
            logger.log(
                logging.INFO if errcode == 0 else logging.WARNING,
                "wecom call corp=%s api=%s errcode=%s latency_ms=%.0f hint=%s",
                self.corp_id,
                api,
                errcode,
                latency_ms,
                hint,
                # Prefixed: "corp" on a record is the tenant context of the Django side's log filter.
                extra={
                    "wecom_corp": self.corp_id,
                    "wecom_api": api,
                    "wecom_errcode": errcode,
                    "wecom_latency_ms": latency_ms,
                    "wecom_hint": hint,
                },
            )

    def _fetch_token(self) -> tuple[str, int]:
        # gettoken stays outside the limiter: the token cache makes it one call per ~2 h per app.
        # Reference: Doc 91039
        payload = self._send(
            "GET", "gettoken", "gettoken", params={"corpid": self.corp_id, "corpsecret": self._secret}
        )
        if payload.get("errcode", 0) != 0:
            raise error_from_response(payload, api="gettoken")
        return str(payload["access_token"]), int(payload.get("expires_in", 7200))

    def _get(self, shape: type[T], path: str, **params: Any) -> T:
        return cast(T, self.call("GET", path, params=params))

    def _post(self, shape: type[T], path: str, body: Mapping[str, Any]) -> T:
        return cast(T, self.call("POST", path, json=dict(body)))

    def _pages(
        self, shape: type[T], method: Literal["GET", "POST"], path: str, request: Mapping[str, Any]
    ) -> Iterator[T]:
        """Follow ``next_cursor`` lazily: each page is requested only when the caller asks for it.

        ``request`` is the query (GET) or JSON body (POST) of the first page.
        """
        cursor = ""
        while True:
            fields = {**request, **({"cursor": cursor} if cursor else {})}
            if method == "GET":
                page = self.call("GET", path, params=fields)
            else:
                page = self.call("POST", path, json=fields)
            yield cast(T, page)
            cursor = str(page.get("next_cursor") or "")
            if not cursor or page.get("is_last"):
                return

    # ------------------------------------------------------------------ members

    def get_user(self, userid: str) -> UserResponse:
        # Reference: Doc 90196
        return self._get(UserResponse, "user/get", userid=userid)

    def iter_user_ids(self, *, limit: int = 10_000) -> Iterator[UserIdListPage]:
        """Pages of (userid, department) for every member the app can see."""
        # Reference: Doc 96067
        return self._pages(UserIdListPage, "POST", "user/list_id", {"limit": limit})

    def get_follow_user_list(self) -> FollowUserListResponse:
        """Members with the customer-contact permission."""
        # Reference: Doc 92571
        return self._get(FollowUserListResponse, "externalcontact/get_follow_user_list")

    # ------------------------------------------------------------------ customers

    def list_external_contacts(self, userid: str) -> ExternalUserIdListResponse:
        """One member's customers (external_userids)."""
        # Reference: Doc 92113
        return self._get(ExternalUserIdListResponse, "externalcontact/list", userid=userid)

    def get_external_contact(self, external_userid: str, *, cursor: str = "") -> ExternalContactPage:
        """One customer and one page of its ``follow_user`` (WeCom pages them past 500)."""
        params = {"external_userid": external_userid, **({"cursor": cursor} if cursor else {})}
        # Reference: Doc 92114
        return self._get(ExternalContactPage, "externalcontact/get", **params)

    def iter_external_contact(self, external_userid: str) -> Iterator[ExternalContactPage]:
        """All pages of one customer's ``follow_user``."""
        # Reference: Doc 92114
        return self._pages(
            ExternalContactPage, "GET", "externalcontact/get", {"external_userid": external_userid}
        )

    def iter_external_contacts_by_user(
        self, userid_list: Sequence[str], *, limit: int = 100
    ) -> Iterator[BatchGetByUserPage]:
        """Customers with follow info of up to 100 members, ``limit`` (≤100) per page."""
        # Reference: Doc 92994
        return self._pages(
            BatchGetByUserPage,
            "POST",
            "externalcontact/batch/get_by_user",
            {"userid_list": list(userid_list), "limit": limit},
        )

    def remark(
        self,
        *,
        userid: str,
        external_userid: str,
        remark: str | None = None,
        description: str | None = None,
        remark_company: str | None = None,
        remark_mobiles: Sequence[str] | None = None,
        remark_pic_mediaid: str | None = None,
    ) -> WeComResponse:
        """Edit a member's remark on a customer (remark ≤20, description ≤150, company ≤20 chars)."""
        body = _compact(
            userid=userid,
            external_userid=external_userid,
            remark=remark,
            description=description,
            remark_company=remark_company,
            remark_mobiles=_listed(remark_mobiles),
            remark_pic_mediaid=remark_pic_mediaid,
        )
        # Reference: Doc 92115
        return self._post(WeComResponse, "externalcontact/remark", body)

    # ------------------------------------------------------------------ corp tags

    def get_corp_tag_list(
        self, *, tag_id: Sequence[str] | None = None, group_id: Sequence[str] | None = None
    ) -> CorpTagListResponse:
        """Tag groups with their tags; no filter means all."""
        body = _compact(tag_id=_listed(tag_id), group_id=_listed(group_id))
        # Reference: Doc 92117
        return self._post(CorpTagListResponse, "externalcontact/get_corp_tag_list", body)

    def add_corp_tag(
        self,
        *,
        tags: Sequence[Mapping[str, Any]],
        group_id: str | None = None,
        group_name: str | None = None,
        order: int | None = None,
        agentid: int | None = None,
    ) -> AddCorpTagResponse:
        """Add tags (``[{"name": ..., "order": ...}]``) to group ``group_id``, or to a group named
        ``group_name`` (created if missing)."""
        body = _compact(
            group_id=group_id,
            group_name=group_name,
            order=order,
            tag=[dict(tag) for tag in tags],
            agentid=agentid,
        )
        # Reference: Doc 92117
        return self._post(AddCorpTagResponse, "externalcontact/add_corp_tag", body)

    def edit_corp_tag(
        self, *, id: str, name: str | None = None, order: int | None = None, agentid: int | None = None
    ) -> WeComResponse:
        """Rename or reorder a tag or tag group (only ones this app created)."""
        body = _compact(id=id, name=name, order=order, agentid=agentid)
        # Reference: Doc 92117
        return self._post(WeComResponse, "externalcontact/edit_corp_tag", body)

    def del_corp_tag(
        self,
        *,
        tag_id: Sequence[str] | None = None,
        group_id: Sequence[str] | None = None,
        agentid: int | None = None,
    ) -> WeComResponse:
        """Delete tags and/or whole tag groups (only ones this app created)."""
        body = _compact(tag_id=_listed(tag_id), group_id=_listed(group_id), agentid=agentid)
        # Reference: Doc 92117
        return self._post(WeComResponse, "externalcontact/del_corp_tag", body)

    def mark_tag(
        self,
        *,
        userid: str,
        external_userid: str,
        add_tag: Sequence[str] = (),
        remove_tag: Sequence[str] = (),
    ) -> WeComResponse:
        """Add and remove corp tags on a customer as seen by one member."""
        if not add_tag and not remove_tag:
            raise ValueError("mark_tag needs add_tag or remove_tag")
        body = {
            "userid": userid,
            "external_userid": external_userid,
            "add_tag": list(add_tag),
            "remove_tag": list(remove_tag),
        }
        # Reference: Doc 92118
        return self._post(WeComResponse, "externalcontact/mark_tag", body)

    # ------------------------------------------------------------------ contact ways (channel codes)

    def add_contact_way(
        self,
        *,
        type: Literal[1, 2],
        scene: Literal[1, 2],
        user: Sequence[str] | None = None,
        party: Sequence[int] | None = None,
        state: str | None = None,
        remark: str | None = None,
        skip_verify: bool | None = None,
        style: int | None = None,
        is_temp: bool | None = None,
        expires_in: int | None = None,
        chat_expires_in: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> AddContactWayResponse:
        """Create a 联系我 way: type 1 single / 2 multi, scene 1 mini-program / 2 QR code.
        ``state`` (≤30 chars) comes back in the add event. ``extra``: other documented fields."""
        body = _compact(
            type=type,
            scene=scene,
            style=style,
            remark=remark,
            skip_verify=skip_verify,
            state=state,
            user=_listed(user),
            party=_listed(party),
            is_temp=is_temp,
            expires_in=expires_in,
            chat_expires_in=chat_expires_in,
        )
        # Reference: Doc 92572
        return self._post(AddContactWayResponse, "externalcontact/add_contact_way", {**body, **(extra or {})})

    def get_contact_way(self, config_id: str) -> ContactWayResponse:
        # Reference: Doc 92572
        return self._post(ContactWayResponse, "externalcontact/get_contact_way", {"config_id": config_id})

    def iter_contact_ways(
        self, *, start_time: int | None = None, end_time: int | None = None, limit: int = 1000
    ) -> Iterator[ContactWayListPage]:
        """Pages of config_ids of the ways this app created."""
        body = _compact(start_time=start_time, end_time=end_time, limit=limit)
        # Reference: Doc 92572
        return self._pages(ContactWayListPage, "POST", "externalcontact/list_contact_way", body)

    def update_contact_way(
        self,
        *,
        config_id: str,
        user: Sequence[str] | None = None,
        party: Sequence[int] | None = None,
        state: str | None = None,
        remark: str | None = None,
        skip_verify: bool | None = None,
        style: int | None = None,
        expires_in: int | None = None,
        chat_expires_in: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> WeComResponse:
        """Change a way's members, remark, skip_verify, state…; unset fields stay as they are."""
        body = _compact(
            config_id=config_id,
            remark=remark,
            skip_verify=skip_verify,
            style=style,
            state=state,
            user=_listed(user),
            party=_listed(party),
            expires_in=expires_in,
            chat_expires_in=chat_expires_in,
        )
        # Reference: Doc 92572
        return self._post(WeComResponse, "externalcontact/update_contact_way", {**body, **(extra or {})})

    def del_contact_way(self, config_id: str) -> WeComResponse:
        # Reference: Doc 92572
        return self._post(WeComResponse, "externalcontact/del_contact_way", {"config_id": config_id})

    # ------------------------------------------------------------------ welcome messages and media

    def send_welcome_msg(
        self,
        *,
        welcome_code: str,
        text: str | None = None,
        attachments: Sequence[Mapping[str, Any]] = (),
    ) -> WeComResponse:
        """Send the welcome message of an add event: once, within 20 s of it (41050/41051/41096)."""
        body: dict[str, Any] = {"welcome_code": welcome_code}
        if text is not None:
            body["text"] = {"content": text}
        if attachments:
            body["attachments"] = [dict(item) for item in attachments]
        # Reference: Doc 92137
        return self._post(WeComResponse, "externalcontact/send_welcome_msg", body)

    def upload_media(
        self,
        *,
        media_type: Literal["image", "voice", "video", "file"],
        filename: str,
        content: bytes,
        content_type: str = "application/octet-stream",
    ) -> MediaUploadResponse:
        """Upload temporary media (valid 3 days) as multipart field ``media``; returns ``media_id``."""
        # Reference: Doc 90253
        return cast(
            MediaUploadResponse,
            self.call(
                "POST",
                "media/upload",
                params={"type": media_type},
                files={"media": (filename, content, content_type)},
            ),
        )

    # ------------------------------------------------------------------ group welcome templates

    def add_group_welcome_template(
        self,
        *,
        text: str | None = None,
        image: Mapping[str, Any] | None = None,
        link: Mapping[str, Any] | None = None,
        miniprogram: Mapping[str, Any] | None = None,
        file: Mapping[str, Any] | None = None,
        video: Mapping[str, Any] | None = None,
        agentid: int | None = None,
        notify: Literal[0, 1] | None = None,
    ) -> TemplateIdResponse:
        """Create a group welcome template (≤100 per corp); returns ``template_id``."""
        body = _compact(
            text=None if text is None else {"content": text},
            image=image,
            link=link,
            miniprogram=miniprogram,
            file=file,
            video=video,
            agentid=agentid,
            notify=notify,
        )
        # Reference: Doc 92366
        return self._post(TemplateIdResponse, "externalcontact/group_welcome_template/add", body)

    def edit_group_welcome_template(
        self,
        *,
        template_id: str,
        text: str | None = None,
        image: Mapping[str, Any] | None = None,
        link: Mapping[str, Any] | None = None,
        miniprogram: Mapping[str, Any] | None = None,
        file: Mapping[str, Any] | None = None,
        video: Mapping[str, Any] | None = None,
        agentid: int | None = None,
    ) -> WeComResponse:
        """Replace a template's content (only templates this app created)."""
        body = _compact(
            template_id=template_id,
            text=None if text is None else {"content": text},
            image=image,
            link=link,
            miniprogram=miniprogram,
            file=file,
            video=video,
            agentid=agentid,
        )
        # Reference: Doc 92366
        return self._post(WeComResponse, "externalcontact/group_welcome_template/edit", body)

    def get_group_welcome_template(self, template_id: str) -> GroupWelcomeTemplateResponse:
        # Reference: Doc 92366
        return self._post(
            GroupWelcomeTemplateResponse,
            "externalcontact/group_welcome_template/get",
            {"template_id": template_id},
        )

    def del_group_welcome_template(self, template_id: str, *, agentid: int | None = None) -> WeComResponse:
        body = _compact(template_id=template_id, agentid=agentid)
        # Reference: Doc 92366
        return self._post(WeComResponse, "externalcontact/group_welcome_template/del", body)

    # ------------------------------------------------------------------ customer groups

    def iter_groupchats(
        self,
        *,
        status_filter: Literal[0, 1, 2, 3] = 0,
        owner_userids: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> Iterator[GroupChatListPage]:
        """Pages of (chat_id, status). Without ``owner_userids`` (≤100) and >1,000 visible owners
        WeCom answers 81017: page by owner instead."""
        body = _compact(status_filter=status_filter, owner_filter=_owner_filter(owner_userids), limit=limit)
        # Reference: Doc 92120
        return self._pages(GroupChatListPage, "POST", "externalcontact/groupchat/list", body)

    def get_groupchat(self, chat_id: str, *, need_name: bool = False) -> GroupChatResponse:
        """A group with members (incl. the ``state`` of the join way used) and ``member_version``."""
        body = {"chat_id": chat_id, "need_name": int(need_name)}
        # Reference: Doc 92122
        return self._post(GroupChatResponse, "externalcontact/groupchat/get", body)

    def groupchat_statistic(
        self,
        *,
        day_begin_time: int,
        day_end_time: int | None = None,
        owner_userids: Sequence[str] | None = None,
        order_by: int | None = None,
        order_asc: Literal[0, 1] | None = None,
        offset: int = 0,
        limit: int = 500,
    ) -> GroupChatStatisticResponse:
        """Daily group figures aggregated by owner (offset paging: ``next_offset``)."""
        body = _compact(
            day_begin_time=day_begin_time,
            day_end_time=day_end_time,
            owner_filter=_owner_filter(owner_userids),
            order_by=order_by,
            order_asc=order_asc,
            offset=offset,
            limit=limit,
        )
        # Reference: Doc 92133
        return self._post(GroupChatStatisticResponse, "externalcontact/groupchat/statistic", body)

    def groupchat_statistic_by_day(
        self, *, day_begin_time: int, day_end_time: int | None = None, owner_userids: Sequence[str] = ()
    ) -> GroupChatStatisticResponse:
        """Daily group figures aggregated by day for the given owners."""
        body = _compact(
            day_begin_time=day_begin_time,
            day_end_time=day_end_time,
            owner_filter=_owner_filter(owner_userids),
        )
        # Reference: Doc 92133
        return self._post(
            GroupChatStatisticResponse, "externalcontact/groupchat/statistic_group_by_day", body
        )

    # ------------------------------------------------------------------ group join ways

    def add_join_way(
        self,
        *,
        scene: Literal[1, 2],
        chat_id_list: Sequence[str],
        remark: str | None = None,
        auto_create_room: Literal[0, 1] | None = None,
        room_base_name: str | None = None,
        room_base_id: int | None = None,
        state: str | None = None,
    ) -> ConfigIdResponse:
        """A group QR code / mini-program join way over ≤5 groups; returns ``config_id``."""
        body = _compact(
            scene=scene,
            remark=remark,
            auto_create_room=auto_create_room,
            room_base_name=room_base_name,
            room_base_id=room_base_id,
            chat_id_list=list(chat_id_list),
            state=state,
        )
        # Reference: Doc 92229
        return self._post(ConfigIdResponse, "externalcontact/groupchat/add_join_way", body)

    def get_join_way(self, config_id: str) -> JoinWayResponse:
        """A join way with its ``qr_code``."""
        # Reference: Doc 92229
        return self._post(JoinWayResponse, "externalcontact/groupchat/get_join_way", {"config_id": config_id})

    def update_join_way(
        self,
        *,
        config_id: str,
        scene: Literal[1, 2],
        chat_id_list: Sequence[str],
        remark: str | None = None,
        auto_create_room: Literal[0, 1] | None = None,
        room_base_name: str | None = None,
        room_base_id: int | None = None,
        state: str | None = None,
    ) -> WeComResponse:
        """Replace a join way's settings (WeCom overwrites the whole way)."""
        body = _compact(
            config_id=config_id,
            scene=scene,
            remark=remark,
            auto_create_room=auto_create_room,
            room_base_name=room_base_name,
            room_base_id=room_base_id,
            chat_id_list=list(chat_id_list),
            state=state,
        )
        # Reference: Doc 92229
        return self._post(WeComResponse, "externalcontact/groupchat/update_join_way", body)

    def del_join_way(self, config_id: str) -> WeComResponse:
        # Reference: Doc 92229
        return self._post(WeComResponse, "externalcontact/groupchat/del_join_way", {"config_id": config_id})

    # ------------------------------------------------------------------ mass messages

    def add_msg_template(
        self,
        *,
        chat_type: Literal["single", "group"] = "single",
        external_userid: Sequence[str] | None = None,
        chat_id_list: Sequence[str] | None = None,
        sender: str | None = None,
        tag_filter: Mapping[str, Any] | None = None,
        allow_select: bool | None = None,
        text: str | None = None,
        attachments: Sequence[Mapping[str, Any]] = (),
    ) -> AddMsgTemplateResponse:
        """Create a mass message; nothing is sent until the member confirms it in the WeCom client.
        Returns ``msgid`` and ``fail_list``."""
        body = _compact(
            chat_type=chat_type,
            external_userid=_listed(external_userid),
            chat_id_list=_listed(chat_id_list),
            tag_filter=tag_filter,
            sender=sender,
            allow_select=allow_select,
            text=None if text is None else {"content": text},
            attachments=[dict(item) for item in attachments] or None,
        )
        # Reference: Doc 92135
        return self._post(AddMsgTemplateResponse, "externalcontact/add_msg_template", body)

    def iter_groupmsg_list(
        self,
        *,
        chat_type: Literal["single", "group"],
        start_time: int,
        end_time: int,
        creator: str | None = None,
        filter_type: Literal[0, 1, 2] | None = None,
        limit: int = 100,
    ) -> Iterator[GroupMsgListPage]:
        """Pages of mass messages created between start and end (≤1 month apart)."""
        body = _compact(
            chat_type=chat_type,
            start_time=start_time,
            end_time=end_time,
            creator=creator,
            filter_type=filter_type,
            limit=limit,
        )
        # Reference: Doc 93338
        return self._pages(GroupMsgListPage, "POST", "externalcontact/get_groupmsg_list_v2", body)

    def iter_groupmsg_task(self, msgid: str, *, limit: int = 1000) -> Iterator[GroupMsgTaskPage]:
        """Pages of per-sender status (0 not sent, 2 sent)."""
        # Reference: Doc 93338
        return self._pages(
            GroupMsgTaskPage, "POST", "externalcontact/get_groupmsg_task", {"msgid": msgid, "limit": limit}
        )

    def iter_groupmsg_send_result(
        self, msgid: str, userid: str, *, limit: int = 1000
    ) -> Iterator[GroupMsgSendResultPage]:
        """Pages of per-customer status of one sender; 41063 right after creation (still
        distributing) is a TransientError."""
        body = {"msgid": msgid, "userid": userid, "limit": limit}
        # Reference: Doc 93338
        return self._pages(GroupMsgSendResultPage, "POST", "externalcontact/get_groupmsg_send_result", body)

    def remind_groupmsg_send(self, msgid: str) -> WeComResponse:
        """Remind the members to confirm a mass message (≤3 times per message per 24 h)."""
        # Reference: Doc 97610
        return self._post(WeComResponse, "externalcontact/remind_groupmsg_send", {"msgid": msgid})

    def cancel_groupmsg_send(self, msgid: str) -> WeComResponse:
        """Stop a mass message the members have not sent yet."""
        # Reference: Doc 97611
        return self._post(WeComResponse, "externalcontact/cancel_groupmsg_send", {"msgid": msgid})

    # ------------------------------------------------------------------ succession (on-job, resigned)

    def transfer_customer(
        self,
        *,
        handover_userid: str,
        takeover_userid: str,
        external_userid: Sequence[str],
        transfer_success_msg: str | None = None,
    ) -> TransferCustomerResponse:
        """Start an on-job transfer of ≤100 customers; per-customer errcode 0 means *started*."""
        body = _compact(
            handover_userid=handover_userid,
            takeover_userid=takeover_userid,
            external_userid=list(external_userid),
            transfer_success_msg=transfer_success_msg,
        )
        # Reference: Doc 92125
        return self._post(TransferCustomerResponse, "externalcontact/transfer_customer", body)

    def iter_transfer_result(
        self, *, handover_userid: str, takeover_userid: str
    ) -> Iterator[TransferResultPage]:
        """Pages of on-job transfer status (1 done, 2 waiting, 3 refused, 4 takeover at its cap)."""
        body = {"handover_userid": handover_userid, "takeover_userid": takeover_userid}
        # Reference: Doc 94088
        return self._pages(TransferResultPage, "POST", "externalcontact/transfer_result", body)

    def resigned_transfer_customer(
        self, *, handover_userid: str, takeover_userid: str, external_userid: Sequence[str]
    ) -> TransferCustomerResponse:
        """Assign ≤100 customers of a resigned member."""
        body = {
            "handover_userid": handover_userid,
            "takeover_userid": takeover_userid,
            "external_userid": list(external_userid),
        }
        # Reference: Doc 94081
        return self._post(TransferCustomerResponse, "externalcontact/resigned/transfer_customer", body)

    def iter_resigned_transfer_result(
        self, *, handover_userid: str, takeover_userid: str
    ) -> Iterator[TransferResultPage]:
        """Pages of resigned-transfer status (1 done, 2 waiting, 3 refused, 4 takeover at its cap)."""
        body = {"handover_userid": handover_userid, "takeover_userid": takeover_userid}
        # Reference: Doc 94082
        return self._pages(TransferResultPage, "POST", "externalcontact/resigned/transfer_result", body)

    def iter_unassigned_list(self, *, page_size: int = 1000) -> Iterator[UnassignedListPage]:
        """Pages of resigned members' customers waiting to be assigned."""
        # Reference: Doc 92124
        return self._pages(
            UnassignedListPage, "POST", "externalcontact/get_unassigned_list", {"page_size": page_size}
        )

    def transfer_groupchat(self, *, chat_id_list: Sequence[str], new_owner: str) -> GroupChatTransferResponse:
        """Give 1–100 groups of resigned owners a new owner (300 a day)."""
        body = {"chat_id_list": list(chat_id_list), "new_owner": new_owner}
        # Reference: Doc 92127
        return self._post(GroupChatTransferResponse, "externalcontact/groupchat/transfer", body)

    def onjob_transfer_groupchat(
        self, *, chat_id_list: Sequence[str], new_owner: str
    ) -> GroupChatTransferResponse:
        """Give 1–100 groups of on-job owners a new owner (300 a day, each group twice per 90 days)."""
        body = {"chat_id_list": list(chat_id_list), "new_owner": new_owner}
        # Reference: Doc 95703
        return self._post(GroupChatTransferResponse, "externalcontact/groupchat/onjob_transfer", body)
