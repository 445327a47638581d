"""Dashboard pages for channel codes (list, create, edit, QR, statistics) and welcome scripts."""

from __future__ import annotations

import base64
import struct
from datetime import datetime, time, timedelta
from typing import Any
from xml.sax.saxutils import escape

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from scrm.acquisition import caps, selectors, services
from scrm.acquisition.content import VARIABLES, WEEKDAYS
from scrm.acquisition.forms import AttachmentForm, CodeForm, ScriptForm, SeatFormSet, VariantForm
from scrm.acquisition.models import (
    ChannelCode,
    WelcomeAttachment,
    WelcomeAttempt,
    WelcomeScript,
    WelcomeVariant,
)
from scrm.core.wecom import wecom_error_text
from scrm.tenancy.models import Corp, Role
from scrm.tenancy.permissions import corp_view
from wecom.errors import WeComError

CHART_DAYS = 30
ADDED, DELETED, RETAINED7, RETAINED30 = "#1f7a4d", "#c0362c", "#2563eb", "#7c3aed"
WELCOME_COLORS = {
    "sent": "#1f7a4d",
    "already_sent": "#94a3b8",
    "expired": "#b45309",
    "invalid": "#c0362c",
    "busy": "#f59e0b",
    "failed": "#991b1b",
    "no_script": "#cbd5e1",
}


def _corp(request: HttpRequest) -> Corp:
    corp: Corp = request.corp  # type: ignore[attr-defined]
    return corp


def _approver(request: HttpRequest) -> bool:
    """An admin saving content approves its sensitive words (when the corp's gate asks for approval)."""
    return bool(request.membership.has_role(Role.ADMIN))  # type: ignore[attr-defined]


def _code(request: HttpRequest, code_pk: int) -> ChannelCode:
    try:
        return selectors.code_get(corp=_corp(request), pk=code_pk)
    except ChannelCode.DoesNotExist as exc:
        raise Http404 from exc


def _script(request: HttpRequest, script_pk: int) -> WelcomeScript:
    try:
        return selectors.script_get(corp=_corp(request), pk=script_pk)
    except WelcomeScript.DoesNotExist as exc:
        raise Http404 from exc


def _add_errors(form: Any, exc: ValidationError | WeComError) -> None:
    if isinstance(exc, WeComError):
        form.add_error(None, wecom_error_text(exc))
    else:
        for message in exc.messages:
            form.add_error(None, message)


# -- channel codes ----------------------------------------------------------------------------------------


@require_safe
@corp_view()
def code_list(request: HttpRequest) -> HttpResponse:
    corp = _corp(request)
    return render(
        request,
        "acquisition/codes.html",
        {"codes": selectors.code_list(corp=corp), "alerts": selectors.code_alerts(corp=corp)},
    )


def _seat_initial(code: ChannelCode) -> list[dict[str, Any]]:
    return [
        {
            "member": s.member,
            "backup": s.backup,
            "weekdays": list(s.weekdays),
            "start": s.start_time,
            "end": s.end_time,
        }
        for s in selectors.code_seats(corp=code.corp, code=code)
    ]


def _code_form_page(
    request: HttpRequest, *, code: ChannelCode | None, form: CodeForm, seats: Any, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "acquisition/code_form.html",
        {"code": code, "form": form, "seats": seats, "variables": VARIABLES},
        status=status,
    )


