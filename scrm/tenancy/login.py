"""Sign-in with a brake on password guessing.

Failed sign-ins are counted in Redis per (username, client IP), and per client IP across usernames; past the
limit every attempt for that pair is refused for LOCKOUT, whatever the password, with a message that says
what happened and when to try again. The count and the message are the same whether the username exists or
not, so the lockout tells nobody which accounts exist. A successful sign-in clears the pair's count.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from redis.exceptions import RedisError

from scrm.core.redis import get_redis

logger = logging.getLogger(__name__)

MAX_FAILURES = 5  # per username and IP
MAX_FAILURES_PER_IP = 50  # one address trying many usernames
LOCKOUT_SECONDS = 15 * 60

LOCKED_MESSAGE = _(
    "Too many failed sign-in attempts. For your safety sign-in is paused for 15 minutes; "
    "try again later, or ask your corp admin to reset your password."
)


def client_ip(request: HttpRequest | None) -> str:
    # REMOTE_ADDR only: a client-supplied X-Forwarded-For would let a guesser pick a fresh address each time.
    return (request.META.get("REMOTE_ADDR") or "unknown") if request is not None else "unknown"


def _keys(username: str, ip: str) -> tuple[str, str]:
    # Hashed: the key names neither the username nor the address in Redis.
    pair = hashlib.sha256(f"{username.strip().lower()}\n{ip}".encode()).hexdigest()[:32]
    addr = hashlib.sha256(ip.encode()).hexdigest()[:32]
    return f"login-fail:u:{pair}", f"login-fail:ip:{addr}"


def login_locked(*, username: str, ip: str) -> bool:
    pair_key, ip_key = _keys(username, ip)
    try:
        pair, per_ip = get_redis().mget(pair_key, ip_key)
    except RedisError:
        # Sign-in keeps working without Redis; the brake is off until it is back.
        logger.warning("login throttle unavailable: Redis error")
        return False
    return int(pair or 0) >= MAX_FAILURES or int(per_ip or 0) >= MAX_FAILURES_PER_IP


def login_failed(*, username: str, ip: str) -> None:
    """Counts one failure; the window starts at the first failure and the lockout lasts LOCKOUT_SECONDS."""
    pair_key, ip_key = _keys(username, ip)
    try:
        with get_redis().pipeline() as pipe:
            for key in (pair_key, ip_key):
                pipe.incr(key)
                pipe.expire(key, LOCKOUT_SECONDS, nx=True)
            pipe.execute()
    except RedisError:
        logger.warning("login throttle unavailable: Redis error")


def login_succeeded(*, username: str, ip: str) -> None:
    try:
        get_redis().delete(_keys(username, ip)[0])
    except RedisError:
        logger.warning("login throttle unavailable: Redis error")


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        ip = client_ip(self.request)
        if login_locked(username=username, ip=ip):
            # Refused before the password is checked: a locked pair learns nothing, even from a right guess.
            raise ValidationError(LOCKED_MESSAGE, code="locked")
        try:
            cleaned = super().clean()
        except ValidationError:
            login_failed(username=username, ip=ip)
            raise
        login_succeeded(username=username, ip=ip)
        return cleaned


class ThrottledLoginView(LoginView):
    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, code="locked"):
            response.status_code = 429
        return response
