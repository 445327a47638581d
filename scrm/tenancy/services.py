from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from scrm.tenancy.models import Corp, Membership, Role


@transaction.atomic
def corp_create(
    *,
    user: AbstractBaseUser,
    name: str,
    corp_id: str,
    agent_id: int,
    secret: str,
    callback_token: str,
    encoding_aes_key: str,
    api_base: str = "",
) -> Corp:
    """Connects a corp; the person who connects it becomes its first admin."""
    corp = Corp.objects.create(
        name=name,
        corp_id=corp_id,
        agent_id=agent_id,
        secret=secret,
        callback_token=callback_token,
        encoding_aes_key=encoding_aes_key,
        api_base=api_base,
    )
    Membership.objects.create(user=user, corp=corp, role=Role.ADMIN)
    return corp


def corp_update(
    *,
    corp: Corp,
    name: str,
    agent_id: int,
    secret: str = "",
    callback_token: str = "",
    encoding_aes_key: str = "",
    api_base: str = "",
) -> Corp:
    """Updates a corp's settings. Blank secrets keep the stored ones (they are never shown back)."""
    corp.name = name
    corp.agent_id = agent_id
    corp.api_base = api_base
    fields = ["name", "agent_id", "api_base", "updated_at"]
    for field, value in (
        ("secret", secret),
        ("callback_token", callback_token),
        ("encoding_aes_key", encoding_aes_key),
    ):
        if value:
            setattr(corp, field, value)
            fields.append(field)
    corp.save(update_fields=fields)
    return corp


def membership_set(*, corp: Corp, user: AbstractBaseUser, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(corp=corp, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def membership_add(*, corp: Corp, username: str, password: str, role: str) -> Membership:
    """Adds a teammate to the corp; creates the account when the username is new."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        user = user_model.objects.create_user(username=username, password=password)
    return membership_set(corp=corp, user=user, role=role)


class LastAdminError(Exception):
    pass


@transaction.atomic
def membership_remove(*, corp: Corp, membership_pk: int) -> None:
    """Removes a teammate. A membership of another corp is simply not found (isolation)."""
    admins = list(Membership.objects.select_for_update().filter(corp=corp, role=Role.ADMIN))
    membership = Membership.objects.filter(corp=corp, pk=membership_pk).first()
    if membership is None:
        raise Membership.DoesNotExist
    if membership.role == Role.ADMIN and len(admins) <= 1:
        raise LastAdminError
    membership.delete()
