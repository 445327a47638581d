"""Every endpoint of /api/v1/ behaves the same way: authentication, corp scoping, cursor pagination with one
envelope, and filter values that are refused with 400 instead of a server error.

Endpoints are discovered from the URL configuration and the generated OpenAPI document, so new apps'
endpoints are checked without editing this file (a new URL argument needs a KWARG_FACTORIES entry in
tests/scrm/test_url_walk.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from rest_framework.views import APIView

from tests.api.fixtures import CORP_A_MARKERS, Tokens, api_client
from tests.api.schema import api_operations, openapi_document
from tests.conftest import World
from tests.scrm.test_url_walk import KWARG_FACTORIES, Route, all_routes

pytestmark = pytest.mark.django_db

DOCUMENT = openapi_document()
ENVELOPE = {"next", "previous", "results"}
PAGING_PARAMETERS = {"cursor", "page_size"}
WRITE_METHODS = ("post", "put", "patch", "delete")


@dataclass(frozen=True)
class Endpoint:
    template: str  # /api/v1/customers/{customer_pk}/
    method: str
    operation: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.template}"

    def path(self, world: World) -> str:
        return re.sub(r"{(\w+)}", lambda m: _arg(m.group(1), world), self.template)

    @property
    def query_parameters(self) -> list[dict[str, Any]]:
        return [p for p in self.operation.get("parameters", []) if p["in"] == "query"]


def _arg(name: str, world: World) -> str:
    if name not in KWARG_FACTORIES:
        pytest.fail(f"an API URL takes {name!r}: add it to KWARG_FACTORIES in tests/scrm/test_url_walk.py")
    return str(KWARG_FACTORIES[name](world))


def _deref(schema: dict[str, Any]) -> dict[str, Any]:
    """Follows `$ref`s (and a single allOf) to the schema they name."""
    while True:
        if "$ref" in schema:
            node: Any = DOCUMENT
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        elif len(schema.get("allOf", [])) == 1:
            schema = schema["allOf"][0]
        else:
            return schema


def _ok_schema(operation: dict[str, Any]) -> dict[str, Any] | None:
    for status in ("200", "201"):
        content = operation.get("responses", {}).get(status, {}).get("content", {})
        if "application/json" in content:
            return _deref(content["application/json"].get("schema", {}))
    return None


def _is_list(operation: dict[str, Any]) -> bool:
    schema = _ok_schema(operation)
    if schema is None:
        return False
    # An array, or a page of one: a "results" list with "next"/"previous" links (an object that merely has a
    # "results" field, e.g. a broadcast's send results, is not a list).
    properties = schema.get("properties", {})
    return schema.get("type") == "array" or (
        "results" in properties and bool({"next", "previous"} & set(properties))
    )


ENDPOINTS = [Endpoint(path, method, op) for method, path, op in api_operations(DOCUMENT)]
LISTS = [e for e in ENDPOINTS if e.method == "get" and _is_list(e.operation)]


def _api_routes() -> list[Route]:
    return [r for r in all_routes() if r.pattern.startswith("api/v1/")]


def _methods(route: Route) -> list[str]:
    view_cls = getattr(route.callback, "cls", None)
    assert view_cls is not None and issubclass(view_cls, APIView), route
    return [m for m in ("get", *WRITE_METHODS) if hasattr(view_cls, m)]


def _url(route: Route, world: World) -> str:
    path = "/" + route.pattern
    for arg in route.converters:
        path = re.sub(r"<(?:\w+:)?" + arg + ">", _arg(arg, world), path)
    return path


def _call(client: Client, method: str, path: str, **extra: Any) -> Any:
    if method == "get":
        return client.get(path, **extra)
    return getattr(client, method)(path, data="{}", content_type="application/json", **extra)


def test_discovery_found_the_api() -> None:
    assert len(_api_routes()) >= 15
    assert len(LISTS) >= 8, [e.label for e in LISTS]
    documented = {e.template for e in ENDPOINTS}
    for route in _api_routes():
        template = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route.pattern)
        assert template in documented, f"{template} is routed but missing from the OpenAPI schema"


def test_every_endpoint_refuses_anonymous_and_bad_tokens(world: World) -> None:
    anonymous = Client()
    forged = {"HTTP_AUTHORIZATION": "Token " + "0" * 40}
    checked = 0
    for route in _api_routes():
        path = _url(route, world)
        for method in _methods(route):
            for extra in ({}, forged):
                response = _call(anonymous, method, path, **extra)
                assert response.status_code == 401, (method, path, extra)
                assert response["WWW-Authenticate"] == "Token", (method, path)
            checked += 1
    assert checked >= 20


def test_every_list_is_cursor_paginated_with_one_envelope(populated: World, tokens: Tokens) -> None:
    alice = api_client(tokens.alice)
    multi_page = 0
    for endpoint in LISTS:
        names = {p["name"] for p in endpoint.query_parameters}
        assert names >= PAGING_PARAMETERS, f"{endpoint.label} is not cursor-paginated (cursor, page_size)"
        assert "results" in _ok_schema(endpoint.operation).get("properties", {}), endpoint.label  # type: ignore[union-attr]
        path = endpoint.path(populated)
        response = alice.get(path, {"page_size": 1})
        assert response.status_code == 200, (endpoint.label, response.status_code)
        body = response.json()
        assert isinstance(body, dict) and set(body) == ENVELOPE, (endpoint.label, body)
        assert len(body["results"]) <= 1 and body["previous"] is None, endpoint.label
        # Follow the cursor: every row once, in a stable order, the links cursor-shaped (no page numbers).
        seen: list[Any] = [repr(r) for r in body["results"]]
        pages = 1
        while body["next"] and pages < 100:
            query = parse_qs(urlsplit(body["next"]).query)
            assert set(query) <= {"cursor", "page_size", *names}, (endpoint.label, body["next"])
            assert "cursor" in query and "page" not in query and "offset" not in query, body["next"]
            body = alice.get(body["next"]).json()
            assert set(body) == ENVELOPE and body["previous"], (endpoint.label, body)
            seen += [repr(r) for r in body["results"]]
            pages += 1
        assert len(seen) == len(set(seen)), f"{endpoint.label}: a row came twice while paging"
        whole = alice.get(path, {"page_size": 200}).json()["results"]
        if len(whole) < 200:
            assert len(seen) == len(whole), f"{endpoint.label}: paging lost rows"
        multi_page += pages > 1
    assert multi_page >= 4, "the populated corp should give several lists more than one page"


def test_every_list_and_object_is_corp_scoped(populated: World, tokens: Tokens) -> None:
    """Charlie (corp B's admin) with a token sees none of corp A's rows and can't reach any of its objects."""
    alice = api_client(tokens.alice)
    charlie = api_client(tokens.charlie)
    alice_rows = 0
    for endpoint in LISTS:
        if "{" in endpoint.template:
            continue  # a list below one of corp A's objects: covered by the object check below
        mine = alice.get(endpoint.path(populated), {"page_size": 200}).json()["results"]
        alice_rows += len(mine)
        response = charlie.get(endpoint.path(populated), {"page_size": 200})
        assert response.status_code == 200, endpoint.label
        theirs = response.json()["results"]
        assert theirs == [], f"{endpoint.label}: corp B sees {len(theirs)} of corp A's rows"
    assert alice_rows >= 30, "corp A's lists should not be empty (or the check above proves nothing)"
    for route in _api_routes():
        if not route.converters:
            continue
        path = _url(route, populated)
        for method in _methods(route):
            response = _call(charlie, method, path)
            assert response.status_code in (403, 404), (method, path, response.status_code)
            text = response.content.decode("utf-8", "replace")
            assert not any(marker in text for marker in CORP_A_MARKERS), (method, path)


def _invalid_values(parameter: dict[str, Any]) -> list[str]:
    """Values no reading of the parameter's schema accepts."""
    schema = _deref(parameter.get("schema", {}))
    if schema.get("type") == "array":
        schema = _deref(schema.get("items", {}))
    if "enum" in schema:
        return ["no-such-value", "x" * 300]
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "integer":
        return ["abc", "1.5", "99999999999999999999999"]
    if kind == "number":
        return ["abc", "nan-ish"]
    if kind == "boolean":
        return ["maybe"]
    if fmt == "date":
        return ["2026-13-45", "yesterday", "99999-01-01"]
    if fmt == "date-time":
        return ["2026-13-45T99:00", "soon"]
    return []


def test_invalid_filter_values_are_400_never_500(populated: World, tokens: Tokens) -> None:
    alice = api_client(tokens.alice)
    refused = 0
    for endpoint in LISTS:
        path = endpoint.path(populated)
        for parameter in endpoint.query_parameters:
            name = parameter["name"]
            if name in PAGING_PARAMETERS:
                continue
            for value in _invalid_values(parameter):
                response = alice.get(path, {name: value})
                assert response.status_code == 400, (endpoint.label, name, value, response.status_code)
                assert "detail" in response.json() or name in response.json(), response.json()
                refused += 1
            # Free text (and anything else) may match nothing, but never breaks the server.
            for value in ("\x00", "'; select 1; --", "%", "\\", "字" * 500):
                response = alice.get(path, {name: value})
                assert response.status_code in (200, 400), (endpoint.label, name, value, response.status_code)
        # A forged cursor is refused (DRF answers 404 "Invalid cursor"), an odd page size falls back.
        assert alice.get(path, {"cursor": "not-a-cursor"}).status_code in (400, 404), endpoint.label
        for size in ("0", "-1", "abc", "100000"):
            assert alice.get(path, {"page_size": size}).status_code == 200, (endpoint.label, size)
    assert refused >= 10


def test_out_of_range_object_ids_are_not_found(populated: World, tokens: Tokens) -> None:
    alice = api_client(tokens.alice)
    for route in _api_routes():
        if not route.converters:
            continue
        path = "/" + re.sub(r"<(?:\w+:)?\w+>", "99999999999999999999", route.pattern)
        for method in _methods(route):
            response = _call(alice, method, path)
            assert response.status_code in (400, 404), (method, path, response.status_code)