@corp_view(Role.ADMIN)
def code_create(request: HttpRequest) -> HttpResponse:
    corp = _corp(request)
    if request.method != "POST":
        return _code_form_page(
            request,
            code=None,
            form=CodeForm(corp=corp),
            seats=SeatFormSet(prefix="seats", form_kwargs={"corp": corp}),
        )
    form = CodeForm(request.POST, corp=corp)
    seats = SeatFormSet(request.POST, prefix="seats", form_kwargs={"corp": corp})
    if form.is_valid() and seats.is_valid():
        data = form.cleaned_data
        try:
            code = services.code_create(
                corp=corp,
                name=data["name"],
                seats=seats.seats(),
                per_minute_cap=data["per_minute_cap"],
                per_day_cap=data["per_day_cap"],
                skip_verify=data["skip_verify"],
                remark_template=data["remark_template"],
                script=data["script"],
                tags=list(data["tags"]),
                user=request.user,
            )
        except (ValidationError, WeComError) as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Channel code created. Its QR code is ready to download."))
            return redirect("acquisition:code_detail", code_pk=code.pk)
    return _code_form_page(request, code=None, form=form, seats=seats, status=400)


@corp_view(Role.ADMIN)
def code_edit(request: HttpRequest, code_pk: int) -> HttpResponse:
    corp = _corp(request)
    code = _code(request, code_pk)
    if request.method != "POST":
        form = CodeForm(
            corp=corp,
            initial={
                "name": code.name,
                "script": code.script,
                "tags": list(code.tags.all()),
                "remark_template": code.remark_template,
                "per_minute_cap": code.per_minute_cap,
                "per_day_cap": code.per_day_cap,
                "skip_verify": code.skip_verify,
            },
        )
        seats = SeatFormSet(prefix="seats", initial=_seat_initial(code), form_kwargs={"corp": corp})
        return _code_form_page(request, code=code, form=form, seats=seats)
    form = CodeForm(request.POST, corp=corp)
    seats = SeatFormSet(request.POST, prefix="seats", form_kwargs={"corp": corp})
    if form.is_valid() and seats.is_valid():
        data = form.cleaned_data
        try:
            services.code_update(
                corp=corp,
                code=code,
                name=data["name"],
                seats=seats.seats(),
                per_minute_cap=data["per_minute_cap"],
                per_day_cap=data["per_day_cap"],
                skip_verify=data["skip_verify"],
                remark_template=data["remark_template"],
                script=data["script"],
                tags=list(data["tags"]),
            )
        except (ValidationError, WeComError) as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Channel code saved and updated in WeCom."))
            return redirect("acquisition:code_detail", code_pk=code.pk)
    return _code_form_page(request, code=code, form=form, seats=seats, status=400)


@require_POST
@corp_view(Role.ADMIN)
def code_delete(request: HttpRequest, code_pk: int) -> HttpResponse:
    code = _code(request, code_pk)
    try:
        services.code_delete(corp=_corp(request), code=code)
    except WeComError as exc:
        messages.error(request, wecom_error_text(exc))
        return redirect("acquisition:code_detail", code_pk=code.pk)
    messages.success(request, _("Channel code deleted: its QR code no longer works."))
    return redirect("acquisition:codes")


def _charts(stats: selectors.CodeStats) -> dict[str, Any]:
    labels = [d.day.strftime("%m-%d") for d in stats.days]
    statuses = [s for s in WELCOME_COLORS if stats.welcome_totals.get(s)]
    status_labels = dict(WelcomeAttempt.Status.choices)
    top = stats.members[:15]
    return {
        "adds": {
            "labels": labels,
            "series": [
                {"label": _("Added"), "data": [d.adds for d in stats.days], "color": ADDED},
                {
                    "label": _("Deleted by the customer"),
                    "data": [d.deleted_by_customer for d in stats.days],
                    "color": DELETED,
                },
            ],
        },
        "retention": {
            "labels": labels,
            "series": [
                {
                    "label": _("Still friends after 7 days (%)"),
                    "data": [
                        None if d.retained_7d is None else round(d.retained_7d * 100) for d in stats.days
                    ],
                    "color": RETAINED7,
                },
                {
                    "label": _("Still friends after 30 days (%)"),
                    "data": [
                        None if d.retained_30d is None else round(d.retained_30d * 100) for d in stats.days
                    ],
                    "color": RETAINED30,
                },
            ],
        },
        "members": {
            "labels": [m.name or m.userid for m in top],
            "series": [{"label": _("Added"), "data": [m.adds for m in top], "color": ADDED}],
        },
        "welcome": {
            "labels": labels,
            "stacked": True,
            "series": [
                {
                    "label": str(status_labels.get(s, s)),
                    "data": [d.welcome.get(s, 0) for d in stats.days],
                    "color": WELCOME_COLORS[s],
                }
                for s in statuses
            ],
        },
    }


