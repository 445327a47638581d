from __future__ import annotations

from typing import Any

from django import template

from scrm.customers.selectors import TagGroupTags, tag_groups_for_picker

register = template.Library()


@register.simple_tag(takes_context=True)
def corp_tag_groups(context: template.Context) -> list[TagGroupTags]:
    """The current corp's live tags by group, for `_follow_tags.html`: the page's `tag_groups` when it has
    them, else read once per request (a customer page includes the partial once per follow)."""
    given: Any = context.get("tag_groups")
    if given is not None:
        return list(given)
    request = context.get("request")
    corp = getattr(request, "corp", None)
    if corp is None:
        return []
    cached: list[TagGroupTags] | None = getattr(request, "_corp_tag_groups", None)
    if cached is None:
        cached = tag_groups_for_picker(corp=corp)
        request._corp_tag_groups = cached  # type: ignore[union-attr]
    return cached
