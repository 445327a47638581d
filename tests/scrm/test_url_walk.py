"""Walks every URL pattern of the project as charlie (admin of corp B) and checks corp A stays out of reach.

New views join automatically: a view that declares no access rule, or a URL argument this walk can't fill
with one of corp A's objects, fails the walk until it is handled here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.admin.sites import site as admin_site
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from scrm.acquisition.models import ChannelCode, WelcomeAttachment, WelcomeScript, WelcomeVariant
from scrm.campaigns.models import Broadcast, BroadcastAttachment
from scrm.compliance.models import CorpWord
from scrm.core.api import IsCorpMember
from scrm.customers.models import BulkTagJob, Customer, Follow, Member, Tag, TagGroup
from scrm.groupcodes.models import GroupCode, GroupWelcomeTemplate, PoolGroup
from scrm.succession.models import Handover
from scrm.tenancy.middleware import SESSION_CORP_KEY
from scrm.tenancy.models import Corp, Membership, Role
from tests.conftest import World, client_for

# URL argument → the value that points at corp A's data. Add an entry when a view takes a new argument.
KWARG_FACTORIES: dict[str, Callable[[World], Any]] = {
    "word_pk": lambda w: (
        CorpWord.objects.get_or_create(corp=w.corp_a, key="walk", defaults={"word": "walk"})[0].pk
    ),
    "corp_id": lambda w: w.corp_a.corp_id,
    "membership_pk": lambda w: Membership.objects.get(corp=w.corp_a, user=w.bob).pk,
    "tag_group_pk": lambda w: (
        TagGroup.objects.get_or_create(corp=w.corp_a, group_id="walk-g", name="walk")[0].pk
    ),
    "tag_pk": lambda w: (
        Tag.objects.get_or_create(
            corp=w.corp_a, tag_id="walk-t", name="walk", group_id=KWARG_FACTORIES["tag_group_pk"](w)
        )[0].pk
    ),
    "follow_pk": lambda w: (
        Follow.objects.get_or_create(
            corp=w.corp_a,
            customer=Customer.objects.get_or_create(corp=w.corp_a, external_userid="wmWalk")[0],
            member=Member.objects.get_or_create(corp=w.corp_a, userid="walker")[0],
        )[0].pk
    ),
    "job_pk": lambda w: BulkTagJob.objects.create(corp=w.corp_a).pk,
    "customer_pk": lambda w: Customer.objects.get_or_create(corp=w.corp_a, external_userid="wmWalk")[0].pk,
    "group_pk": lambda w: w.corp_a.customer_groups.get_or_create(chat_id="wrWALK", name="wrWALK")[0].pk,
    "event_pk": lambda w: (
        w.corp_a.inbox_events.get_or_create(
            digest="walk", kind="x", lane="events", payload="", event_time=0, received_at=w.corp_a.created_at
        )[0].pk
    ),
    "code_pk": lambda w: ChannelCode.objects.get_or_create(corp=w.corp_a, state="walk", name="walk")[0].pk,
    "script_pk": lambda w: WelcomeScript.objects.get_or_create(corp=w.corp_a, name="walk")[0].pk,
    "variant_pk": lambda w: (
        WelcomeVariant.objects.get_or_create(
            corp=w.corp_a, script_id=KWARG_FACTORIES["script_pk"](w), start_time="09:00", end_time="18:00"
        )[0].pk
    ),
    "attachment_pk": lambda w: (
        WelcomeAttachment.objects.get_or_create(
            corp=w.corp_a, script_id=KWARG_FACTORIES["script_pk"](w), kind="link", title="walk"
        )[0].pk
    ),
    "broadcast_pk": lambda w: Broadcast.objects.get_or_create(corp=w.corp_a, name="walk")[0].pk,
    "battachment_pk": lambda w: (
        BroadcastAttachment.objects.get_or_create(
            corp=w.corp_a, broadcast_id=KWARG_FACTORIES["broadcast_pk"](w), kind="link", title="walk"
        )[0].pk
    ),
    "handover_pk": lambda w: (
        Handover.objects.create(
            corp=w.corp_a,
            kind="resigned",
            member=Member.objects.get_or_create(corp=w.corp_a, userid="walker")[0],
        ).pk
    ),
    "gcode_pk": lambda w: GroupCode.objects.get_or_create(corp=w.corp_a, slug="walk-gc", name="walk")[0].pk,
    "entry_pk": lambda w: (
        PoolGroup.objects.get_or_create(
            corp=w.corp_a,
            code_id=KWARG_FACTORIES["gcode_pk"](w),
            group=w.corp_a.customer_groups.get_or_create(chat_id="wrWALK", name="wrWALK")[0],
        )[0].pk
    ),
    "template_pk": lambda w: GroupWelcomeTemplate.objects.get_or_create(corp=w.corp_a, name="walk")[0].pk,
    # /g/<slug>/ is a public page by design (an unguessable slug shows one QR image and the code's name):
    # the walk checks an unknown slug is refused; tests/scrm/groupcodes check a known one shows no corp data.
    "slug": lambda w: "walk-no-such-code",
}
# Arguments that name the tenant itself in a public, signature-authenticated URL (not an object lookup).
TENANT_NAMING_KWARGS = {"corp_id"}

CORP_A_MARKERS = ("甲公司 Alpha", "wwalpha000000001", "alice", "victor", "secret-of-", "wmWalk", "wrWALK")


@dataclass(frozen=True)
class Route:
    pattern: str
    name: str
    callback: Callable[..., Any]
    converters: tuple[str, ...]


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if entry.app_name == "admin" or entry.namespace == "admin":
                continue  # Django admin: checked separately below
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            converters = tuple(getattr(entry.pattern, "converters", {}).keys())
            yield Route(
                prefix + str(entry.pattern), namespace + (entry.name or ""), entry.callback, converters
            )


def all_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns))


def _build_path(route: Route, world: World) -> str:
    import re

    path = route.pattern
    for arg in route.converters:
        if arg not in KWARG_FACTORIES:
            pytest.fail(f"URL {route.pattern!r} ({route.name}) takes {arg!r}: add it to KWARG_FACTORIES")
        value = KWARG_FACTORIES[arg](world)
        path = re.sub(r"<(?:\w+:)?" + arg + ">", str(value), path)
    assert "<" not in path, path
    return "/" + path.lstrip("^").rstrip("$")


def _rule(route: Route) -> str:
    cb = route.callback
    if getattr(cb, "public_view", False):
        return "public"
    if getattr(cb, "user_view", False):
        return "user"
    if getattr(cb, "corp_role", None):
        return "corp"
    view_cls = getattr(cb, "cls", None)
    if view_cls is not None and issubclass(view_cls, APIView):
        perms = view_cls.permission_classes
        if any(issubclass(p, IsCorpMember) for p in perms):
            return "api"
    return "none"


def _corp_a_fingerprint(world: World) -> tuple[Any, ...]:
    corp = Corp.objects.get(pk=world.corp_a.pk)
    members = tuple(Membership.objects.filter(corp=corp).order_by("pk").values_list("pk", "user_id", "role"))
    return (corp.name, corp.agent_id, corp.secret, corp.callback_token, corp.api_base, members)


def test_every_view_declares_an_access_rule() -> None:
    unmarked = [f"{r.pattern} ({r.name})" for r in all_routes() if _rule(r) == "none"]
    assert not unmarked, f"views without corp_view / user_view / public_view / IsCorpMember: {unmarked}"


@pytest.mark.django_db
def test_charlie_cannot_read_or_change_corp_a(world: World) -> None:
    charlie = client_for(world.charlie)
    # Even a session that claims corp A must not give charlie corp A.
    session = charlie.session
    session[SESSION_CORP_KEY] = world.corp_a.pk
    session.save()
    before = _corp_a_fingerprint(world)
    walked = 0
    for route in all_routes():
        if route.name == "logout":
            continue  # signing charlie out would walk the rest of the URLs anonymously
        path = _build_path(route, world)
        object_args = [a for a in route.converters if a not in TENANT_NAMING_KWARGS]
        for method in ("get", "post"):
            response = getattr(charlie, method)(path)
            walked += 1
            assert response.status_code < 500, (method, path, response.status_code)
            if object_args:
                assert response.status_code in (403, 404, 405), (method, path, response.status_code)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            text = body.decode("utf-8", "replace")
            for marker in CORP_A_MARKERS:
                assert marker not in text, (method, path, marker)
    assert _corp_a_fingerprint(world) == before
    assert walked >= 2 * (len(all_routes()) - 1)


@pytest.mark.django_db
@pytest.mark.parametrize("username,below", [("bob", Role.ADMIN), ("victor", Role.OPERATOR)])
def test_roles_below_the_required_one_are_refused(world: World, username: str, below: str) -> None:
    client = client_for(getattr(world, username))
    before = _corp_a_fingerprint(world)
    checked = 0
    rank = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}
    for route in all_routes():
        role = getattr(route.callback, "corp_role", None)
        if role is None or rank[Role(role)] < rank[Role(below)]:
            continue
        path = _build_path(route, world)
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            assert response.status_code in (403, 405), (username, method, path, response.status_code)
            checked += 1
    assert _corp_a_fingerprint(world) == before
    assert checked > 0


@pytest.mark.django_db
def test_anonymous_is_sent_to_login_everywhere_but_public_views(world: World) -> None:
    anonymous = Client()
    for route in all_routes():
        rule = _rule(route)
        path = _build_path(route, world)
        response = anonymous.get(path)
        if rule in ("corp", "user"):
            if response.status_code == 405:  # POST-only views refuse GET before asking who you are
                response = anonymous.post(path)
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], path
        elif rule == "api":
            assert response.status_code in (401, 403), path


@pytest.mark.django_db
def test_django_admin_is_staff_only(world: World) -> None:
    charlie = client_for(world.charlie)
    for model in admin_site._registry:
        opts = model._meta
        url = f"/admin/{opts.app_label}/{opts.model_name}/"
        response = charlie.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url


@pytest.mark.django_db
def test_admin_never_shows_corp_secrets(world: World) -> None:
    from django.contrib.auth.models import User

    User.objects.create_superuser("root-admin", "r@example.com", "pw-Adm1n-long-enough")
    client = Client()
    client.login(username="root-admin", password="pw-Adm1n-long-enough")
    response = client.get(f"/admin/tenancy/corp/{world.corp_a.pk}/change/")
    assert response.status_code == 200
    assert b"secret-of-" not in response.content
    assert world.corp_a.callback_token.encode() not in response.content
