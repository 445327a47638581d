"""Security headers on every kind of response, HSTS behind TLS in production, and templates that a
script-src 'self' policy can run (no inline scripts or inline event handlers)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from scrm.core.middleware import CONTENT_SECURITY_POLICY
from tests.conftest import World, client_for
from tests.scrm.core.test_settings import GOOD, ROOT

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _directives(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "who,path",
    [
        ("anonymous", "/accounts/login/"),
        ("alice", "/"),
        ("alice", "/api/v1/me/"),
        ("anonymous", "/healthz"),
        ("anonymous", "/no-such-page/"),
    ],
)
def test_every_response_carries_the_security_headers(world: World, who: str, path: str) -> None:
    client = Client() if who == "anonymous" else client_for(world.alice)
    response = client.get(path)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    policy = _directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"], "no inline script, no eval"
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"] and policy["form-action"] == ["'self'"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_hsts_when_served_over_tls(world: World, settings) -> None:
    settings.SECURE_HSTS_SECONDS = 31536000
    over_tls = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https", secure=False)
    assert over_tls["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Strict-Transport-Security" not in Client().get("/accounts/login/")  # plain http: no HSTS


def test_production_settings_turn_on_hsts_and_secure_cookies() -> None:
    code = (
        "import scrm.settings as s; print(s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.X_FRAME_OPTIONS, s.SECURE_CONTENT_TYPE_NOSNIFF)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in GOOD and k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **GOOD},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "31536000 ('HTTP_X_FORWARDED_PROTO', 'https') True True DENY True"


def test_the_policy_allows_what_the_dashboard_loads() -> None:
    policy = _directives(CONTENT_SECURITY_POLICY)
    assert policy["default-src"] == ["'self'"] and policy["connect-src"] == ["'self'"]  # htmx requests
    assert "https:" in policy["img-src"]  # WeCom's avatars and QR codes


INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.IGNORECASE)
JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']\s*javascript:""", re.IGNORECASE)


def test_no_template_needs_inline_script() -> None:
    """script-src 'self' blocks inline <script> and on*="" handlers: use static JS with data- attributes."""
    offenders = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text(encoding="utf-8")
        for pattern in (INLINE_HANDLER, INLINE_SCRIPT, JS_URL):
            offenders += [
                f"{template.relative_to(TEMPLATES)}: {m.group(0)[:80]}" for m in pattern.finditer(text)
            ]
    assert not offenders, "inline script the CSP will block:\n" + "\n".join(offenders)
