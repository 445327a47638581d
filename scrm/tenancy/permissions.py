"""Every view declares who may use it. The URL walk in tests/ reads these marks to check every view.

- `corp_view(role)`: signed in, a member of the current corp with at least `role`.
- `user_view`: signed in; no corp needed (onboarding a first corp, password change, corp switch).
- `public_view`: anyone (login, health check, WeCom callbacks authenticated by signature).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import redirect

from scrm.tenancy.models import Membership, Role

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponseBase])


def corp_view(role: str = Role.VIEWER) -> Callable[[ViewFunc], ViewFunc]:
    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership: Membership | None = getattr(request, "membership", None)
            if membership is None:
                return redirect("tenancy:onboarding")
            if not membership.has_role(role):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapped.corp_role = role  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def user_view(view: ViewFunc) -> ViewFunc:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    wrapped.user_view = True  # type: ignore[attr-defined]
    return wrapped  # type: ignore[return-value]


def public_view(view: ViewFunc) -> ViewFunc:
    view.public_view = True  # type: ignore[attr-defined]
    return view
