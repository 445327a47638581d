"""Property-based run of schemathesis against /api/v1/, in-process (WSGI), as corp A's admin with a token.

Every operation of the generated OpenAPI document is exercised with a bounded number of examples: data
that fits the schema and data that does not, with path arguments both random and pointing at real rows of
corp A (synced from the WeCom sandbox). The checks are the issue's: no 5xx, and every documented response
matches its schema. New endpoints join automatically.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from scrm.wsgi import application
from tests.api.fixtures import Tokens
from tests.api.schema import api_operations, openapi_document
from tests.conftest import World
from tests.scrm.test_url_walk import KWARG_FACTORIES

# Bounded so the whole run fits CI on 2 cores (per operation and mode); derandomized for reproducibility.
MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
OPERATIONS = [f"{method.upper()} {path}" for method, path, _ in api_operations(openapi_document())]


@pytest.fixture
def in_process_wsgi() -> Iterator[None]:
    """Django's WSGI handler closes the DB connection after each request; the test's transaction must live
    on, as Django's own test Client arranges."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _load() -> Any:
    loaded = schemathesis.openapi.from_dict(
        openapi_document(), config=SchemathesisConfig.from_dict({"seed": 20240909})
    )
    loaded.app = application
    return loaded


def _run(strategy: Any, token: str) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)

    check()


def test_the_schema_lists_every_api_route() -> None:
    assert len(OPERATIONS) >= 20, OPERATIONS


@pytest.mark.django_db
@pytest.mark.parametrize("label", OPERATIONS)
def test_api_conforms_to_its_schema_and_never_errors(
    label: str, populated: World, tokens: Tokens, in_process_wsgi: None
) -> None:
    operation = _load().find_operation_by_label(label)
    assert operation is not None, label
    real = {
        p.name: KWARG_FACTORIES[p.name](populated)
        for p in operation.path_parameters
        if p.name in KWARG_FACTORIES
    }
    assert len(real) == len(list(operation.path_parameters)), f"{label}: add its argument to KWARG_FACTORIES"
    _run(operation.as_strategy(), tokens.alice)
    if any(list(part) for part in (operation.path_parameters, operation.query, operation.body)):
        # Something to make invalid: schemathesis breaks types, formats, enums and required fields.
        _run(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE), tokens.alice)
    if real:
        _run(operation.as_strategy(path_parameters=real), tokens.alice)
