from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from scrm.callbacks.services import (
    MAX_CALLBACK_BYTES,
    CallbackTarget,
    callback_open,
    callback_target,
    inbox_receive,
)
from scrm.core.context import corp_var
from scrm.tenancy.permissions import public_view
from wecom.crypto import CallbackError, SignatureError

logger = logging.getLogger(__name__)


def _plain(status: int, text: str = "") -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


# Reference: Doc 90930 (GET verifies the URL; POST delivers an encrypted event; answer within 5 s,
# HTTP 200 with an empty body; anything else makes WeCom retry up to 3 times)
@public_view
@csrf_exempt
@require_http_methods(["GET", "POST"])
def wecom_callback(request: HttpRequest, corp_id: str) -> HttpResponse:
    try:
        target = callback_target(corp_id=corp_id)
    except DatabaseError:
        logger.error("callback not stored: database unavailable")
        return _plain(503)
    if target is None:
        raise Http404
    corp_var.set(target.corp_id)
    if request.method == "GET":
        return _verify(request, target)
    return _receive(request, target)


def _verify(request: HttpRequest, target: CallbackTarget) -> HttpResponse:
    params = request.GET
    missing = [k for k in ("msg_signature", "timestamp", "nonce", "echostr") if not params.get(k)]
    if missing:
        logger.warning("callback verification rejected: missing %s", ",".join(missing))
        return _plain(400, "missing " + ",".join(missing))
    try:
        # The framework already URL-decoded the query once; decoding again would turn '+' into ' '.
        _, plaintext = callback_open(
            target,
            lambda crypto: crypto.verify_url(
                params["msg_signature"], params["timestamp"], params["nonce"], params["echostr"]
            ),
        )
    except SignatureError:
        logger.warning("callback verification rejected: bad signature")
        return _plain(403, "bad signature")
    except CallbackError as exc:
        logger.warning("callback verification rejected: %s", exc)
        return _plain(400, "bad request")
    return _plain(200, plaintext)


def _receive(request: HttpRequest, target: CallbackTarget) -> HttpResponse:
    params = request.GET
    missing = [k for k in ("msg_signature", "timestamp", "nonce") if not params.get(k)]
    if missing:
        logger.warning("callback rejected: missing %s", ",".join(missing))
        return _plain(400, "missing " + ",".join(missing))
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > MAX_CALLBACK_BYTES:
        logger.warning("callback rejected: body of %d bytes", length)
        return _plain(413, "body too large")
    try:
        received = inbox_receive(
            target=target,
            msg_signature=params["msg_signature"],
            timestamp=params["timestamp"],
            nonce=params["nonce"],
            body=request.body,
        )
    except SignatureError:
        logger.warning("callback rejected: bad signature")
        return _plain(403, "bad signature")
    except CallbackError as exc:
        logger.warning("callback rejected: %s (%s)", exc.reason, exc.code)
        return _plain(400, "bad request")
    except DatabaseError:
        logger.error("callback not stored: database unavailable; WeCom will retry")
        return _plain(503)
    if received.event_id is None:
        logger.info("callback repeated: %s already stored", received.kind)
    else:
        logger.info("callback stored: %s #%s lane=%s", received.kind, received.event_id, received.lane)
    return _plain(200)
