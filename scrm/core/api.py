from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from scrm.tenancy.models import Role


class IsCorpMember(BasePermission):
    """API access needs a membership in the current corp; writes need `required_role` on the view."""

    message = "You need a membership in a corp to use the API."

    def has_permission(self, request: Request, view: Any) -> bool:
        membership = getattr(request._request, "membership", None)
        if not request.user.is_authenticated:
            return False
        if membership is None and request.auth is not None:
            # Token auth happens after the middleware ran: resolve the corp for the token's user now.
            from scrm.tenancy.selectors import membership_get

            membership = membership_get(user=request.user, corp_pk=None)
            request._request.membership = membership  # type: ignore[attr-defined]
            request._request.corp = membership.corp if membership else None  # type: ignore[attr-defined]
        if membership is None:
            return False
        role = getattr(view, "required_role", Role.VIEWER)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            role = getattr(view, "write_role", Role.OPERATOR)
        return bool(membership.has_role(role))