@require_safe
@corp_view()
def code_detail(request: HttpRequest, code_pk: int) -> HttpResponse:
    corp = _corp(request)
    code = _code(request, code_pk)
    seats = selectors.code_seats(corp=corp, code=code)
    usage = selectors.code_usage(corp=corp, code=code, seats=seats)
    stats = selectors.code_stats(corp=corp, code=code, days=CHART_DAYS)
    status_labels = dict(WelcomeAttempt.Status.choices)
    return render(
        request,
        "acquisition/code_detail.html",
        {
            "code": code,
            "tags": list(code.tags.all()),
            "seats": [
                (
                    s,
                    usage.get(s.member.userid, caps.Usage()),
                    s.member.userid in code.applied_userids,
                    duty_label(s),
                )
                for s in seats
            ],
            "stats": stats,
            "charts": _charts(stats),
            "welcome_totals": [(status_labels.get(k, k), v) for k, v in stats.welcome_totals.items()],
            "attempts": selectors.code_attempts(corp=corp, code=code),
            "recent_days": [d for d in reversed(stats.days) if d.adds or d.deleted_by_customer][:14],
            "chart_days": CHART_DAYS,
        },
    )


def duty_label(seat: Any) -> str:
    """ "Mon Tue 09:00–18:00", "every day, all day"…"""
    names = dict(WEEKDAYS)
    days = " ".join(str(names[d]) for d in seat.weekdays) if seat.weekdays else _("every day")
    if seat.start_time is None:
        return f"{days}, " + _("all day")
    return f"{days} {seat.start_time:%H:%M}–{seat.end_time:%H:%M}"


def _png_size(png: bytes) -> tuple[int, int]:
    if png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) >= 24:
        width, height = struct.unpack(">II", png[16:24])
        return int(width), int(height)
    return 430, 430


@require_safe
@corp_view()
def code_qr(request: HttpRequest, code_pk: int, fmt: str) -> HttpResponse:
    """The code's QR image as a download named after the channel: WeCom's PNG, or an SVG poster holding it
    above the channel name (WeCom gives the image, not the QR's content, so the SVG embeds it)."""
    code = _code(request, code_pk)
    png = services.code_qr_fetch(code=code)
    if png is None:
        raise Http404(_("WeCom has not given this code's QR image yet; try again in a moment."))
    inline = request.GET.get("inline") == "1"
    if fmt == "png":
        response = HttpResponse(png, content_type="image/png")
        filename = f"{code.name}.png"
    else:
        width, height = _png_size(png)
        caption = 40
        data = base64.b64encode(png).decode()
        svg = (
            f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{width}" height="{height + caption}" viewBox="0 0 {width} {height + caption}">'
            f'<rect width="100%" height="100%" fill="#fff"/>'
            f'<image width="{width}" height="{height}" xlink:href="data:image/png;base64,{data}"/>'
            f'<text x="{width // 2}" y="{height + caption - 14}" text-anchor="middle" font-size="20" '
            f'font-family="PingFang SC, Noto Sans CJK SC, sans-serif">{escape(code.name)}</text></svg>'
        )
        response = HttpResponse(svg, content_type="image/svg+xml")
        filename = f"{code.name}.svg"
    response["Content-Disposition"] = content_disposition_header(not inline, filename) or ""
    response["Cache-Control"] = "private, max-age=300"
    return response


# -- welcome scripts -----------------------------------------------------------------------------------------


