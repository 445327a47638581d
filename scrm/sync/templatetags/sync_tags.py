from __future__ import annotations

from typing import Any

from django import template

from scrm.sync.views import progress_context

register = template.Library()


@register.inclusion_tag("sync/_progress.html", takes_context=True)
def sync_progress(context: template.Context) -> dict[str, Any]:
    """The sync progress block for any corp page (overview, corp settings); polls while a run is active."""
    request = context["request"]
    if getattr(request, "corp", None) is None:
        return {"progress": None, "can_start": False, "sync_next": ""}
    return {**progress_context(request, request.get_full_path()), "csrf_token": context.get("csrf_token")}
