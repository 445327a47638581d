from __future__ import annotations

import logging

from scrm.core.context import corp_var, request_id_var


class ContextFilter(logging.Filter):
    """Adds the request id and the corp to every record so a line can be traced to its tenant."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.corp = corp_var.get()
        return True
