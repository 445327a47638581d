"""Reads for the full sync: the run to show, its percentage, its failure in plain language, the history."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from scrm.sync import models as sync_models
from scrm.sync.models import SyncRun
from scrm.tenancy.models import Corp
from wecom.messages import message_for

# Where each phase sits on the bar. Customers and follows are most of the work (one call per 100
# follows); groups next (one call per group).
_SPAN: dict[str, tuple[float, float]] = {
    SyncRun.Phase.TAGS: (0.0, 2.0),
    SyncRun.Phase.MEMBERS: (2.0, 5.0),
    SyncRun.Phase.CUSTOMERS: (5.0, 80.0),
    SyncRun.Phase.GROUPS: (80.0, 98.0),
    SyncRun.Phase.RECONCILE: (98.0, 99.0),
    SyncRun.Phase.DONE: (100.0, 100.0),
}


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def sync_run_fraction(*, run: SyncRun) -> float:
    """How far the current phase is, 0…1: by chunks of members, refined by counts where we have totals."""
    chunks = max(1, -(-run.members_total // sync_models.CHUNK))
    if run.phase == SyncRun.Phase.MEMBERS:
        return _clamp(run.chunk / chunks, 0.0, 1.0)
    if run.phase == SyncRun.Phase.CUSTOMERS:
        low, high = run.chunk / chunks, (run.chunk + 1) / chunks
        if not run.follows_estimate:
            return _clamp(low, 0.0, 1.0)
        # Follows seen against what we held before the run, kept inside the current chunk's share.
        return _clamp(run.follows_seen / run.follows_estimate, low, min(high, 1.0))
    if run.phase == SyncRun.Phase.GROUPS:
        if run.groups_total:
            return _clamp((run.groups_seen + run.groups_skipped) / run.groups_total, 0.0, 1.0)
        owner_chunks = max(1, -(-len(run.owner_userids) // sync_models.CHUNK))
        return _clamp(run.chunk / owner_chunks, 0.0, 1.0)
    return 0.0


def sync_run_percent(*, run: SyncRun) -> int:
    if run.status == SyncRun.Status.DONE:
        return 100
    low, high = _SPAN.get(run.phase, (0.0, 0.0))
    return int(low + (high - low) * sync_run_fraction(run=run))


def sync_run_error(*, run: SyncRun, lang: str) -> str:
    """The failure (or the transient trouble a running sync is waiting out) in plain language."""
    if run.error_key:
        key: int | str = int(run.error_key) if run.error_key.lstrip("-").isdigit() else run.error_key
        text = message_for(key, lang)
        return f"{text} (errcode {run.error_code})" if run.error_code is not None else text
    if run.error_detail:
        return _("Internal error: %(detail)s") % {"detail": run.error_detail}
    return ""


@dataclass(frozen=True)
class SyncProgress:
    run: SyncRun
    percent: int
    error: str

    @property
    def active(self) -> bool:
        return self.run.is_active

    @property
    def groups_done(self) -> int:
        return self.run.groups_seen + self.run.groups_skipped


def sync_progress_get(*, corp: Corp, lang: str) -> SyncProgress | None:
    """The run in progress, else the latest one; None before the first sync."""
    runs = SyncRun.objects.filter(corp=corp)
    run = runs.filter(status__in=SyncRun.ACTIVE).first() or runs.order_by("-created_at").first()
    if run is None:
        return None
    return SyncProgress(run=run, percent=sync_run_percent(run=run), error=sync_run_error(run=run, lang=lang))


def sync_run_list(*, corp: Corp, limit: int = 50) -> QuerySet[SyncRun]:
    return SyncRun.objects.filter(corp=corp).select_related("requested_by").order_by("-created_at")[:limit]
