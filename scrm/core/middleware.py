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


# The dashboard loads only its own scripts (htmx, Chart.js, app.js are served locally): no inline script,
# no eval. Inline styles stay allowed for the few style="" attributes and htmx's indicator styles; images
# may come from WeCom (customer avatars, QR codes), which serves them over http and https.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob: https: http:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class SecurityHeadersMiddleware:
    """Adds the Content-Security-Policy (Django's SecurityMiddleware covers HSTS, nosniff, Referrer-Policy
    and COOP; XFrameOptionsMiddleware covers X-Frame-Options) and refuses NUL characters in the query
    string, which Postgres can't store or compare: a filter with one would otherwise end in a server error.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if any("\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()):
            response = HttpResponse(
                "Request refused: the address contains a NUL character.",
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        else:
            response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
