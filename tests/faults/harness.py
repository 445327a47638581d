"""The Celery app the fault suite's workers run (`celery -A tests.faults.harness worker`): the product's app,
with the leases that decide how soon a crash heals shortened from minutes to seconds, so a short test sees
the same recovery production sees once a lease lapses. (The broker's visibility timeout is left alone:
procs.redeliver_unacked plays its lapse for a killed worker's tasks only.)

- FAULTS_SYNC_LEASE: seconds a full-sync run stays claimed by a worker that stopped renewing it (90).
- FAULTS_CHUNK_LEASE: the same for a broadcast chunk being created in WeCom (90).
- FAULTS_BATCH_LEASE: the same for a batch of customer transfers being requested (120).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from typing import Any

from celery.signals import worker_process_init, worker_ready

from tasks.celery import app

READY_MARK = "FAULTS-WORKER-READY"


@worker_process_init.connect
def _short_leases(**kwargs: Any) -> None:
    lease = float(os.environ.get("FAULTS_SYNC_LEASE", "0") or 0)
    if lease:
        from scrm.sync import services

        services.LEASE = timedelta(seconds=lease)
    chunk_lease = float(os.environ.get("FAULTS_CHUNK_LEASE", "0") or 0)
    if chunk_lease:
        from django.conf import settings

        from scrm.campaigns import services as campaigns

        settings.BROADCAST_CHUNK_LEASE_S = chunk_lease
        if hasattr(campaigns, "CHUNK_LEASE"):
            campaigns.CHUNK_LEASE = timedelta(seconds=chunk_lease)
    batch_lease = float(os.environ.get("FAULTS_BATCH_LEASE", "0") or 0)
    if batch_lease:
        from scrm.succession import services as succession

        if hasattr(succession, "BATCH_LEASE"):
            succession.BATCH_LEASE = timedelta(seconds=batch_lease)


@worker_ready.connect
def _say_ready(**kwargs: Any) -> None:
    print(READY_MARK, file=sys.stderr, flush=True)


__all__ = ["app"]
