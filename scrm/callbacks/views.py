from __future__ import annotations

import logging

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from scrm.callbacks.services import callback_crypto_for
from scrm.core.context import corp_var
from scrm.tenancy.permissions import public_view
from scrm.tenancy.selectors import corp_get_by_corp_id
from wecom.crypto import CallbackError, SignatureError

logger = logging.getLogger(__name__)


# Reference: Doc 90930 (URL verification: decrypt echostr and answer the plaintext alone, within 1 s)
@public_view
@csrf_exempt
@require_GET
def wecom_callback(request: HttpRequest, corp_id: str) -> HttpResponse:
    corp = corp_get_by_corp_id(corp_id=corp_id)
    if corp is None:
        raise Http404
    corp_var.set(corp.corp_id)
    params = request.GET
    missing = [k for k in ("msg_signature", "timestamp", "nonce", "echostr") if not params.get(k)]
    if missing:
        logger.warning("callback verification rejected: missing %s", ",".join(missing))
        return HttpResponseBadRequest("missing " + ",".join(missing), content_type="text/plain")
    try:
        # The framework already URL-decoded the query once; decoding again would turn '+' into ' '.
        plaintext = callback_crypto_for(corp=corp).verify_url(
            params["msg_signature"], params["timestamp"], params["nonce"], params["echostr"]
        )
    except SignatureError:
        logger.warning("callback verification rejected: bad signature")
        return HttpResponseForbidden("bad signature", content_type="text/plain")
    except CallbackError as exc:
        logger.warning("callback verification rejected: %s", exc)
        return HttpResponseBadRequest("bad request", content_type="text/plain")
    return HttpResponse(plaintext, content_type="text/plain; charset=utf-8")
