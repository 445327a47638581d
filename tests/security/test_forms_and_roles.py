"""CSRF on every dashboard POST, and roles: a viewer can't change anything, on the dashboard or the API.

Routes are discovered from the URL configuration (tests/scrm/test_url_walk.py), so new views are covered
as they are added; the roles a view needs are read from its corp_view mark (scrm/tenancy/permissions.py)
and, for the API, from IsCorpMember's write_role.
"""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.views import APIView

from scrm.customers.models import BulkTagJob, Tag, TagGroup
from scrm.tenancy.models import Role
from tests.api.fixtures import Tokens, api_client
from tests.conftest import World
from tests.scrm.test_url_walk import (
    Route,
    _build_path,
    _corp_a_fingerprint,
    _rule,
    all_routes,
)

pytestmark = pytest.mark.django_db


def _is_api(route: Route) -> bool:
    return route.pattern.startswith("api/")


def _dashboard_routes() -> list[Route]:
    return [r for r in all_routes() if _rule(r) in ("corp", "user") and not _is_api(r)]


def _csrf_client(world: World, user_name: str) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(getattr(world, user_name))
    return client


def test_every_dashboard_post_without_a_csrf_token_is_refused(world: World) -> None:
    """Alice (admin, so no role check stands in front) posts to every dashboard view without a token."""
    alice = _csrf_client(world, "alice")
    before = _corp_a_fingerprint(world)
    refused = 0
    for route in _dashboard_routes():
        response = alice.post(_build_path(route, world), {"name": "csrf", "confirm": "1"})
        if response.status_code == 405:
            continue  # GET-only view
        assert response.status_code == 403, (route.pattern, response.status_code)
        refused += 1
    # The login, logout and language forms too: public, but state-changing.
    anonymous = Client(enforce_csrf_checks=True)
    for path in ("/accounts/login/", "/i18n/setlang/"):
        assert (
            anonymous.post(path, {"username": "alice", "password": "x", "language": "en"}).status_code == 403
        )
    assert alice.post("/accounts/logout/").status_code == 403
    assert _corp_a_fingerprint(world) == before
    assert refused >= 15


def test_the_api_needs_a_csrf_token_with_a_session_but_not_with_a_token(world: World, tokens: Tokens) -> None:
    alice = _csrf_client(world, "alice")
    assert alice.post("/api/v1/sync/start/").status_code == 403  # session auth: CSRF applies
    with_token = api_client(tokens.victor, enforce_csrf_checks=True)
    assert with_token.post("/api/v1/sync/start/").status_code == 403  # …and a viewer's token can't start it
    assert api_client(tokens.alice, enforce_csrf_checks=True).get("/api/v1/me/").status_code == 200


RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}
# Views a viewer may POST to: they change only the viewer's own session (corp switch, language, password).
VIEWER_MAY_POST = {"tenancy:corp_switch", "password_change", "logout", "set_language"}


def test_a_viewer_can_post_to_no_write_view(world: World) -> None:
    victor = Client()
    victor.force_login(world.victor)
    before = _corp_a_fingerprint(world)
    checked = 0
    for route in _dashboard_routes():
        role = getattr(route.callback, "corp_role", None)
        path = _build_path(route, world)
        response = victor.post(path, {"name": "by-victor", "confirm": "1"})
        if response.status_code == 405:
            continue
        checked += 1
        if role is not None and RANK[Role(role)] > RANK[Role.VIEWER]:
            assert response.status_code == 403, (route.pattern, role, response.status_code)
        elif route.name not in VIEWER_MAY_POST:
            # A POST a viewer is allowed to make must be a read (a filter, a preview, an export).
            assert response.status_code in (200, 302, 400, 403, 404), (route.pattern, response.status_code)
    assert _corp_a_fingerprint(world) == before
    assert checked >= 15


def test_a_viewer_token_can_write_through_no_api_endpoint(populated: World, tokens: Tokens) -> None:
    victor = api_client(tokens.victor)
    writes = []
    for route in all_routes():
        view_cls = getattr(route.callback, "cls", None)
        if not _is_api(route) or view_cls is None or not issubclass(view_cls, APIView):
            continue
        path = _build_path(route, populated)
        writes += [(m, path) for m in ("post", "put", "patch", "delete") if hasattr(view_cls, m)]
    before = _corp_a_fingerprint(populated)
    counts = (Tag.objects.count(), TagGroup.objects.count(), BulkTagJob.objects.count())
    checked = 0
    for method, path in writes:
        response = getattr(victor, method)(path, data="{}", content_type="application/json")
        assert response.status_code == 403, (method, path, response.status_code)
        checked += 1
    assert checked >= 5
    assert _corp_a_fingerprint(populated) == before
    assert (Tag.objects.count(), TagGroup.objects.count(), BulkTagJob.objects.count()) == counts
