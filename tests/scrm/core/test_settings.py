"""Settings are read in a fresh interpreter each time, as a deployment would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GOOD = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 50,
    "FIELD_ENCRYPTION_KEY": "k1:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=",
    "ALLOWED_HOSTS": "scrm.example.com",
    "PUBLIC_BASE_URL": "https://scrm.example.com",
}


def load_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in GOOD and k not in ("DATABASE_URL", "REDIS_URL")}
    code = "import scrm.settings as s; print(s.DEBUG, s.TIME_ZONE, s.DATABASES['default']['NAME'])"
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_local_defaults_start_with_debug_on() -> None:
    result = load_settings({})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "Asia/Shanghai", "scrm"]


def test_production_settings_with_every_variable_set_start() -> None:
    result = load_settings({**GOOD, "DATABASE_URL": "postgres://u:p%40ss@db.internal:6543/prod"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "Asia/Shanghai", "prod"]


def test_debug_off_refuses_each_insecure_default_and_names_the_variable() -> None:
    for missing in GOOD:
        if missing == "DEBUG":
            continue
        env = {k: v for k, v in GOOD.items() if k != missing}
        result = load_settings(env)
        assert result.returncode != 0, missing
        assert "ImproperlyConfigured" in result.stderr
        assert missing in result.stderr, (missing, result.stderr[-500:])


def test_database_url_must_be_postgres() -> None:
    result = load_settings({"DATABASE_URL": "mysql://root@localhost/x"})
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr
