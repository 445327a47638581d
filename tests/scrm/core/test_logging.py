from __future__ import annotations

import logging
import time

import pytest
from django.test import Client

from tests.conftest import World


@pytest.mark.django_db
def test_log_lines_carry_request_id_and_corp(world: World, caplog: pytest.LogCaptureFixture) -> None:
    from scrm.core.logging import ContextFilter

    # The same filter the console handler has in settings.LOGGING, applied as each record is emitted.
    caplog.handler.addFilter(ContextFilter())
    with caplog.at_level(logging.WARNING, logger="scrm.callbacks.views"):
        response = Client().get(
            f"/wecom/callback/{world.corp_a.corp_id}/",
            {"msg_signature": "0" * 40, "timestamp": str(int(time.time())), "nonce": "n", "echostr": "AAAA"},
            HTTP_X_REQUEST_ID="req-0123456789",
        )
        records = [r for r in caplog.records if r.name == "scrm.callbacks.views"]
        assert records, "the rejected verification was not logged"
    assert response.status_code == 403
    assert response["X-Request-ID"] == "req-0123456789"
    assert records[0].request_id == "req-0123456789"  # type: ignore[attr-defined]
    assert records[0].corp == world.corp_a.corp_id  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_untrusted_request_ids_are_replaced(world: World) -> None:
    response = Client().get("/healthz", HTTP_X_REQUEST_ID="<script>alert(1)</script>")
    assert "<" not in response["X-Request-ID"] and len(response["X-Request-ID"]) == 32
