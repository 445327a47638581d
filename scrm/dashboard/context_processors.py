from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from scrm.dashboard.navigation import resolve_sections
from scrm.tenancy.models import Role


def navigation(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    if membership is None:
        return {"nav_sections": []}
    return {
        "nav_sections": resolve_sections(is_admin=membership.has_role(Role.ADMIN), current_path=request.path)
    }
