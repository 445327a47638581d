"""Dashboard pages for customers: the filtered list, CSV export, one customer, members, duplicates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, QueryDict
from django.shortcuts import render
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from scrm.customers import selectors
from scrm.customers.exports import customer_csv_response
from scrm.customers.models import Customer, FollowStatus
from scrm.customers.selectors import CustomerFilter, FilterError
from scrm.groups.selectors import groups_of_customer
from scrm.tenancy.models import Role
from scrm.tenancy.permissions import corp_view

PAGE_SIZE = 25
# The filter's `status` values as operators read them (see CustomerFilter.status).
STATUS_CHOICES = [
    ("active", _("Friends with a member")),
    ("lost", _("Lost: no member left")),
    ("all", _("Any status")),
    *[
        (value, format_lazy(_("Has a follow: {status}"), status=label))
        for value, label in FollowStatus.choices
        if value != FollowStatus.ACTIVE
    ],
]
TIMELINE_PAGE_SIZE = 50


def _page(
    request: HttpRequest, object_list: QuerySet[Any] | Sequence[Any], per_page: int = PAGE_SIZE
) -> Page[Any]:
    paginator: Paginator[Any] = Paginator(object_list, per_page)
    return paginator.get_page(request.GET.get("page"))


def _without_page(query: QueryDict) -> str:
    """The query string of the current filter, without the page: for export, bulk actions and paging."""
    params = query.copy()
    params.pop("page", None)
    return params.urlencode()


@require_safe
@corp_view()
def customer_list(request: HttpRequest) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    error = ""
    try:
        filters = CustomerFilter.from_params(request.GET)
    except FilterError as exc:
        error, filters = str(exc), CustomerFilter()
    page = _page(request, selectors.customer_list(corp=corp, filters=filters) if not error else [])
    return render(
        request,
        "customers/list.html",
        {
            "page": page,
            "rows": selectors.customer_rows(corp=corp, customers=list(page.object_list)),
            "filters": filters,
            "filter_error": error,
            "filter_querystring": _without_page(request.GET),
            "tag_groups": selectors.tag_groups_for_picker(corp=corp),
            "members": selectors.members_for_picker(corp=corp),
            "statuses": STATUS_CHOICES,
            "has_tag_filter": bool(filters.tags_all or filters.tags_any or filters.tags_none),
            "tag_modes": [
                ("tags_all", _("Has all of (AND)"), filters.tags_all),
                ("tags_any", _("Has any of (OR)"), filters.tags_any),
                ("tags_none", _("Has none of (NOT)"), filters.tags_none),
            ],
        },
    )


@require_safe
@corp_view(Role.OPERATOR)
def customer_export(request: HttpRequest) -> HttpResponseBase:
    """All pages of the current filter as CSV, streamed. Operators and up: it is the whole list at once."""
    try:
        filters = CustomerFilter.from_params(request.GET)
    except FilterError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    return customer_csv_response(corp=request.corp, filters=filters)  # type: ignore[attr-defined]


@require_safe
@corp_view()
def customer_detail(request: HttpRequest, customer_pk: int) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    try:
        customer = selectors.customer_get(corp=corp, pk=customer_pk)
    except Customer.DoesNotExist as exc:
        raise Http404 from exc
    timeline = _page(request, selectors.customer_timeline(corp=corp, customer=customer), TIMELINE_PAGE_SIZE)
    return render(
        request,
        "customers/detail.html",
        {
            "customer": customer,
            "follows": selectors.customer_follows(corp=corp, customer=customer),
            "tag_groups": selectors.tag_groups_for_picker(corp=corp),  # for the per-follow tag controls
            "group_memberships": groups_of_customer(corp=corp, customer=customer),
            "timeline": timeline,
            "timeline_entries": [(e, selectors.timeline_label(e.kind)) for e in timeline.object_list],
        },
    )


@require_safe
@corp_view()
def member_list(request: HttpRequest) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    return render(request, "customers/members.html", {"members": selectors.member_list(corp=corp)})


@require_safe
@corp_view()
def customer_duplicates(request: HttpRequest) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    page = _page(request, selectors.customer_duplicates(corp=corp))
    return render(
        request,
        "customers/duplicates.html",
        {"page": page, "rows": selectors.customer_rows(corp=corp, customers=list(page.object_list))},
    )