@require_safe
@corp_view(Role.ADMIN)
def script_list(request: HttpRequest) -> HttpResponse:
    corp = _corp(request)
    return render(
        request,
        "acquisition/scripts.html",
        {"scripts": selectors.script_list(corp=corp), "form": ScriptForm(corp=corp)},
    )


def _script_save(
    form: ScriptForm, *, corp: Corp, script: WelcomeScript | None, approver: bool
) -> WelcomeScript | None:
    """Saves a valid form through the service; refusals (e.g. the word gate) land on the form."""
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        return services.script_save(
            corp=corp,
            script=script,
            name=data["name"],
            text=data["text"],
            nickname_fallback=data["nickname_fallback"],
            is_default=data["is_default"],
            members=list(data["members"]),
            approver=approver,
        )
    except ValidationError as exc:
        _add_errors(form, exc)
        return None


@require_POST
@corp_view(Role.ADMIN)
def script_create(request: HttpRequest) -> HttpResponse:
    corp = _corp(request)
    form = ScriptForm(request.POST, corp=corp)
    script = _script_save(form, corp=corp, script=None, approver=_approver(request))
    if script is not None:
        messages.success(request, _("Welcome script created."))
        return redirect("acquisition:script_edit", script_pk=script.pk)
    return render(
        request,
        "acquisition/scripts.html",
        {"scripts": selectors.script_list(corp=corp), "form": form},
        status=400,
    )


def _preview_at(request: HttpRequest) -> datetime:
    """The moment to preview: a weekday and time this week (Beijing time), or now."""
    now = timezone.now().astimezone(caps.SHANGHAI)
    try:
        day = int(request.GET.get("day", ""))
        hours, minutes = (int(x) for x in request.GET.get("time", "").split(":"))
        at_time = time(hours, minutes)
    except ValueError:
        return now
    if not 0 <= day <= 6:
        return now
    monday = (now - timedelta(days=now.weekday())).date()
    return datetime.combine(monday + timedelta(days=day), at_time, tzinfo=caps.SHANGHAI)


def _script_page(
    request: HttpRequest,
    script: WelcomeScript,
    *,
    form: ScriptForm | None = None,
    variant_form: VariantForm | None = None,
    attachment_form: AttachmentForm | None = None,
    status: int = 200,
) -> HttpResponse:
    corp = _corp(request)
    form = form or ScriptForm(
        corp=corp,
        initial={
            "name": script.name,
            "text": script.text,
            "nickname_fallback": script.nickname_fallback,
            "is_default": script.is_default,
            "members": selectors.script_member_ids(corp=corp, script=script),
        },
    )
    at = _preview_at(request)
    return render(
        request,
        "acquisition/script_form.html",
        {
            "script": script,
            "form": form,
            "variant_form": variant_form or VariantForm(corp=corp),
            "attachment_form": attachment_form or AttachmentForm(script=script),
            "variants": list(script.variants.all()),
            "attachments": selectors.script_attachments(corp=corp, script=script),
            "preview": selectors.script_preview(
                corp=corp, script=script, at=at, member_name=str(request.user)
            ),
            "preview_at": at,
            "weekdays": WEEKDAYS,
            "weekday_names": dict(WEEKDAYS),
            "variables": VARIABLES,
            "media_safety": timezone.now() + timedelta(minutes=2),
        },
        status=status,
    )


@corp_view(Role.ADMIN)
def script_edit(request: HttpRequest, script_pk: int) -> HttpResponse:
    corp = _corp(request)
    script = _script(request, script_pk)
    if request.method != "POST":
        return _script_page(request, script)
    form = ScriptForm(request.POST, corp=corp)
    if _script_save(form, corp=corp, script=script, approver=_approver(request)) is not None:
        messages.success(request, _("Welcome script saved."))
        return redirect("acquisition:script_edit", script_pk=script.pk)
    return _script_page(request, script, form=form, status=400)


