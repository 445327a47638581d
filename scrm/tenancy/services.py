from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction

from scrm.core.wecom import wecom_lang
from scrm.tenancy.models import Corp, Membership, Role


@transaction.atomic
def corp_create(
    *,
    user: User,
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


def membership_set(*, corp: Corp, user: User, role: str) -> Membership:
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


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    message: str
    errcode: int | None = None


def corp_test_connection(*, corp: Corp) -> ConnectionResult:
    """Fetches an access token and the members with customer-contact permission; says what is wrong."""
    from django.utils import timezone
    from django.utils.translation import gettext as _

    from scrm.core.wecom import wecom_client
    from wecom.errors import WeComError

    client = wecom_client(corp=corp, lane="events")
    lang = wecom_lang()
    try:
        client.tokens.get()
        follow_users = client.get_follow_user_list().get("follow_user", [])
    except WeComError as exc:
        message = exc.message(lang)
        code = f" (errcode {exc.errcode})" if exc.errcode is not None else ""
        corp.last_connection_error = f"{message}{code}"[:300]
        corp.save(update_fields=["last_connection_error"])
        return ConnectionResult(ok=False, message=corp.last_connection_error, errcode=exc.errcode)
    corp.last_connection_ok_at = timezone.now()
    corp.last_connection_error = ""
    corp.save(update_fields=["last_connection_ok_at", "last_connection_error"])
    return ConnectionResult(
        ok=True,
        message=_("Connected. %(n)d members have customer-contact permission.") % {"n": len(follow_users)},
    )


class SandboxUnavailable(Exception):
    pass


def corp_create_in_sandbox(*, user: User, name: str, sandbox_url: str, public_base_url: str) -> Corp:
    """One click: a new corp in the local WeCom sandbox, seeded with members, customers, tags and groups,
    connected here with fresh credentials. For demos and evaluation without a real corp."""
    import secrets
    import string

    import httpx

    alphabet = string.ascii_letters + string.digits
    corp_id = "ww" + secrets.token_hex(8)
    secret = "".join(secrets.choice(alphabet) for _ in range(43))
    token = "".join(secrets.choice(alphabet) for _ in range(24))
    aes_key = "".join(secrets.choice(alphabet) for _ in range(43))
    agent_id = 1000002
    callback_url = f"{public_base_url.rstrip('/')}/wecom/callback/{corp_id}/"
    body = {
        "corp_id": corp_id,
        "name": name,
        "agent_id": agent_id,
        "secret": secret,
        "token": token,
        "encoding_aes_key": aes_key,
        "callback_url": callback_url,
        "seed": {"members": 8, "customers": 200, "tag_groups": 3, "groups": 4, "join_ways": 1},
    }
    try:
        response = httpx.post(f"{sandbox_url.rstrip('/')}/sandbox/corps", json=body, timeout=30)
        response.raise_for_status()
        api_base = response.json().get("api_base") or f"{sandbox_url.rstrip('/')}/cgi-bin/"
    except (httpx.HTTPError, ValueError) as exc:
        raise SandboxUnavailable(str(exc)) from exc
    return corp_create(
        user=user,
        name=name,
        corp_id=corp_id,
        agent_id=agent_id,
        secret=secret,
        callback_token=token,
        encoding_aes_key=aes_key,
        api_base=api_base,
    )
