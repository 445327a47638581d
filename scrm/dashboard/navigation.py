"""The dashboard's sections. A section whose page doesn't exist yet is drawn greyed out."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Section:
    label: str | Promise
    url_name: str
    icon: str
    admin_only: bool = False


SECTIONS: tuple[Section, ...] = (
    Section(_("Overview"), "dashboard:home", "◉"),
    Section(_("Customers"), "customers:list", "☺"),
    Section(_("Tags"), "tags:list", "#"),
    Section(_("Groups"), "groups:list", "◎"),
    Section(_("Channel codes"), "acquisition:codes", "▣"),
    Section(_("Group codes"), "groupcodes:list", "▦"),
    Section(_("Broadcasts"), "campaigns:list", "✉"),
    Section(_("Succession"), "succession:list", "⇄", admin_only=True),
    Section(_("Events"), "callbacks:inbox", "≡"),
    Section(_("Sensitive words"), "compliance:words", "⚠", admin_only=True),
    Section(_("Corp settings"), "tenancy:corp_settings", "⚙", admin_only=True),
    Section(_("Team"), "tenancy:team", "♟", admin_only=True),
)


def resolve_sections(*, is_admin: bool, current_path: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    for section in SECTIONS:
        if section.admin_only and not is_admin:
            continue
        try:
            url: str | None = reverse(section.url_name)
        except NoReverseMatch:
            url = None
        active = url is not None and (current_path == url or (url != "/" and current_path.startswith(url)))
        items.append({"label": section.label, "url": url, "icon": section.icon, "active": active})
    return items
