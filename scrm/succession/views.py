"""Succession pages: leavers and handovers, the handover wizard, a handover's progress, de-duplication."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from scrm.core.wecom import wecom_lang
from scrm.customers.models import Customer, Member
from scrm.succession import selectors, services
from scrm.succession.forms import DedupForm, HandoverForm, OnjobStartForm
from scrm.succession.models import Handover, HandoverItem, ItemStatus
from scrm.tenancy.models import Role
from scrm.tenancy.permissions import corp_view
from wecom.messages import message_for

PAGE_SIZE = 25
ITEMS_PAGE_SIZE = 50
# Status colours of the outcome chart (same order as ItemStatus).
COLOURS = {
    ItemStatus.PENDING: "#9aa5b1",
    ItemStatus.REQUESTING: "#5b8def",
    ItemStatus.WAITING: "#e0a526",
    ItemStatus.DONE: "#1f7a4d",
    ItemStatus.REFUSED: "#c0362c",
    ItemStatus.OVER_CAP: "#8e44ad",
    ItemStatus.GUARDED: "#d35400",
    ItemStatus.SKIPPED: "#7f8c8d",
    ItemStatus.FAILED: "#7b241c",
    ItemStatus.CANCELLED: "#bdc3c7",
}


def _member(request: HttpRequest, pk: Any) -> Member:
    corp = request.corp  # type: ignore[attr-defined]
    try:
        return Member.objects.get(corp=corp, pk=int(pk))
    except (Member.DoesNotExist, TypeError, ValueError) as exc:
        raise Http404 from exc


def _handover(request: HttpRequest, pk: int) -> Handover:
    try:
        return selectors.handover_get(corp=request.corp, pk=pk)  # type: ignore[attr-defined]
    except Handover.DoesNotExist as exc:
        raise Http404 from exc


@require_safe
@corp_view(Role.ADMIN)
def succession_list(request: HttpRequest) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    page = Paginator(selectors.handover_list(corp=corp), PAGE_SIZE).get_page(request.GET.get("page"))
    handovers = list(page.object_list)
    progress = selectors.handovers_progress(corp=corp, handovers=handovers)
    leavers = list(selectors.leavers(corp=corp))
    return render(
        request,
        "succession/list.html",
        {
            "leavers": leavers,
            "page": page,
            "rows": [(h, progress[h.pk]) for h in handovers],
            "onjob_form": OnjobStartForm(corp=corp),
        },
    )


@require_POST
@corp_view(Role.ADMIN)
def unassigned_refresh(request: HttpRequest) -> HttpResponse:
    services.leaver_noted(corp=request.corp)  # type: ignore[attr-defined]
    messages.success(
        request, _("Reading WeCom's list of customers waiting for a successor. Reload in a minute.")
    )
    return redirect("succession:list")


@require_http_methods(["GET", "POST"])
@corp_view(Role.ADMIN)
def handover_new(request: HttpRequest, kind: str) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    if kind not in Handover.Kind.values:
        raise Http404
    member = _member(request, request.GET.get("member") or request.POST.get("member"))
    form = HandoverForm(
        request.POST or None, corp=corp, member=member, kind=kind, initial={"rule": Handover.Rule.MEMBER}
    )
    plan = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        args: dict[str, Any] = {
            "corp": corp,
            "kind": kind,
            "member": member,
            "rule": data["rule"],
            "takeover": data.get("takeover"),
            "candidates": list(data.get("candidates") or []),
            "include_customers": data["include_customers"],
            "include_groups": data["include_groups"],
        }
        try:
            if request.POST.get("action") == "confirm":
                handover = services.handover_create(
                    **args, transfer_success_msg=data.get("transfer_success_msg") or "", user=request.user
                )
                messages.success(request, _("Hand-over started."))
                return redirect("succession:detail", handover_pk=handover.pk)
            plan = services.handover_plan(**args)
        except ValidationError as exc:
            form.add_error(None, exc)
    return render(
        request,
        "succession/new.html",
        {
            "form": form,
            "member": member,
            "kind": kind,
            "kind_label": Handover.Kind(kind).label,
            "plan": plan,
            "preview": _preview(plan) if plan is not None else None,
        },
    )


def _preview(plan: services.Plan) -> dict[str, Any]:
    C, G = HandoverItem.Target.CUSTOMER, HandoverItem.Target.GROUP
    return {
        "customers": plan.count(C),
        "customers_pending": plan.count(C, ItemStatus.PENDING),
        "groups": plan.count(G),
        "groups_pending": plan.count(G, ItemStatus.PENDING),
        "guarded": plan.count(C, ItemStatus.GUARDED) + plan.count(G, ItemStatus.GUARDED),
        "skipped": plan.count(C, ItemStatus.SKIPPED) + plan.count(G, ItemStatus.SKIPPED),
        "per_takeover": plan.per_takeover,
        "group_days": plan.group_days,
        "calls": plan.calls,
        "held_back": [i for i in plan.items if i.status != ItemStatus.PENDING][:50],
    }


@require_safe
@corp_view(Role.ADMIN)
def handover_detail(request: HttpRequest, handover_pk: int) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    handover = _handover(request, handover_pk)
    progress = selectors.handover_progress(corp=corp, handover=handover)
    status = request.GET.get("status", "")
    status = status if status in ItemStatus.values else ""
    target = request.GET.get("target", "")
    target = target if target in HandoverItem.Target.values else ""
    items = selectors.handover_items(
        corp=corp, handover=handover, target=target or None, status=status or None
    )
    page = Paginator(items, ITEMS_PAGE_SIZE).get_page(request.GET.get("page"))
    lang = wecom_lang()
    rows = [(i, message_for(i.errcode, lang) if i.errcode is not None else "") for i in page.object_list]
    labels = dict(ItemStatus.choices)
    chart = {
        "labels": [str(_("Customers")), str(_("Groups"))],
        "series": [
            {
                "label": str(labels[s]),
                "data": [progress.customers.get(s, 0), progress.groups.get(s, 0)],
                "color": COLOURS[ItemStatus(s)],
            }
            for s in ItemStatus.values
            if progress.customers.get(s, 0) or progress.groups.get(s, 0)
        ],
    }
    counts = [
        (s, labels[s], progress.customers.get(s, 0), progress.groups.get(s, 0))
        for s in ItemStatus.values
        if progress.customers.get(s, 0) or progress.groups.get(s, 0)
    ]
    return render(
        request,
        "succession/detail.html",
        {
            "handover": handover,
            "progress": progress,
            "counts": counts,
            "chart": chart,
            "page": page,
            "rows": rows,
            "status": status,
            "target": target,
            "statuses": ItemStatus.choices,
            "successors": selectors.member_names(corp=corp, pks=list(handover.candidate_ids)),
            "stop_message": message_for(handover.stop_reason, lang) if handover.stop_reason else "",
        },
    )


@require_POST
@corp_view(Role.ADMIN)
def handover_cancel(request: HttpRequest, handover_pk: int) -> HttpResponse:
    handover = _handover(request, handover_pk)
    n = services.handover_cancel(corp=request.corp, handover=handover)  # type: ignore[attr-defined]
    messages.success(request, _("%(n)s items not yet requested were cancelled.") % {"n": n})
    return redirect("succession:detail", handover_pk=handover.pk)


@require_POST
@corp_view(Role.ADMIN)
def handover_resume(request: HttpRequest, handover_pk: int) -> HttpResponse:
    handover = _handover(request, handover_pk)
    services.handover_resume(corp=request.corp, handover=handover)  # type: ignore[attr-defined]
    services.enqueue_poll(handover.pk)
    messages.success(request, _("Asked WeCom again; results appear here as they come."))
    return redirect("succession:detail", handover_pk=handover.pk)


@require_safe
@corp_view(Role.ADMIN)
def duplicates(request: HttpRequest) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    decided = request.GET.get("decided", "all")
    decided = decided if decided in ("all", "open", "decided") else "all"
    page = Paginator(selectors.duplicates(corp=corp, decided=decided), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "succession/duplicates.html",
        {
            "page": page,
            "rows": selectors.duplicate_rows(corp=corp, customers=list(page.object_list)),
            "summary": selectors.dedup_summary(corp=corp),
            "decided": decided,
        },
    )


@require_POST
@corp_view(Role.ADMIN)
def dedup_decide(request: HttpRequest, customer_pk: int) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    try:
        customer = Customer.objects.get(corp=corp, pk=customer_pk)
    except Customer.DoesNotExist as exc:
        raise Http404 from exc
    form = DedupForm(request.POST, corp=corp)
    if not form.is_valid():
        messages.error(request, _("Choose a decision."))
    else:
        try:
            services.dedup_decide(
                corp=corp,
                customer=customer,
                decision=form.cleaned_data["decision"],
                keep_member=form.cleaned_data.get("keep_member"),
                note=form.cleaned_data.get("note") or "",
                user=request.user,
            )
            messages.success(request, _("Decision recorded for %(customer)s.") % {"customer": customer})
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    return HttpResponseRedirect(reverse("succession:duplicates") + f"#c{customer.pk}")


@require_POST
@corp_view(Role.ADMIN)
def onjob_start(request: HttpRequest) -> HttpResponse:
    form = OnjobStartForm(request.POST, corp=request.corp)  # type: ignore[attr-defined]
    if not form.is_valid():
        messages.error(request, _("Choose the member who hands over their customers."))
        return redirect("succession:list")
    url = reverse("succession:new_onjob")
    return HttpResponseRedirect(f"{url}?member={form.cleaned_data['member'].pk}")
