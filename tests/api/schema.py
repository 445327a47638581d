"""The OpenAPI document of /api/v1/, generated in-process exactly as /api/schema/ serves it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.generators import SchemaGenerator


def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return document


def api_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) for every operation under /api/v1/."""
    found = []
    for path, item in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                found.append((method, path, operation))
    return found
