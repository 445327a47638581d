"""All settings in one module, read from the environment with safe local defaults.

With DEBUG off the process refuses to start on an insecure default and says which variable to set.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# Local-only defaults. Each is refused when DEBUG is off (see _refuse_insecure_defaults).
_DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105
_DEV_FIELD_KEY = "dev:ZGV2LW9ubHktZmllbGQta2V5LTMyLWJ5dGVzLi4uLi4="


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def database_from_url(url: str) -> dict[str, object]:
    """postgres://user:password@host:port/name?sslmode=require → Django's DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(f"DATABASE_URL must be a postgres:// URL, got scheme {parsed.scheme!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or "scrm",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        "OPTIONS": dict(parse_qsl(parsed.query)),
        # Short-lived connections are re-used within a worker; health checks drop dead ones after a restart.
        "CONN_MAX_AGE": int(env("DATABASE_CONN_MAX_AGE", "60")),
        "CONN_HEALTH_CHECKS": True,
    }


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env("SECRET_KEY", _DEV_SECRET_KEY)
FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY", _DEV_FIELD_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
DATABASE_URL = env("DATABASE_URL", "postgres://root@127.0.0.1:5432/scrm")
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
WECOM_API_BASE = env("WECOM_API_BASE", "https://qyapi.weixin.qq.com/cgi-bin/")
# Where the local WeCom sandbox listens; the onboarding page offers to point a corp at it.
WECOM_SANDBOX_URL = env("WECOM_SANDBOX_URL", "http://127.0.0.1:8900" if DEBUG else "")
# Public base URL of this product, used to show the callback URL to admins.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", "http://127.0.0.1:8000" if DEBUG else "")
TIME_ZONE = env("TIME_ZONE", "Asia/Shanghai")
# Callbacks whose timestamp is further than this from our clock are refused as replays (0: off).
# WeCom documents no window; its retries come within minutes, so an hour leaves room for clock skew.
WECOM_CALLBACK_REPLAY_WINDOW = int(env("WECOM_CALLBACK_REPLAY_WINDOW", "3600"))


def _refuse_insecure_defaults() -> None:
    if DEBUG:
        return
    problems: list[str] = []
    if SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 32:
        problems.append("SECRET_KEY (a random string of at least 32 characters)")
    if FIELD_ENCRYPTION_KEY == _DEV_FIELD_KEY or "dev:" in FIELD_ENCRYPTION_KEY:
        problems.append(
            "FIELD_ENCRYPTION_KEY (e.g. k1:<base64 of 32 random bytes>; "
            "generate one with `python manage.py generate_field_key`)"
        )
    if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS (the host names this site is served on, comma separated)")
    if not PUBLIC_BASE_URL.startswith("https://"):
        problems.append("PUBLIC_BASE_URL (the https:// address WeCom sends callbacks to)")
    if problems:
        raise ImproperlyConfigured(
            "DEBUG is off but insecure defaults are in use. Set: " + "; ".join(problems) + "."
        )


_refuse_insecure_defaults()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_htmx",
    "scrm.core",
    "scrm.tenancy",
    "scrm.callbacks",
    "scrm.customers",
    "scrm.groups",
    "scrm.sync",
    "scrm.acquisition",
    "scrm.compliance",
    "scrm.campaigns",
    "scrm.groupcodes",
    "scrm.succession",
    "scrm.dashboard",
]

MIDDLEWARE = [
    "scrm.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "scrm.core.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "scrm.tenancy.middleware.CurrentCorpMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "scrm.urls"
WSGI_APPLICATION = "scrm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "scrm.tenancy.context_processors.current_corp",
                "scrm.dashboard.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "scrm",
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"

# Simplified Chinese first: our users are Chinese operations teams. English is one click away.
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static", ("chart.js", BASE_DIR / "node_modules" / "chart.js" / "dist")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Security headers. HSTS and secure cookies apply when served over TLS (DEBUG off).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 0 if DEBUG else 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG

REST_FRAMEWORK = {
    # Token first: a missing or bad token is then answered 401 with `WWW-Authenticate: Token`, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["scrm.core.api.IsCorpMember"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SCRM on WeCom API",
    "DESCRIPTION": "Corp-scoped REST API. Every endpoint acts on the caller's current corp.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["scrm.core.api.IsCorpMember"],
    "ENUM_NAME_OVERRIDES": {"GroupStatusEnum": "scrm.groups.models.CustomerGroup.Status"},
}

# Celery: three lanes so welcome messages never wait behind bulk work.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

LOG_LEVEL = env("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "scrm.core.logging.ContextFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s corp=%(corp)s] %(message)s",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
