"""Worker heartbeats: one ``worker_heartbeats`` row per worker process."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable

from django.db import close_old_connections, connection
from django.utils import timezone

from core.engine import conf
from core.engine.status import WorkerStatus
from core.models import WorkerHeartbeat

logger = logging.getLogger("core.background")


def start(*, worker_id: str, queues: list[str]) -> WorkerHeartbeat:
    now = timezone.now()
    beat, _ = WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={"hostname": socket.gethostname()[:255], "pid": os.getpid(), "queues": ",".join(queues)[:255],
                  "started_at": now, "last_seen": now, "stopped_at": None},
    )
    return beat


def beat(*, worker_id: str) -> None:
    WorkerHeartbeat.objects.filter(worker_id=worker_id).update(last_seen=timezone.now())


def stop(*, worker_id: str) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.filter(worker_id=worker_id).update(last_seen=now, stopped_at=now)


def alive_worker_ids(*, since) -> set[str]:
    return set(WorkerHeartbeat.objects.filter(last_seen__gte=since, stopped_at__isnull=True)
               .values_list("worker_id", flat=True))


def status():
    now = timezone.now()
    newest = WorkerHeartbeat.objects.order_by("-last_seen").first()
    cutoff = now - dt.timedelta(seconds=conf.lease())
    alive = WorkerHeartbeat.objects.filter(last_seen__gte=cutoff, stopped_at__isnull=True).count()
    if newest is None:
        return WorkerStatus(last_seen=None, worker_id="", hostname="", queues="", age_seconds=None,
                            stale=True, workers_alive=0)
    age = max((now - newest.last_seen).total_seconds(), 0.0)
    return WorkerStatus(last_seen=newest.last_seen, worker_id=newest.worker_id, hostname=newest.hostname,
                        queues=newest.queues, age_seconds=age, stale=alive == 0, workers_alive=alive)


class HeartbeatThread(threading.Thread):
    """Beats every ``interval`` seconds while the worker lives (also while a
    long task runs) and calls ``also`` after each beat (stuck-task recovery).
    Uses its own database connection, closed when it stops."""

    def __init__(self, *, worker_id: str, interval: float, also: Callable[[], None] | None = None):
        super().__init__(name=f"heartbeat-{worker_id}", daemon=True)
        self.worker_id = worker_id
        self.interval = interval
        self.also = also
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.wait(self.interval):
                try:
                    close_old_connections()
                    beat(worker_id=self.worker_id)
                    if self.also is not None:
                        self.also()
                except Exception:  # a database blip must not end the heartbeat
                    logger.exception("heartbeat of worker %s failed", self.worker_id)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=self.interval + 5)
