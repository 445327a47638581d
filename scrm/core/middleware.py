from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from scrm.core.context import corp_var, request_id_var

# Accept an upstream proxy's id only when it looks like one; never echo arbitrary header content.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        corp_token = corp_var.set("-")
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
            corp_var.reset(corp_token)
        response["X-Request-ID"] = request_id
        return response
