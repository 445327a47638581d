"""The event inbox page: every stored callback with its status and error; admins can replay one."""

from __future__ import annotations

import typing

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from scrm.callbacks.apply import inbox_replay
from scrm.callbacks.models import InboxEvent, InboxStatus
from scrm.tenancy.models import Corp, Role
from scrm.tenancy.permissions import corp_view
from wecom import events as ev

PAGE_SIZE = 50
# Every kind the parser knows, for the filter; stored rows may also say "unknown".
KNOWN_KINDS = sorted({cls.kind for cls in typing.get_args(ev.Event)})


def inbox_list(*, corp: Corp, status: str = "", kind: str = "") -> QuerySet[InboxEvent]:
    """The corp's inbox, newest first (served by the corp + received_at index)."""
    qs = InboxEvent.objects.filter(corp=corp)
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("-received_at", "-pk")


def _clean(request: HttpRequest) -> tuple[str, str]:
    status = request.GET.get("status", "")
    kind = request.GET.get("kind", "")[:100]
    return (status if status in InboxStatus.values else ""), kind


@require_safe
@corp_view()
def inbox(request: HttpRequest) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    status, kind = _clean(request)
    paginator: Paginator[InboxEvent] = Paginator(
        inbox_list(corp=corp, status=status, kind=kind).defer("payload"), PAGE_SIZE
    )
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "callbacks/inbox.html",
        {
            "page": page,
            "status": status,
            "kind": kind,
            "statuses": InboxStatus.choices,
            "kinds": KNOWN_KINDS,
            "can_replay": request.membership.has_role(Role.ADMIN),  # type: ignore[attr-defined]
        },
    )


@require_POST
@corp_view(Role.ADMIN)
def inbox_event_replay(request: HttpRequest, event_pk: int) -> HttpResponse:
    try:
        inbox_replay(corp=request.corp, event_id=event_pk)  # type: ignore[attr-defined]
    except InboxEvent.DoesNotExist as exc:
        raise Http404 from exc
    messages.success(request, _("Event #%(id)s will be applied again.") % {"id": event_pk})
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = reverse("callbacks:inbox")
    return redirect(target)
