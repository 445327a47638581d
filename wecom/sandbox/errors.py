"""WeCom error codes and errmsg text in WeCom's style (English message, hint, caller IP, doc link)."""

from __future__ import annotations

# Doc 90313 (全局错误码). Messages follow WeCom's English errmsg wording where known.
ERRMSG: dict[int, str] = {
    -1: "system busy",
    0: "ok",
    40001: "invalid credential",
    40003: "invalid userid",
    40004: "invalid media type",
    40005: "invalid file type",
    40006: "invalid file size",
    40007: "invalid media_id",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40050: "invalid chatid",
    40057: "invalid callback url",
    40058: "invalid Request Parameter",
    40068: "invalid tagid",
    40071: "tag name already exists",
    40072: "invalid tag name length",
    40096: "invalid external userid",
    40097: "user not resigned",
    40098: "user not verified",
    40099: "external contact count reach limit",
    40126: "corp tag count reach limit",
    40128: "customer transfer too frequent",
    40129: "customer is being transferred",
    41001: "access_token missing",
    41002: "corpid missing",
    41004: "corpsecret missing",
    41009: "missing userid",
    41048: "no external contact to send",
    41050: "invalid welcome code",
    41051: "external contact already received welcome msg or already chatted",
    41054: "user not active",
    41055: "group welcome template count reach limit",
    41063: "msg is being distributed, please try again later",
    41096: "welcome msg is being sent by another app",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    44001: "empty media data",
    45002: "content size out of limit",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
    47001: "data format error",
    48002: "api forbidden",
    60003: "department not found",
    60011: "no privilege to access/modify contact/party/agent",
    60111: "userid not found",
    81011: "no privilege to modify tag",
    81017: "owner_filter is required when too many owners",
    84061: "not external contact",
    84074: "no external contact privilege",
    90500: "group owner not resigned",
    90501: "not a customer group",
}


class ApiError(Exception):
    """Raised by a simulated API; the dispatcher turns it into {errcode, errmsg}."""

    def __init__(self, errcode: int, detail: str = "") -> None:
        self.errcode = errcode
        self.detail = detail
        super().__init__(f"{errcode} {detail}".strip())

    def base_message(self) -> str:
        base = ERRMSG.get(self.errcode, "error")
        return f"{base}: {self.detail}" if self.detail else base


def format_errmsg(errcode: int, message: str, *, hint: str, ip: str) -> str:
    return (
        f"{message}, hint: [{hint}], from ip: {ip}, "
        f"more info at https://open.work.weixin.qq.com/devtool/query?e={errcode}"
    )
