"""Dashboard pages for group codes (list, create, pool, statistics, duplicates), group welcome templates,
and the public landing page /g/<slug>/."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from scrm.core.wecom import wecom_error_text
from scrm.groupcodes import selectors, services
from scrm.groupcodes.forms import CodeForm, ImageForm, PoolAddForm, TemplateForm
from scrm.groupcodes.models import GroupCode, GroupWelcomeTemplate, PoolGroup
from scrm.tenancy.models import Corp, Role
from scrm.tenancy.permissions import corp_view, public_view
from wecom.errors import WeComError

CHART_DAYS = 30
JOINS, LEAVES, SIZE = "#1f7a4d", "#c0362c", "#2563eb"


def _corp(request: HttpRequest) -> Corp:
    corp: Corp = request.corp  # type: ignore[attr-defined]
    return corp


def _code(request: HttpRequest, gcode_pk: int) -> GroupCode:
    try:
        return selectors.code_get(corp=_corp(request), pk=gcode_pk)
    except GroupCode.DoesNotExist as exc:
        raise Http404 from exc


def _add_errors(form: Any, exc: ValidationError | WeComError) -> None:
    if isinstance(exc, WeComError):
        form.add_error(None, wecom_error_text(exc))
    else:
        for message in exc.messages:
            form.add_error(None, message)


@require_safe
@corp_view()
def code_list(request: HttpRequest) -> HttpResponse:
    corp = _corp(request)
    codes = list(selectors.code_list(corp=corp))
    return render(
        request,
        "groupcodes/list.html",
        {"codes": codes, "notices": selectors.notices(corp=corp, limit=10)},
    )


@corp_view(Role.ADMIN)
def code_create(request: HttpRequest) -> HttpResponse:
    corp = _corp(request)
    form = CodeForm(request.POST or None, corp=corp)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            code = services.code_create(
                corp=corp,
                name=data["name"],
                mode=data["mode"],
                groups=list(data["groups"]),
                capacity=data["capacity"],
                room_base_name=data["room_base_name"],
                user=request.user,
            )
        except (ValidationError, WeComError) as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Group code created."))
            return redirect("groupcodes:detail", gcode_pk=code.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "groupcodes/form.html", {"form": form}, status=status)


def _chart(stats: selectors.CodeStats) -> dict[str, Any]:
    labels = [d.day.strftime("%m-%d") for d in stats.days]
    return {
        "flow": {
            "labels": labels,
            "series": [
                {"label": _("Joined"), "data": [d.joins for d in stats.days], "color": JOINS},
                {"label": _("Left"), "data": [-d.leaves for d in stats.days], "color": LEAVES},
            ],
        },
        "groups": {
            "labels": [str(g.entry.group) for g in stats.groups],
            "series": [
                {
                    "label": _("Members now"),
                    "data": [g.entry.group.member_count for g in stats.groups],
                    "color": SIZE,
                },
                {"label": _("Joined"), "data": [g.joins for g in stats.groups], "color": JOINS},
            ],
        },
    }


@require_safe
@corp_view()
def code_detail(request: HttpRequest, gcode_pk: int) -> HttpResponse:
    corp = _corp(request)
    code = _code(request, gcode_pk)
    stats = selectors.code_stats(corp=corp, code=code, days=CHART_DAYS)
    landing = code.mode == GroupCode.Mode.LANDING
    return render(
        request,
        "groupcodes/detail.html",
        {
            "code": code,
            "landing": landing,
            "stats": stats,
            "chart": _chart(stats),
            "chart_days": CHART_DAYS,
            "recent_days": [d for d in reversed(stats.days) if d.joins or d.leaves][:14],
            "rotations": selectors.code_rotations(corp=corp, code=code),
            "notices": selectors.notices(corp=corp, code=code, limit=10),
            "add_form": ImageForm(corp=corp) if landing else PoolAddForm(corp=corp),
            "landing_url": request.build_absolute_uri(f"/g/{code.slug}/") if landing else "",
        },
    )


@require_POST
@corp_view(Role.ADMIN)
def pool_add(request: HttpRequest, gcode_pk: int) -> HttpResponse:
    corp = _corp(request)
    code = _code(request, gcode_pk)
    try:
        if code.mode == GroupCode.Mode.LANDING:
            form: Any = ImageForm(request.POST, request.FILES, corp=corp)
            if form.is_valid():
                upload = form.cleaned_data["image"]
                services.pool_add_image(
                    corp=corp,
                    code=code,
                    group=form.cleaned_data["group"],
                    image=upload.read(services.QR_IMAGE_MAX_BYTES + 1),
                    content_type=upload.content_type or "",
                    expires_at=form.cleaned_data["expires_at"],
                )
                messages.success(request, _("Group QR code added."))
            else:
                for errors in form.errors.values():
                    for e in errors:
                        messages.error(request, e)
        else:
            form = PoolAddForm(request.POST, corp=corp)
            if form.is_valid():
                n = services.pool_add(corp=corp, code=code, groups=list(form.cleaned_data["groups"]))
                messages.success(request, _("%(n)s group(s) added to the pool.") % {"n": n})
            else:
                messages.error(request, _("Choose the groups to add."))
    except ValidationError as exc:
        for m in exc.messages:
            messages.error(request, m)
    except WeComError as exc:
        messages.error(request, wecom_error_text(exc))
    return redirect("groupcodes:detail", gcode_pk=code.pk)


@require_POST
@corp_view(Role.ADMIN)
def pool_remove(request: HttpRequest, gcode_pk: int, entry_pk: int) -> HttpResponse:
    corp = _corp(request)
    code = _code(request, gcode_pk)
    try:
        services.pool_remove(corp=corp, code=code, entry_pk=entry_pk)
    except PoolGroup.DoesNotExist as exc:
        raise Http404 from exc
    except WeComError as exc:
        messages.error(request, wecom_error_text(exc))
    else:
        messages.success(request, _("Group taken out of the pool."))
    return redirect("groupcodes:detail", gcode_pk=code.pk)


@require_POST
@corp_view(Role.ADMIN)
def code_delete(request: HttpRequest, gcode_pk: int) -> HttpResponse:
    code = _code(request, gcode_pk)
    try:
        services.code_delete(corp=_corp(request), code=code)
    except WeComError as exc:
        messages.error(request, wecom_error_text(exc))
        return redirect("groupcodes:detail", gcode_pk=code.pk)
    messages.success(request, _("Group code deleted: its QR code no longer works."))
    return redirect("groupcodes:list")


@require_safe
@corp_view()
def code_qr(request: HttpRequest, gcode_pk: int) -> HttpResponse:
    code = _code(request, gcode_pk)
    png = services.code_qr_fetch(code=code)
    if png is None:
        raise Http404(_("WeCom has not given this code's QR image yet; try again in a moment."))
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=300"
    return response


@require_safe
@corp_view()
def entry_image(request: HttpRequest, gcode_pk: int, entry_pk: int) -> HttpResponse:
    code = _code(request, gcode_pk)
    try:
        entry = selectors.pool_entry_get(corp=_corp(request), code=code, pk=entry_pk)
    except PoolGroup.DoesNotExist as exc:
        raise Http404 from exc
    if not entry.qr_image:
        raise Http404
    return HttpResponse(bytes(entry.qr_image), content_type=entry.qr_content_type or "image/png")


@corp_view()
def code_duplicates(request: HttpRequest, gcode_pk: int) -> HttpResponse:
    corp = _corp(request)
    code = _code(request, gcode_pk)
    if request.method == "POST":
        if not request.membership.has_role(Role.ADMIN):  # type: ignore[attr-defined]
            return HttpResponse(status=403)
        n = services.duplicates_notify_owners(corp=corp, code=code)
        messages.success(request, _("%(n)s group owner(s) notified.") % {"n": n})
        return redirect("groupcodes:duplicates", gcode_pk=code.pk)
    return render(
        request,
        "groupcodes/duplicates.html",
        {"code": code, "duplicates": selectors.pool_duplicates(corp=corp, code=code)},
    )


# -- group welcome templates ---------------------------------------------------------------------------


@require_safe
@corp_view()
def template_list(request: HttpRequest) -> HttpResponse:
    templates = list(selectors.template_list(corp=_corp(request)))
    return render(
        request,
        "groupcodes/templates.html",
        {"templates": templates, "limit": services.TEMPLATES_MAX},
    )


def _template(request: HttpRequest, template_pk: int) -> GroupWelcomeTemplate:
    try:
        return selectors.template_get(corp=_corp(request), pk=template_pk)
    except GroupWelcomeTemplate.DoesNotExist as exc:
        raise Http404 from exc


def _template_form(request: HttpRequest, template: GroupWelcomeTemplate | None) -> HttpResponse:
    corp = _corp(request)
    initial = (
        {
            "name": template.name,
            "text": template.text,
            "link_title": template.link_title,
            "link_url": template.link_url,
            "notify": template.notify,
        }
        if template
        else None
    )
    form = TemplateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.template_save(
                corp=corp,
                template=template,
                name=data["name"],
                text=data["text"],
                link_title=data["link_title"],
                link_url=data["link_url"],
                notify=data["notify"],
                approver=request.membership.has_role(Role.ADMIN),  # type: ignore[attr-defined]
            )
        except (ValidationError, WeComError) as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Group welcome template saved in WeCom."))
            return redirect("groupcodes:templates")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "groupcodes/template_form.html", {"form": form, "template": template}, status=status
    )


@corp_view(Role.OPERATOR)
def template_create(request: HttpRequest) -> HttpResponse:
    return _template_form(request, None)


@corp_view(Role.OPERATOR)
def template_edit(request: HttpRequest, template_pk: int) -> HttpResponse:
    return _template_form(request, _template(request, template_pk))


@require_POST
@corp_view(Role.OPERATOR)
def template_delete(request: HttpRequest, template_pk: int) -> HttpResponse:
    template = _template(request, template_pk)
    try:
        services.template_delete(corp=_corp(request), template=template)
    except WeComError as exc:
        messages.error(request, wecom_error_text(exc))
    else:
        messages.success(request, _("Group welcome template deleted."))
    return redirect("groupcodes:templates")


# -- the public landing page ------------------------------------------------------------------------


def _landing(slug: str) -> GroupCode:
    try:
        return selectors.landing_get(slug=slug)
    except GroupCode.DoesNotExist as exc:
        raise Http404 from exc


@require_safe
@public_view
def landing(request: HttpRequest, slug: str) -> HttpResponse:
    """Shows the QR image of the group with room now; nothing about the corp but the code's name."""
    code = _landing(slug)
    entry = services.landing_entry(code=code)
    response = render(request, "groupcodes/landing.html", {"code": code, "entry": entry})
    response["Cache-Control"] = "no-store"  # the group changes at the threshold
    return response


@require_safe
@public_view
def landing_image(request: HttpRequest, slug: str, entry_pk: int) -> HttpResponse:
    code = _landing(slug)
    entry = code.pool.filter(pk=entry_pk, status=PoolGroup.Status.SERVING).first()
    if entry is None or not entry.qr_image:
        raise Http404
    response = HttpResponse(bytes(entry.qr_image), content_type=entry.qr_content_type or "image/png")
    response["Cache-Control"] = "no-store"
    return response
