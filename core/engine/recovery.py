"""Recovery of tasks whose worker died (the database backend leaves them RUNNING).

A task is stuck when it has been RUNNING longer than the lease and the worker
that claimed it last (the last of its ``worker_ids``) has no heartbeat within
the lease, or stopped. It goes back to READY to be claimed again, by any
worker; a task that has already used all its attempts (one per claim) is
marked FAILED instead. Each worker runs this from its heartbeat thread, so a
restarted worker or any other one picks the task up.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction

from core.engine import conf, heartbeat
from core.engine.retries import retry_policy

logger = logging.getLogger("core.background")


class WorkerLost(Exception):
    """The worker running the task stopped beating (killed, or its host died)."""


def recover_stuck(*, lease: float | None = None, now: dt.datetime | None = None) -> int:
    """Put back (or fail) every stuck task; returns how many were handled."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=lease if lease is not None else conf.lease())
    alive = heartbeat.alive_worker_ids(since=cutoff)
    handled = 0
    candidates = DBTaskResult.objects.running().filter(started_at__lt=cutoff)
    with exclusive_transaction(candidates.db):
        for row in candidates.select_for_update(skip_locked=True):
            if row.worker_ids and row.worker_ids[-1] in alive:
                continue  # a long task on a live worker
            attempts = len(row.worker_ids)
            worker = row.worker_ids[-1] if row.worker_ids else "?"
            if attempts >= retry_policy(row.task_path).max_attempts:
                row.status = "FAILED"
                row.finished_at = now
                row.exception_class_path = f"{WorkerLost.__module__}.{WorkerLost.__qualname__}"
                row.traceback = (f"WorkerLost: worker {worker} stopped while running this task "
                                 f"(attempt {attempts} of {attempts}); not run again.\n")
                row.save(update_fields=["status", "finished_at", "exception_class_path", "traceback"])
                logger.warning("task %s (%s): worker %s lost, attempts used up: failed", row.id, row.task_path, worker)
            else:
                row.status = "READY"
                row.run_after = now
                row.exception_class_path = f"{WorkerLost.__module__}.{WorkerLost.__qualname__}"
                row.traceback = f"WorkerLost: worker {worker} stopped while running attempt {attempts}.\n"
                row.save(update_fields=["status", "run_after", "exception_class_path", "traceback"])
                logger.warning("task %s (%s): worker %s lost, run again", row.id, row.task_path, worker)
            handled += 1
    return handled
