from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

from scrm.core import redis as core_redis

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.django_db
def test_healthy() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "postgres": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_redis_down_is_503_naming_redis() -> None:
    core_redis._client.cache_clear()
    try:
        with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):  # nothing listens on port 1
            response = Client().get("/healthz")
    finally:
        core_redis._client.cache_clear()
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "postgres": "ok", "redis": "unavailable"}


def test_postgres_down_is_503_naming_postgres() -> None:
    # A fresh process whose database is unreachable: the real driver fails, as it would in production.
    code = (
        "import django, json; django.setup();"
        "from django.test.utils import setup_test_environment; setup_test_environment();"
        "from django.test import Client; r = Client().get('/healthz');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://root@127.0.0.1:1/scrm",
        "DJANGO_SETTINGS_MODULE": "scrm.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out == {"status": 503, "body": {"status": "unavailable", "postgres": "unavailable", "redis": "ok"}}
