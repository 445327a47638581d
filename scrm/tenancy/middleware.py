from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from scrm.core.context import corp_var
from scrm.tenancy.selectors import membership_get

SESSION_CORP_KEY = "corp_pk"


class CurrentCorpMiddleware:
    """Resolves the current corp once per request: `request.membership` and `request.corp`.

    The corp comes from the session (set by the corp switcher) and is only ever one the user belongs to;
    views never take a corp from the URL or the form.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        membership = None
        if request.user.is_authenticated:
            raw = request.session.get(SESSION_CORP_KEY)
            membership = membership_get(user=request.user, corp_pk=raw if isinstance(raw, int) else None)
            if membership is not None:
                request.session[SESSION_CORP_KEY] = membership.corp_id
                corp_var.set(membership.corp.corp_id)
        request.membership = membership  # type: ignore[attr-defined]
        request.corp = membership.corp if membership else None  # type: ignore[attr-defined]
        return self.get_response(request)
