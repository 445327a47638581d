"""Dashboard pages for corp tags: the tag admin page, tags on one follow, bulk marking and its progress."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST, require_safe
from kombu.exceptions import OperationalError

from scrm.core.wecom import wecom_error_text, wecom_lang
from scrm.customers import tag_services as services
from scrm.customers.models import BulkTagJob, Follow, Member, Tag, TagGroup
from scrm.customers.selectors import FilterError, tag_groups_for_picker
from scrm.customers.tag_services import NAME_MAX, TAG_CAP, TagChangeRefused
from scrm.tenancy.models import Corp, Role
from scrm.tenancy.permissions import corp_view
from wecom.errors import WeComError

# A job not heard from for this long may have lost its queue message: the page offers to start it again.
STALE_AFTER = timedelta(minutes=5)


def _split_names(raw: str) -> list[str]:
    return [n for n in re.split(r"[\n,，、]", raw or "") if n.strip()]


class GroupCreateForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Group name"), max_length=NAME_MAX)
    tags = forms.CharField(
        label=gettext_lazy("Tags"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("One per line, or separated by commas. A group needs at least one tag."),
    )


class NameForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=NAME_MAX)


class TagCreateForm(forms.Form):
    names = forms.CharField(label=gettext_lazy("New tags"), max_length=1000)


def _corp(request: HttpRequest) -> Corp:
    return request.corp  # type: ignore[attr-defined]


def _list_context(request: HttpRequest, form: GroupCreateForm | None = None) -> dict[str, Any]:
    corp = _corp(request)
    return {
        "groups": tag_groups_for_picker(corp=corp),
        "is_admin": request.membership.has_role(Role.ADMIN),  # type: ignore[attr-defined]
        "live_count": Tag.objects.filter(corp=corp, deleted=False).count(),
        "tag_cap": TAG_CAP,
        "name_max": NAME_MAX,
        "create_form": form or GroupCreateForm(),
        "jobs": services.bulk_job_list(corp=corp),
    }


@require_safe
@corp_view()
def tag_list(request: HttpRequest) -> HttpResponse:
    return render(request, "customers/tags.html", _list_context(request))


def _to_list(anchor: str = "") -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("tags:list") + (f"#{anchor}" if anchor else ""))


def _attempt(request: HttpRequest, action: Callable[[], str]) -> bool:
    """Runs one admin action; its success text or the reason it failed becomes a message."""
    try:
        messages.success(request, action())
        return True
    except TagChangeRefused as exc:
        messages.error(request, exc.message)
    except WeComError as exc:
        messages.error(request, wecom_error_text(exc))
    return False


@require_POST
@corp_view(Role.ADMIN)
def group_create(request: HttpRequest) -> HttpResponse:
    form = GroupCreateForm(request.POST)
    if form.is_valid():
        try:
            group = services.tag_group_create(
                corp=_corp(request),
                name=form.cleaned_data["name"],
                tag_names=_split_names(form.cleaned_data["tags"]),
            )
        except TagChangeRefused as exc:
            form.add_error(None, exc.message)
        except WeComError as exc:
            form.add_error(None, wecom_error_text(exc))
        else:
            messages.success(request, _("Tag group “%(name)s” created in WeCom.") % {"name": group.name})
            return _to_list(f"group-{group.pk}")
    return render(request, "customers/tags.html", _list_context(request, form), status=400)


def _group(request: HttpRequest, tag_group_pk: int) -> TagGroup:
    return get_object_or_404(TagGroup, corp=_corp(request), pk=tag_group_pk, deleted=False)


def _tag(request: HttpRequest, tag_pk: int) -> Tag:
    return get_object_or_404(
        Tag.objects.select_related("group"), corp=_corp(request), pk=tag_pk, deleted=False
    )


def _form_name(request: HttpRequest) -> str:
    form = NameForm(request.POST)
    if not form.is_valid():
        raise TagChangeRefused(" ".join(str(e) for e in form.errors.get("name", [])))
    return str(form.cleaned_data["name"])


@require_POST
@corp_view(Role.ADMIN)
def group_edit(request: HttpRequest, tag_group_pk: int) -> HttpResponse:
    group = _group(request, tag_group_pk)

    def rename() -> str:
        renamed = services.tag_group_edit(corp=_corp(request), group=group, name=_form_name(request))
        return _("Tag group renamed to “%(name)s”.") % {"name": renamed.name}

    _attempt(request, rename)
    return _to_list(f"group-{group.pk}")


@require_POST
@corp_view(Role.ADMIN)
def group_move(request: HttpRequest, tag_group_pk: int) -> HttpResponse:
    group = _group(request, tag_group_pk)

    def move() -> str:
        services.tag_move(corp=_corp(request), item=group, direction=request.POST.get("direction", ""))
        return _("Order saved.")

    _attempt(request, move)
    return _to_list(f"group-{group.pk}")


@require_POST
@corp_view(Role.ADMIN)
def group_delete(request: HttpRequest, tag_group_pk: int) -> HttpResponse:
    group = _group(request, tag_group_pk)

    def delete() -> str:
        services.tag_group_delete(corp=_corp(request), group=group)
        return _("Tag group “%(name)s” deleted.") % {"name": group.name}

    _attempt(request, delete)
    return _to_list()


@require_POST
@corp_view(Role.ADMIN)
def tag_create(request: HttpRequest, tag_group_pk: int) -> HttpResponse:
    group = _group(request, tag_group_pk)

    def create() -> str:
        form = TagCreateForm(request.POST)
        if not form.is_valid():
            raise TagChangeRefused(" ".join(str(e) for e in form.errors.get("names", [])))
        tags = services.tag_create(
            corp=_corp(request), group=group, names=_split_names(form.cleaned_data["names"])
        )
        return _("Added %(names)s to “%(group)s”.") % {
            "names": "、".join(t.name for t in tags),
            "group": group.name,
        }

    _attempt(request, create)
    return _to_list(f"group-{group.pk}")


@require_POST
@corp_view(Role.ADMIN)
def tag_edit(request: HttpRequest, tag_pk: int) -> HttpResponse:
    tag = _tag(request, tag_pk)

    def rename() -> str:
        renamed = services.tag_edit(corp=_corp(request), tag=tag, name=_form_name(request))
        return _("Tag renamed to “%(name)s”.") % {"name": renamed.name}

    _attempt(request, rename)
    return _to_list(f"group-{tag.group_id}")


@require_POST
@corp_view(Role.ADMIN)
def tag_move(request: HttpRequest, tag_pk: int) -> HttpResponse:
    tag = _tag(request, tag_pk)

    def move() -> str:
        services.tag_move(corp=_corp(request), item=tag, direction=request.POST.get("direction", ""))
        return _("Order saved.")

    _attempt(request, move)
    return _to_list(f"group-{tag.group_id}")


@require_POST
@corp_view(Role.ADMIN)
def tag_delete(request: HttpRequest, tag_pk: int) -> HttpResponse:
    tag = _tag(request, tag_pk)

    def delete() -> str:
        services.tag_delete(corp=_corp(request), tag=tag)
        return _("Tag “%(name)s” deleted.") % {"name": tag.name}

    _attempt(request, delete)
    return _to_list(f"group-{tag.group_id}")


@require_POST
@corp_view(Role.ADMIN)
def tags_sync(request: HttpRequest) -> HttpResponse:
    def sync() -> str:
        services.tags_resync(corp=_corp(request))
        return _("Tags re-read from WeCom.")

    _attempt(request, sync)
    return _to_list()


# -- tags on follows ------------------------------------------------------------------------------


def _tags_from(corp: Corp, raw: list[str]) -> list[Tag]:
    """Tags named by pk in a form; any pk that isn't one of the corp's tags is refused."""
    try:
        pks = {int(v) for v in raw if str(v).strip()}
    except ValueError as exc:
        raise TagChangeRefused(_("Choose tags from the list.")) from exc
    tags = list(Tag.objects.filter(corp=corp, pk__in=pks))
    if len(tags) != len(pks):
        raise TagChangeRefused(_("One of the chosen tags no longer exists. Reload the page and try again."))
    return tags


def _back(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    target = request.POST.get("next") or request.headers.get("referer", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = fallback
    return HttpResponseRedirect(target)


@require_POST
@corp_view(Role.OPERATOR)
def follow_tags(request: HttpRequest, follow_pk: int) -> HttpResponse:
    """Marks / unmarks tags on one follow; answers the refreshed `_follow_tags.html` partial to htmx."""
    corp = _corp(request)
    follow = get_object_or_404(Follow.objects.select_related("member", "customer"), corp=corp, pk=follow_pk)
    error = notice = ""
    try:
        changed = services.follow_tags_change(
            corp=corp,
            follow=follow,
            add=_tags_from(corp, request.POST.getlist("add")),
            remove=_tags_from(corp, request.POST.getlist("remove")),
            user=request.user,
        )
        notice = _("Tags saved in WeCom.") if changed else _("Nothing to change.")
    except TagChangeRefused as exc:
        error = exc.message
    except WeComError as exc:
        error = wecom_error_text(exc)
    follow.refresh_from_db()
    if request.htmx:  # type: ignore[attr-defined]
        # 200 either way: htmx swaps only successful answers, and the error is part of the partial.
        context = {
            "follow": follow,
            "tag_groups": tag_groups_for_picker(corp=corp),
            "error": error,
            "notice": notice,
        }
        return render(request, "customers/_follow_tags.html", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return _back(request, reverse("customers:detail", kwargs={"customer_pk": follow.customer_id}))


# -- bulk -----------------------------------------------------------------------------------------


def _customer_list_url(params: dict[str, list[str]]) -> str:
    query = urlencode(params, doseq=True)
    return reverse("customers:list") + (f"?{query}" if query else "")


@require_POST
@corp_view(Role.OPERATOR)
def bulk(request: HttpRequest) -> HttpResponse:
    """Queues marking / unmarking on every live follow of the customers the list filter selects."""
    corp = _corp(request)
    params = services.filter_params_of(request.POST)
    try:
        member = None
        if request.POST.get("member"):
            member_pk = _int_or_none(request.POST["member"])
            member = Member.objects.filter(corp=corp, pk=member_pk).first() if member_pk is not None else None
            if member is None:
                raise TagChangeRefused(_("Choose a member from the list."))
        job = services.tag_bulk_job_create(
            corp=corp,
            user=request.user,
            filter_params=request.POST,
            add=_tags_from(corp, request.POST.getlist("add")),
            remove=_tags_from(corp, request.POST.getlist("remove")),
            member=member,
        )
    except (TagChangeRefused, FilterError) as exc:
        messages.error(request, exc.message if isinstance(exc, TagChangeRefused) else str(exc))
        return HttpResponseRedirect(_customer_list_url(params))
    messages.success(request, _("Bulk tagging started."))
    return redirect("tags:job", job_pk=job.pk)


def _int_or_none(raw: str) -> int | None:
    try:
        return int(raw)
    except ValueError:
        return None


def _job(request: HttpRequest, job_pk: int) -> BulkTagJob:
    return get_object_or_404(
        BulkTagJob.objects.select_related("member", "created_by"), corp=_corp(request), pk=job_pk
    )


def _names(corp: Corp, pks: list[int]) -> QuerySet[Tag]:
    return Tag.objects.filter(corp=corp, pk__in=pks).order_by("name")


@require_safe
@corp_view()
def job_detail(request: HttpRequest, job_pk: int) -> HttpResponse:
    """The job's progress; the progress block polls itself with htmx until the job ends."""
    corp = _corp(request)
    job = _job(request, job_pk)
    total = job.total or 0
    percent = (
        100
        if job.status == BulkTagJob.Status.DONE
        else (min(100, 100 * job.processed // total) if total else 0)
    )
    filter_query = QueryDict(mutable=True)
    for key, values in job.filter_params.items():
        filter_query.setlist(key, values)
    return render(
        request,
        "customers/tag_job.html",
        {
            "job": job,
            "percent": percent,
            "add_tags": _names(corp, job.add_tag_ids),
            "remove_tags": _names(corp, job.remove_tag_ids),
            "errors": services.bulk_job_errors(job=job, lang=wecom_lang()),
            "stop_message": _stop_message(job),
            "stop_errcode": job.stop_reason if job.stop_reason.lstrip("-").isdigit() else "",
            "customers_url": _customer_list_url(services.filter_params_of(filter_query)),
            "stale": not job.finished and job.updated_at < timezone.now() - STALE_AFTER,
            "can_operate": request.membership.has_role(Role.OPERATOR),  # type: ignore[attr-defined]
        },
    )


def _stop_message(job: BulkTagJob) -> str:
    from wecom.messages import message_for

    if not job.stop_reason:
        return ""
    key: int | str = int(job.stop_reason) if job.stop_reason.lstrip("-").isdigit() else job.stop_reason
    return message_for(key, wecom_lang())


@require_POST
@corp_view(Role.OPERATOR)
def job_cancel(request: HttpRequest, job_pk: int) -> HttpResponse:
    job = _job(request, job_pk)
    if services.tag_bulk_job_cancel(corp=_corp(request), job=job):
        messages.success(request, _("Cancelled. Tags already marked stay marked."))
    return redirect("tags:job", job_pk=job.pk)


@require_POST
@corp_view(Role.OPERATOR)
def job_resume(request: HttpRequest, job_pk: int) -> HttpResponse:
    job = _job(request, job_pk)
    try:
        services.tag_bulk_job_resume(corp=_corp(request), job=job)
        messages.success(request, _("Started again; it carries on after the last customer done."))
    except OperationalError:  # the broker is unreachable: say so rather than fail the page
        messages.error(request, _("The task queue can't be reached right now. Try again in a minute."))
    return redirect("tags:job", job_pk=job.pk)
