from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from scrm.tenancy.models import Corp, Membership


def membership_list(*, user: User | AnonymousUser) -> QuerySet[Membership]:
    if not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user=user).select_related("corp").order_by("corp__name")


def membership_get(*, user: User | AnonymousUser, corp_pk: int | None) -> Membership | None:
    """The user's membership in corp_pk, or their first one when corp_pk is unknown or not theirs."""
    memberships = membership_list(user=user)
    if corp_pk is not None:
        chosen = memberships.filter(corp_id=corp_pk).first()
        if chosen is not None:
            return chosen
    return memberships.first()


def corp_get_by_corp_id(*, corp_id: str) -> Corp | None:
    """The corp a callback is addressed to, with only what the callback path needs (hot path)."""
    fields = ("pk", "corp_id", "agent_id", "callback_token", "encoding_aes_key")
    return Corp.objects.only(*fields).filter(corp_id=corp_id).first()
