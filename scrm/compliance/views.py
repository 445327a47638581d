"""The sensitive-word page: built-in words, the corp's own words and patterns, the policy, a try-out box."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from scrm.compliance import selectors, services
from scrm.compliance.forms import CorpWordForm, PolicyForm, TryForm
from scrm.compliance.models import CorpWord
from scrm.tenancy.models import Corp, Role
from scrm.tenancy.permissions import corp_view


def _corp(request: HttpRequest) -> Corp:
    corp: Corp = request.corp  # type: ignore[attr-defined]
    return corp


def _try_context(corp: Corp, form: TryForm) -> dict[str, Any]:
    if not form.is_bound or not form.is_valid():
        return {"try_form": form}
    text: str = form.cleaned_data["text"]
    return {
        "try_form": form,
        "tried": True,
        "highlighted": services.content_highlight(corp=corp, text=text),
        "result": services.content_gate(corp=corp, texts=[text]),
    }


def _page(
    request: HttpRequest,
    *,
    word_form: CorpWordForm | None = None,
    policy_form: PolicyForm | None = None,
    try_form: TryForm | None = None,
    status: int = 200,
) -> HttpResponse:
    corp = _corp(request)
    action = selectors.gate_policy_action(corp=corp)
    context: dict[str, Any] = {
        "categories": selectors.default_categories(),
        "corp_words": selectors.corp_word_list(corp=corp),
        "word_form": word_form or CorpWordForm(),
        "policy_form": policy_form or PolicyForm(initial={"action": action}),
        "policy_action": action,
        **_try_context(corp, try_form or TryForm()),
    }
    return render(request, "compliance/words.html", context, status=status)


@require_safe
@corp_view(Role.ADMIN)
def words(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_POST
@corp_view(Role.ADMIN)
def word_add(request: HttpRequest) -> HttpResponse:
    form = CorpWordForm(request.POST)
    if form.is_valid():
        try:
            row = services.corp_word_add(
                corp=_corp(request), word=form.cleaned_data["word"], user=cast(User, request.user)
            )
        except ValidationError as exc:
            form.add_error("word", exc)
        else:
            messages.success(request, _("“%(word)s” added.") % {"word": row.word})
            return redirect("compliance:words")
    return _page(request, word_form=form, status=400)


@require_POST
@corp_view(Role.ADMIN)
def word_delete(request: HttpRequest, word_pk: int) -> HttpResponse:
    try:
        services.corp_word_delete(corp=_corp(request), word_pk=word_pk)
    except CorpWord.DoesNotExist as exc:
        raise Http404 from exc
    messages.success(request, _("Word removed."))
    return redirect("compliance:words")


@require_POST
@corp_view(Role.ADMIN)
def policy_set(request: HttpRequest) -> HttpResponse:
    form = PolicyForm(request.POST)
    if form.is_valid():
        services.gate_policy_set(
            corp=_corp(request), action=form.cleaned_data["action"], user=cast(User, request.user)
        )
        messages.success(request, _("Setting saved."))
        return redirect("compliance:words")
    return _page(request, policy_form=form, status=400)


@require_POST
@corp_view(Role.ADMIN)
def try_text(request: HttpRequest) -> HttpResponse:
    """The text with its sensitive words marked: a fragment for htmx, else the whole page."""
    form = TryForm(request.POST)
    status = 200 if form.is_valid() else 400
    if getattr(request, "htmx", False):
        return render(request, "compliance/_try.html", _try_context(_corp(request), form), status=status)
    return _page(request, try_form=form, status=status)