@require_safe
@corp_view(Role.ADMIN)
def script_preview(request: HttpRequest, script_pk: int) -> HttpResponse:
    """The chat bubble alone, for htmx: at another weekday and time."""
    corp = _corp(request)
    script = _script(request, script_pk)
    at = _preview_at(request)
    return render(
        request,
        "acquisition/_preview.html",
        {
            "preview": selectors.script_preview(
                corp=corp, script=script, at=at, member_name=str(request.user)
            ),
            "preview_at": at,
            "script": script,
            "weekday_names": dict(WEEKDAYS),
        },
    )


@require_POST
@corp_view(Role.ADMIN)
def script_delete(request: HttpRequest, script_pk: int) -> HttpResponse:
    script = _script(request, script_pk)
    services.script_delete(corp=_corp(request), script=script)
    messages.success(request, _("Welcome script deleted."))
    return redirect("acquisition:scripts")


@require_POST
@corp_view(Role.ADMIN)
def variant_add(request: HttpRequest, script_pk: int) -> HttpResponse:
    corp = _corp(request)
    script = _script(request, script_pk)
    form = VariantForm(request.POST, corp=corp)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.variant_add(
                corp=corp,
                script=script,
                weekdays=data["weekdays"],
                start=data["start_time"],
                end=data["end_time"],
                text=data["text"],
                approver=_approver(request),
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Time-slot text added."))
            return redirect(reverse("acquisition:script_edit", kwargs={"script_pk": script.pk}) + "#variants")
    return _script_page(request, script, variant_form=form, status=400)


@require_POST
@corp_view(Role.ADMIN)
def variant_delete(request: HttpRequest, script_pk: int, variant_pk: int) -> HttpResponse:
    corp = _corp(request)
    script = _script(request, script_pk)
    variant = WelcomeVariant.objects.filter(corp=corp, script=script, pk=variant_pk).first()
    if variant is None:
        raise Http404
    services.variant_delete(corp=corp, variant=variant)
    return redirect(reverse("acquisition:script_edit", kwargs={"script_pk": script.pk}) + "#variants")


@require_POST
@corp_view(Role.ADMIN)
def attachment_add(request: HttpRequest, script_pk: int) -> HttpResponse:
    corp = _corp(request)
    script = _script(request, script_pk)
    form = AttachmentForm(request.POST, request.FILES, script=script)
    if form.is_valid():
        data = form.cleaned_data
        upload = None
        if data.get("file"):
            f = data["file"]
            upload = services.Upload(name=f.name, content=f.read(), content_type=f.content_type or "")
        try:
            attachment = services.attachment_add(
                corp=corp,
                script=script,
                variant=data.get("variant"),
                kind=data["kind"],
                title=data["title"],
                url=data["url"],
                pic_url=data["pic_url"],
                description=data["description"],
                appid=data["appid"],
                page=data["page"],
                upload=upload,
                approver=_approver(request),
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            if attachment.media is not None and not attachment.media.media_id:
                messages.warning(
                    request,
                    _("Attachment saved, but WeCom did not take the file yet (%(error)s). We keep trying.")
                    % {"error": attachment.media.last_error},
                )
            else:
                messages.success(request, _("Attachment added."))
            return redirect(
                reverse("acquisition:script_edit", kwargs={"script_pk": script.pk}) + "#attachments"
            )
    return _script_page(request, script, attachment_form=form, status=400)


@require_POST
@corp_view(Role.ADMIN)
def attachment_delete(request: HttpRequest, script_pk: int, attachment_pk: int) -> HttpResponse:
    corp = _corp(request)
    script = _script(request, script_pk)
    attachment = WelcomeAttachment.objects.filter(corp=corp, script=script, pk=attachment_pk).first()
    if attachment is None:
        raise Http404
    services.attachment_delete(corp=corp, attachment=attachment)
    return redirect(reverse("acquisition:script_edit", kwargs={"script_pk": script.pk}) + "#attachments")
