"""Plain-language explanations of WeCom failures, for the dashboard (zh-Hans first, English too).

Keys are WeCom errcodes (API.md §5, Doc 90313) or our own names for failures that carry no errcode.
"""

from __future__ import annotations

# errcode (or local key) -> (zh-Hans, English)
MESSAGES: dict[int | str, tuple[str, str]] = {
    -1: (
        "企业微信系统繁忙，系统会稍后自动重试。",
        "WeCom is busy right now; we will retry shortly.",
    ),
    40001: (
        "应用 Secret 不正确，请管理员在企业设置中核对并重新填写。",
        "The app secret is wrong. An admin needs to check it and enter it again in the corp settings.",
    ),
    40013: (
        "企业 ID（CorpID）不正确，请管理员在企业设置中核对。",
        "The Corp ID is wrong. An admin needs to check it in the corp settings.",
    ),
    40014: (
        "访问凭证无效，系统已自动刷新凭证；如果反复出现，请管理员检查应用 Secret 是否被重置。",
        "The access token was rejected and has been refreshed. If this keeps happening, "
        "an admin should check whether the app secret was reset.",
    ),
    42001: (
        "访问凭证已过期，系统已自动刷新凭证；如果反复出现，请管理员检查应用 Secret 是否被重置。",
        "The access token had expired and has been refreshed. If this keeps happening, "
        "an admin should check whether the app secret was reset.",
    ),
    41001: (
        "请求缺少访问凭证。这是本系统的问题，已记录，请联系技术支持。",
        "The request carried no access token. This is a fault on our side; it has been logged, "
        "please contact support.",
    ),
    40003: (
        "成员账号（UserID）无效，或该成员不在应用的可见范围内，请管理员检查。",
        "The member's UserID is invalid or outside the app's visible range. An admin needs to check.",
    ),
    60011: (
        "该成员或部门不在应用的可见范围内，请管理员调整应用的可见范围。",
        "This member or department is outside the app's visible range. An admin needs to widen it.",
    ),
    81013: (
        "指定的成员、部门或标签都无效，或都不在应用的可见范围内，请管理员检查。",
        "None of the given members, departments or tags are valid or visible to the app. "
        "An admin needs to check.",
    ),
    40068: (
        "标签不存在或已被删除，系统将重新同步企业标签。",
        "The tag no longer exists; the corp's tags will be synced again.",
    ),
    40096: (
        "客户 ID 无效，该客户可能已不存在。",
        "The customer ID is invalid; the customer may no longer exist.",
    ),
    40098: (
        "成员尚未完成实名认证，不能使用客户联系功能，请管理员提醒该成员完成认证。",
        "The member has not completed real-name verification and cannot use customer contact. "
        "An admin should ask them to verify.",
    ),
    40099: (
        "成员的客户数量已达上限，请管理员处理（例如分配部分客户给其他成员）。",
        "The member has reached the maximum number of customers. An admin needs to act, "
        "for example by reassigning some customers.",
    ),
    41048: (
        "没有可以发送的客户。",
        "There are no customers to send to.",
    ),
    41050: (
        "欢迎语发送码已失效（超过 20 秒或无效），这次没有发送欢迎语。",
        "The welcome code had expired (past the 20-second window) or was invalid; "
        "no welcome message was sent.",
    ),
    41051: (
        "该客户已经收到欢迎语，或已与成员聊过天，不再发送。",
        "The customer already received a welcome message or has already chatted with the member; "
        "nothing more is sent.",
    ),
    41063: (
        "群发消息仍在分发中，系统会稍后再查询结果。",
        "The mass message is still being distributed; results will be checked again later.",
    ),
    41096: (
        "另一个应用正在给该客户发送欢迎语，系统会在 20 秒窗口内重试。",
        "Another app is sending a welcome message to this customer; we retry within the 20-second window.",
    ),
    45009: (
        "调用频率超过企业微信的限制，已暂停调用该接口，当前时间窗口结束后自动恢复。",
        "Calls exceeded WeCom's frequency limit; this API is paused until the current window ends.",
    ),
    45033: (
        "同时进行的调用过多，系统已自动降低并发并会重试。",
        "Too many concurrent calls; concurrency has been lowered and the call will be retried.",
    ),
    48002: (
        "应用没有调用该接口的权限，请管理员在「客户联系 → 可调用接口的应用」中添加本应用。",
        "The app is not allowed to call this API. An admin needs to add it under "
        "Customer Contact → Apps that can call the API.",
    ),
    84074: (
        "应用没有客户联系的权限，请管理员在企业微信后台为应用开通客户联系权限。",
        "The app has no customer-contact permission. An admin needs to grant it in the WeCom admin console.",
    ),
    301002: (
        "无权操作指定的应用，请管理员检查应用配置。",
        "Not allowed to operate on this app. An admin needs to check the app configuration.",
    ),
    60020: (
        "服务器 IP 不在应用的企业可信 IP 列表中，请管理员在应用设置中添加本系统的服务器 IP。",
        "The server's IP is not in the app's trusted IP list. An admin needs to add our server IPs "
        "in the app settings.",
    ),
    81017: (
        "可见的群主过多，需要按群主分批查询客户群，系统会自动分批处理。",
        "Too many group owners are visible; customer groups must be listed owner by owner, "
        "which is done automatically.",
    ),
    84061: (
        "成员与该客户之间没有好友关系。",
        "The member and this customer are not connected.",
    ),
    90500: (
        "群主尚未离职，不能分配其客户群。",
        "The group owner has not resigned, so the group cannot be reassigned.",
    ),
    90501: (
        "该群不是客户群。",
        "This is not a customer group.",
    ),
    # Failures that carry no errcode.
    "timeout": (
        "连接企业微信超时，系统会稍后自动重试。",
        "WeCom did not answer in time; we will retry shortly.",
    ),
    "network": (
        "无法连接企业微信，系统会稍后自动重试。",
        "Could not reach WeCom; we will retry shortly.",
    ),
    "http_status": (
        "企业微信返回了异常的 HTTP 状态，系统会记录并视情况重试。",
        "WeCom answered with an unexpected HTTP status; it has been logged and may be retried.",
    ),
    "bad_response": (
        "企业微信返回了无法识别的内容，系统会稍后自动重试。",
        "WeCom answered with something we could not read; we will retry shortly.",
    ),
    "rate_limited_local": (
        "本时间窗口内该接口的调用额度已用完，系统会在窗口结束后继续。",
        "This API's call budget for the current window is used up; work resumes when the window ends.",
    ),
    "concurrency_local": (
        "该接口同时进行的调用已达上限，系统会稍后继续。",
        "This API already has as many calls in flight as allowed; work resumes shortly.",
    ),
    "token_wait": (
        "正在获取企业微信访问凭证，等待超时，系统会稍后自动重试。",
        "Timed out waiting for a WeCom access token; we will retry shortly.",
    ),
}

_UNKNOWN = ("企业微信返回了错误（错误码 {code}）。", "WeCom returned an error (code {code}).")


def message_for(code: int | str | None, lang: str = "zh-hans") -> str:
    """The plain-language message for an errcode (or local failure key) in zh-Hans or English.

    Any ``lang`` starting with "zh" gives Chinese; anything else gives English.
    """
    index = 0 if lang.lower().startswith("zh") else 1
    if code is None:
        code = "network"
    entry = MESSAGES.get(code)
    if entry is None:
        return _UNKNOWN[index].format(code=code)
    return entry[index]
