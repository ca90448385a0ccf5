"""What the dashboard shows of the workers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerStatus:
    """The newest worker heartbeat, for the dashboard: ``last_seen`` is None
    when no worker ever ran; ``stale`` when it is older than the lease."""

    last_seen: dt.datetime | None
    worker_id: str
    hostname: str
    queues: str
    age_seconds: float | None
    stale: bool
    workers_alive: int
