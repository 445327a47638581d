from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from scrm.tenancy.selectors import membership_list


def current_corp(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    return {
        "current_membership": membership,
        "current_corp": membership.corp if membership else None,
        # Lazily evaluated by the template only where the switcher is drawn.
        "my_memberships": lambda: list(membership_list(user=request.user)),
    }
