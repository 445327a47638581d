from __future__ import annotations

from typing import cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from scrm.tenancy import services
from scrm.tenancy.forms import CorpCreateForm, CorpEditForm, MembershipForm
from scrm.tenancy.middleware import SESSION_CORP_KEY
from scrm.tenancy.models import Membership, Role
from scrm.tenancy.permissions import corp_view, user_view
from scrm.tenancy.selectors import membership_list


@require_POST
@user_view
def corp_switch(request: HttpRequest) -> HttpResponse:
    try:
        corp_pk = int(request.POST.get("corp", ""))
    except ValueError:
        corp_pk = -1
    membership = membership_list(user=request.user).filter(corp_id=corp_pk).first()
    if membership is None:
        messages.error(request, _("You are not a member of that corp."))
    else:
        request.session[SESSION_CORP_KEY] = membership.corp_id
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = reverse("dashboard:home")
    return redirect(target)


@user_view
def onboarding(request: HttpRequest) -> HttpResponse:
    form = CorpCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        corp = services.corp_create(user=cast(User, request.user), **form.cleaned_data)
        request.session[SESSION_CORP_KEY] = corp.pk
        messages.success(request, _("Corp connected. Finish the steps below in the WeCom admin console."))
        return redirect("tenancy:corp_settings")
    return render(
        request,
        "tenancy/onboarding.html",
        {"form": form, "sandbox_url": settings.WECOM_SANDBOX_URL},
    )


@require_POST
@user_view
def onboarding_sandbox(request: HttpRequest) -> HttpResponse:
    if not settings.WECOM_SANDBOX_URL:
        raise Http404
    name = (request.POST.get("name") or "").strip()[:100] or _("Sandbox demo corp")
    try:
        corp = services.corp_create_in_sandbox(
            user=cast(User, request.user),
            name=name,
            sandbox_url=settings.WECOM_SANDBOX_URL,
            public_base_url=settings.PUBLIC_BASE_URL or request.build_absolute_uri("/"),
        )
    except services.SandboxUnavailable:
        messages.error(
            request,
            _("The WeCom sandbox at %(url)s did not answer. Start it with scripts/dev.")
            % {"url": settings.WECOM_SANDBOX_URL},
        )
        return redirect("tenancy:onboarding")
    request.session[SESSION_CORP_KEY] = corp.pk
    messages.success(request, _("A sandbox corp with demo data is connected. Press “Test connection”."))
    return redirect("tenancy:corp_settings")


def _callback_url(request: HttpRequest, corp_id: str) -> str:
    path = reverse("wecom_callback", kwargs={"corp_id": corp_id})
    base = settings.PUBLIC_BASE_URL.rstrip("/") or request.build_absolute_uri("/").rstrip("/")
    return base + path


@corp_view(Role.ADMIN)
def corp_settings(request: HttpRequest) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    return render(
        request,
        "tenancy/corp_settings.html",
        {
            "corp": corp,
            "callback_url": _callback_url(request, corp.corp_id),
            "edit_form": CorpEditForm.for_corp(corp),
        },
    )


@require_POST
@corp_view(Role.ADMIN)
def corp_edit(request: HttpRequest) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    form = CorpEditForm.for_corp(corp, data=request.POST)
    if form.is_valid():
        services.corp_update(corp=corp, **form.cleaned_data)
        messages.success(request, _("Settings saved."))
        return redirect("tenancy:corp_settings")
    return render(
        request,
        "tenancy/corp_settings.html",
        {"corp": corp, "callback_url": _callback_url(request, corp.corp_id), "edit_form": form},
        status=400,
    )


@require_POST
@corp_view(Role.ADMIN)
def corp_test_connection(request: HttpRequest) -> HttpResponse:
    result = services.corp_test_connection(corp=request.corp)  # type: ignore[attr-defined]
    if result.ok:
        messages.success(request, result.message)
    else:
        messages.error(request, result.message)
    return redirect("tenancy:corp_settings")


@corp_view(Role.ADMIN)
def team(request: HttpRequest) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    form = MembershipForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.membership_add(
            corp=corp,
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password"],
            role=form.cleaned_data["role"],
        )
        messages.success(request, _("Teammate saved."))
        return redirect("tenancy:team")
    members = Membership.objects.filter(corp=corp).select_related("user").order_by("user__username")
    return render(
        request, "tenancy/team.html", {"form": form, "members": members}, status=400 if form.errors else 200
    )


@require_POST
@corp_view(Role.ADMIN)
def team_remove(request: HttpRequest, membership_pk: int) -> HttpResponse:
    corp = request.corp  # type: ignore[attr-defined]
    try:
        services.membership_remove(corp=corp, membership_pk=membership_pk)
    except Membership.DoesNotExist as exc:
        raise Http404 from exc
    except services.LastAdminError:
        messages.error(request, _("A corp needs at least one admin."))
    else:
        messages.success(request, _("Teammate removed."))
    return redirect("tenancy:team")
