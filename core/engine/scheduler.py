"""Periodic jobs without cron, once per period however many schedulers run.

Jobs are declared with :func:`core.background.periodic` (audit's sealing,
verification and purge: audit/operations/jobs.py). Time is cut into periods
of each job's interval, aligned to the UTC epoch (an interval of 86400 s
starts at 00:00 UTC). At each tick a scheduler inserts the row (job, period
start) into ``scheduled_runs`` and enqueues the job in the same transaction;
another scheduler's insert of the same row meets the unique constraint and
skips. With the database backend the task and its guard row commit together.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.models import ScheduledRun

logger = logging.getLogger("core.background")

#: guard rows older than this are deleted by the scheduler
KEEP_RUNS = dt.timedelta(days=7)


@dataclass(frozen=True)
class Job:
    name: str
    task: object
    every: float | Callable[[], float]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def interval(self) -> float:
        return float(self.every() if callable(self.every) else self.every)


_jobs: dict[str, Job] = {}


def register(*, name: str, task, every, args: tuple = (), kwargs: dict | None = None) -> Job:
    job = Job(name=name, task=task, every=every, args=tuple(args), kwargs=dict(kwargs or {}))
    _jobs[name] = job
    return job


def jobs() -> list[Job]:
    return list(_jobs.values())


def period_start(moment: dt.datetime, interval: float) -> dt.datetime:
    """The start of the period of ``interval`` seconds that holds ``moment``."""
    epoch = moment.timestamp()
    start = epoch - (epoch % interval)
    return dt.datetime.fromtimestamp(start, tz=dt.UTC)


def tick(*, now: dt.datetime | None = None, scheduler_id: str = "") -> list[str]:
    """Enqueue every job whose current period has not been claimed yet;
    returns the names of the jobs this call enqueued."""
    now = now or timezone.now()
    enqueued = []
    for job in jobs():
        interval = job.interval()
        if interval <= 0:
            continue  # switched off
        start = period_start(now, interval)
        try:
            with transaction.atomic():
                run = ScheduledRun.objects.create(job=job.name, period_start=start, scheduler=scheduler_id[:100])
                result = job.task.enqueue(*job.args, **job.kwargs)
                run.task_id = str(result.id)[:64]
                run.save(update_fields=["task_id"])
        except IntegrityError:
            continue  # another scheduler has it
        logger.info("scheduled %s for the period from %s", job.name, start.isoformat())
        enqueued.append(job.name)
    return enqueued


def prune(*, now: dt.datetime | None = None) -> int:
    """Delete guard rows of periods long past."""
    now = now or timezone.now()
    deleted, _ = ScheduledRun.objects.filter(period_start__lt=now - KEEP_RUNS).delete()
    return deleted
