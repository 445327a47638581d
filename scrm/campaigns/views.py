"""Dashboard pages for broadcasts: list, compose, preview and approval, report, and the corp's rules."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from scrm.acquisition.services import Upload
from scrm.campaigns import selectors, services
from scrm.campaigns.forms import AttachmentForm, BroadcastForm, SettingsForm
from scrm.campaigns.models import Broadcast, BroadcastAttachment, RecipientResult
from scrm.compliance.services import content_highlight
from scrm.customers.selectors import FilterError
from scrm.tenancy.models import Corp, Role
from scrm.tenancy.permissions import corp_view
from wecom.errors import WeComError

RESULT_COLORS = {0: "#94a3b8", 1: "#1f7a4d", 2: "#c0362c", 3: "#b45309"}


def _corp(request: HttpRequest) -> Corp:
    corp: Corp = request.corp  # type: ignore[attr-defined]
    return corp


def _is_admin(request: HttpRequest) -> bool:
    return bool(request.membership.has_role(Role.ADMIN))  # type: ignore[attr-defined]


def _broadcast(request: HttpRequest, broadcast_pk: int) -> Broadcast:
    try:
        return selectors.broadcast_get(corp=_corp(request), pk=broadcast_pk)
    except Broadcast.DoesNotExist as exc:
        raise Http404 from exc


def _errors(request: HttpRequest, exc: ValidationError) -> None:
    for message in exc.messages:
        messages.error(request, message)


@corp_view(Role.VIEWER)
def broadcast_list(request: HttpRequest) -> HttpResponse:
    corp = _corp(request)
    return render(
        request,
        "campaigns/list.html",
        {
            "broadcasts": selectors.broadcast_list(corp=corp)[:200],
            "campaign_settings": selectors.settings_get(corp=corp),
            "is_admin": _is_admin(request),
        },
    )


def _form_page(request: HttpRequest, broadcast: Broadcast | None) -> HttpResponse:
    corp = _corp(request)
    if request.method == "POST":
        form = BroadcastForm(request.POST, corp=corp)
        if form.is_valid():
            try:
                saved = services.broadcast_save(
                    corp=corp,
                    broadcast=broadcast,
                    user=request.user,
                    name=form.cleaned_data["name"],
                    chat_type=form.cleaned_data["chat_type"],
                    text=form.cleaned_data["text"],
                    audience=form.audience(),
                    scheduled_at=form.cleaned_data["scheduled_at"],
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                return redirect("campaigns:detail", broadcast_pk=saved.pk)
    else:
        form = BroadcastForm(
            corp=corp, initial=BroadcastForm.initial_for(broadcast) if broadcast is not None else None
        )
    return render(request, "campaigns/form.html", {"form": form, "broadcast": broadcast})


@corp_view(Role.OPERATOR)
def broadcast_create(request: HttpRequest) -> HttpResponse:
    return _form_page(request, None)


@corp_view(Role.OPERATOR)
def broadcast_edit(request: HttpRequest, broadcast_pk: int) -> HttpResponse:
    broadcast = _broadcast(request, broadcast_pk)
    if not broadcast.editable:
        messages.error(request, _("This broadcast can no longer be changed."))
        return redirect("campaigns:detail", broadcast_pk=broadcast.pk)
    return _form_page(request, broadcast)


def _chart(results: dict[int, int], pending: int) -> dict[str, Any]:
    labels = [str(label) for _value, label in RecipientResult.Status.choices]
    return {
        "labels": [*labels, _("Waiting for the member")],
        "series": [
            {
                "label": _("Recipients"),
                "data": [results.get(v, 0) for v, _label in RecipientResult.Status.choices] + [pending],
                "color": "#2563eb",
            }
        ],
    }


@corp_view(Role.VIEWER)
def broadcast_detail(request: HttpRequest, broadcast_pk: int) -> HttpResponse:
    corp = _corp(request)
    broadcast = _broadcast(request, broadcast_pk)
    context: dict[str, Any] = {
        "broadcast": broadcast,
        "highlight": content_highlight(corp=corp, text=broadcast.text),
        "attachments": selectors.attachments_of(broadcast=broadcast),
        "attachment_form": AttachmentForm(),
        "campaign_settings": selectors.settings_get(corp=corp),
        "is_admin": _is_admin(request),
        "can_operate": request.membership.has_role(Role.OPERATOR),  # type: ignore[attr-defined]
    }
    started = broadcast.started_at is not None
    if not started and broadcast.status != Broadcast.Status.CANCELLED:
        try:
            context["preview"] = selectors.audience_preview(
                corp=corp, audience=selectors.audience_of(broadcast)
            )
        except FilterError as exc:
            messages.error(request, str(exc))
    if started:
        progress = selectors.broadcast_progress(broadcast=broadcast)
        results = selectors.broadcast_results(broadcast=broadcast)
        pending = max(0, progress.recipients - sum(results.values()))
        context.update(
            progress=progress,
            senders=selectors.broadcast_senders(broadcast=broadcast),
            results=[(label, results.get(v, 0)) for v, label in RecipientResult.Status.choices],
            pending=pending,
            chart=_chart(results, pending),
            deletion_rate=selectors.deletion_rate(broadcast=broadcast),
        )
    return render(request, "campaigns/detail.html", context)


@corp_view(Role.OPERATOR)
@require_POST
def attachment_add(request: HttpRequest, broadcast_pk: int) -> HttpResponse:
    corp = _corp(request)
    broadcast = _broadcast(request, broadcast_pk)
    form = AttachmentForm(request.POST, request.FILES)
    if not form.is_valid():
        for errors in form.errors.values():
            for e in errors:
                messages.error(request, str(e))
        return redirect("campaigns:detail", broadcast_pk=broadcast.pk)
    d = form.cleaned_data
    upload = None
    if d.get("file"):
        f = d["file"]
        upload = Upload(name=f.name, content=f.read(), content_type=f.content_type or "")
    try:
        services.attachment_add(
            corp=corp,
            broadcast=broadcast,
            kind=d["kind"],
            title=d["title"],
            url=d["url"],
            pic_url=d["pic_url"],
            description=d["description"],
            appid=d["appid"],
            page=d["page"],
            upload=upload,
        )
    except ValidationError as exc:
        _errors(request, exc)
    return redirect("campaigns:detail", broadcast_pk=broadcast.pk)


@corp_view(Role.OPERATOR)
@require_POST
def attachment_delete(request: HttpRequest, broadcast_pk: int, battachment_pk: int) -> HttpResponse:
    corp = _corp(request)
    broadcast = _broadcast(request, broadcast_pk)
    attachment = BroadcastAttachment.objects.filter(corp=corp, broadcast=broadcast, pk=battachment_pk).first()
    if attachment is None:
        raise Http404
    try:
        services.attachment_delete(corp=corp, attachment=attachment)
    except ValidationError as exc:
        _errors(request, exc)
    return redirect("campaigns:detail", broadcast_pk=broadcast.pk)


@corp_view(Role.OPERATOR)
@require_POST
def broadcast_submit(request: HttpRequest, broadcast_pk: int) -> HttpResponse:
    broadcast = _broadcast(request, broadcast_pk)
    try:
        done = services.broadcast_submit(
            corp=_corp(request), broadcast=broadcast, user=request.user, is_admin=_is_admin(request)
        )
    except ValidationError as exc:
        _errors(request, exc)
    else:
        if done.status == Broadcast.Status.PENDING:
            messages.info(request, _("Submitted: an admin must approve it before it is sent."))
        else:
            messages.success(request, _("Approved: it will be created in WeCom at the scheduled time."))
    return redirect("campaigns:detail", broadcast_pk=broadcast.pk)


@corp_view(Role.ADMIN)
@require_POST
def broadcast_approve(request: HttpRequest, broadcast_pk: int) -> HttpResponse:
    broadcast = _broadcast(request, broadcast_pk)
    try:
        services.broadcast_approve(corp=_corp(request), broadcast=broadcast, user=request.user)
    except ValidationError as exc:
        _errors(request, exc)
    else:
        messages.success(request, _("Approved: it will be created in WeCom at the scheduled time."))
    return redirect("campaigns:detail", broadcast_pk=broadcast.pk)


@corp_view(Role.ADMIN)
@require_POST
def broadcast_reject(request: HttpRequest, broadcast_pk: int) -> HttpResponse:
    broadcast = _broadcast(request, broadcast_pk)
    services.broadcast_reject(corp=_corp(request), broadcast=broadcast)
    messages.info(request, _("Sent back to draft."))
    return redirect("campaigns:detail", broadcast_pk=broadcast.pk)


@corp_view(Role.OPERATOR)
@require_POST
def broadcast_cancel(request: HttpRequest, broadcast_pk: int) -> HttpResponse:
    broadcast = _broadcast(request, broadcast_pk)
    services.broadcast_cancel(corp=_corp(request), broadcast=broadcast)
    messages.info(request, _("Cancelled. Members who had not sent it yet no longer can."))
    return redirect("campaigns:detail", broadcast_pk=broadcast.pk)


@corp_view(Role.OPERATOR)
@require_POST
def broadcast_remind(request: HttpRequest, broadcast_pk: int) -> HttpResponse:
    broadcast = _broadcast(request, broadcast_pk)
    raw = request.POST.get("member", "")
    member_pk = int(raw) if raw.isdigit() else None
    try:
        outcome = services.broadcast_remind(corp=_corp(request), broadcast=broadcast, member_pk=member_pk)
    except WeComError as exc:
        messages.error(request, str(exc))
        return redirect("campaigns:detail", broadcast_pk=broadcast.pk)
    if outcome.reminded:
        messages.success(request, _("Reminder sent to %(n)s member(s).") % {"n": outcome.reminded})
    if outcome.at_limit:
        messages.warning(
            request,
            _("WeCom allows 3 reminders per broadcast in 24 hours: %(n)s not reminded.")
            % {"n": outcome.at_limit},
        )
    for error in outcome.errors:
        messages.error(request, error)
    return redirect("campaigns:detail", broadcast_pk=broadcast.pk)


@corp_view(Role.ADMIN)
def campaign_settings(request: HttpRequest) -> HttpResponse:
    corp = _corp(request)
    current = selectors.settings_get(corp=corp)
    if request.method == "POST":
        form = SettingsForm(request.POST, corp=corp)
        if form.is_valid():
            d = form.cleaned_data
            try:
                services.settings_save(
                    corp=corp,
                    quota_rule=d["quota_rule"],
                    churn_threshold=d["churn_threshold"],
                    approval_required=d["approval_required"],
                    dnd_tag=d["dnd_tag"],
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _("Broadcast rules saved."))
                return redirect("campaigns:settings")
    else:
        form = SettingsForm(
            corp=corp,
            initial={
                "quota_rule": current.quota_rule,
                "churn_threshold": current.churn_threshold,
                "approval_required": current.approval_required,
                "dnd_tag": current.dnd_tag_id,
            },
        )
    return render(request, "campaigns/settings.html", {"form": form, "campaign_settings": current})


@corp_view(Role.ADMIN)
@require_POST
def churn_resume(request: HttpRequest) -> HttpResponse:
    services.churn_resume(corp=_corp(request))
    messages.success(request, _("Broadcasts resumed."))
    return redirect("campaigns:list")
