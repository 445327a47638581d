from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def heartbeat(lane: str) -> None:
    from scrm.dashboard.services import lane_heartbeat_record

    lane_heartbeat_record(lane=lane)
