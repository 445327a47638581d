"""The full sync in the dashboard: a start button (admins), a progress partial polled by htmx, a history."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from scrm.core.wecom import wecom_lang
from scrm.sync.models import SyncRun
from scrm.sync.selectors import sync_progress_get, sync_run_error, sync_run_list, sync_run_percent
from scrm.sync.services import full_sync_start
from scrm.tenancy.models import Role
from scrm.tenancy.permissions import corp_view


def _safe_next(request: HttpRequest, target: str) -> str:
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse("sync:history")


def progress_context(request: HttpRequest, next_url: str) -> dict[str, Any]:
    """What sync/_progress.html needs; shared with the {% sync_progress %} tag."""
    membership = getattr(request, "membership", None)
    return {
        "progress": sync_progress_get(corp=request.corp, lang=wecom_lang()),  # type: ignore[attr-defined]
        "can_start": bool(membership and membership.has_role(Role.ADMIN)),
        "sync_next": next_url,
    }


@require_POST
@corp_view(Role.ADMIN)
def sync_start(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, request.POST.get("next", ""))
    _run, created = full_sync_start(
        corp=request.corp,  # type: ignore[attr-defined]
        trigger=SyncRun.Trigger.MANUAL,
        user=cast(User, request.user),
    )
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "sync/_progress.html", progress_context(request, next_url))
    if created:
        messages.success(request, _("Full sync started. The progress bar shows how far it is."))
    else:
        messages.info(request, _("A full sync is already running for this corp."))
    return redirect(next_url)


@require_GET
@corp_view()
def sync_progress(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, request.GET.get("next", ""))
    return render(request, "sync/_progress.html", progress_context(request, next_url))


@require_GET
@corp_view()
def sync_history(request: HttpRequest) -> HttpResponse:
    lang = wecom_lang()
    runs = [
        {"run": run, "percent": sync_run_percent(run=run), "error": sync_run_error(run=run, lang=lang)}
        for run in sync_run_list(corp=request.corp)  # type: ignore[attr-defined]
    ]
    return render(
        request,
        "sync/history.html",
        {**progress_context(request, request.get_full_path()), "runs": runs},
    )
