"""The database backend's worker, with retries, a heartbeat and stuck-task recovery.

django-tasks-db's worker claims a READY task (``SELECT ... FOR UPDATE SKIP
LOCKED``), runs it and marks it SUCCESSFUL or FAILED. This subclass changes
what a failure does: while the task has attempts left (its retry policy, see
:func:`core.background.retry`), the same row goes back to READY with
``run_after`` delayed by the capped exponential back-off, keeping the
exception and traceback of the failed attempt; ``worker_ids`` lists one worker
per attempt. Only the last failure marks it FAILED (and sends
``task_finished``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from traceback import format_exception

from django.core.exceptions import SuspiciousOperation
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.compat import TaskContext, task_finished, task_started
from django_tasks_db.management.commands.db_worker import Worker as DatabaseWorker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction

from core.engine import conf, heartbeat, recovery
from core.engine.retries import retry_policy

logger = logging.getLogger("core.background")


def _retry_later(db_task_result: DBTaskResult, exc: BaseException) -> bool:
    """Put a failed attempt back with a delay if attempts are left."""
    policy = retry_policy(db_task_result.task_path)
    attempts = len(db_task_result.worker_ids)
    if attempts >= policy.max_attempts or isinstance(exc, KeyboardInterrupt):
        return False
    delay = policy.delay(attempts)
    db_task_result.status = "READY"
    db_task_result.run_after = timezone.now() + dt.timedelta(seconds=delay)
    db_task_result.exception_class_path = f"{type(exc).__module__}.{type(exc).__qualname__}"
    db_task_result.traceback = "".join(format_exception(exc))
    db_task_result.save(update_fields=["status", "run_after", "exception_class_path", "traceback"])
    logger.warning("task %s (%s) failed on attempt %d of %d (%s); retry in %.1f s", db_task_result.id,
                   db_task_result.task_path, attempts, policy.max_attempts, type(exc).__name__, delay)
    return True


class Worker(DatabaseWorker):
    def __init__(self, *, heartbeat_enabled: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.heartbeat_enabled = heartbeat_enabled
        self._last_recovery = 0.0

    def _recover(self) -> None:
        # at most every half lease; stuck tasks are found by whichever worker looks first
        if time.monotonic() - self._last_recovery >= conf.lease() / 2:
            self._last_recovery = time.monotonic()
            recovery.recover_stuck()

    def run(self) -> None:
        if not self.heartbeat_enabled:
            return super().run()
        heartbeat.start(worker_id=self.worker_id, queues=self.queue_names)
        recovery.recover_stuck()  # a restarted worker picks up what its predecessor left
        self._last_recovery = time.monotonic()
        thread = heartbeat.HeartbeatThread(worker_id=self.worker_id, interval=conf.heartbeat_interval(),
                                           also=self._recover)
        thread.start()
        try:
            return super().run()
        finally:
            thread.stop()
            try:
                heartbeat.stop(worker_id=self.worker_id)
            except Exception:  # the database may be what ended the worker
                logger.exception("could not record the stop of worker %s", self.worker_id)

    def run_task(self, db_task_result: DBTaskResult) -> None:
        try:
            self.running_task = True
            task = db_task_result.task
            task_result = db_task_result.task_result
            backend_type = task.get_backend()
            task_started.send(sender=backend_type, task_result=task_result)
            if task.takes_context:
                return_value = task.call(TaskContext(task_result=task_result), *task_result.args,
                                         **task_result.kwargs)
            else:
                return_value = task.call(*task_result.args, **task_result.kwargs)
            # inside the try: a return value that cannot be stored fails the task
            db_task_result.set_successful(return_value)
            task_finished.send(sender=backend_type, task_result=db_task_result.task_result)
        except BaseException as exc:
            try:
                if _retry_later(db_task_result, exc):
                    return
            except Exception:
                logger.exception("task %s: could not schedule its retry", db_task_result.id)
            db_task_result.set_failed(exc)
            try:
                sender = type(db_task_result.task.get_backend())
                task_result = db_task_result.task_result
            except (ImportError, SuspiciousOperation):
                logger.exception("Task id=%s failed unexpectedly", db_task_result.id)
            else:
                task_finished.send(sender=sender, task_result=task_result)
        finally:
            self.running_task = False
            self._run_tasks += 1


def new_worker_id() -> str:
    return get_random_string(32)


# RQ workers must build jobs of django-tasks-rq's class, which calls the Task (and sends its signals).
RQ_JOB_CLASS = "django_tasks_rq.Job"


def run_batch(*, queues: list[str] | None = None, max_tasks: int | None = None) -> int:
    """Run the ready tasks in this process until none is left (no heartbeat,
    and the caller's database connection is left open: tests run inside it)."""
    if conf.backend_name() == "rq":
        return _run_batch_rq(queues=queues, max_tasks=max_tasks)
    worker = Worker(queue_names=queues or ["*"], interval=0, batch=True, backend_name="default",
                    startup_delay=False, max_tasks=max_tasks, worker_id="inline-" + get_random_string(12),
                    excluded_queue_names=[], heartbeat_enabled=False)
    while max_tasks is None or worker._run_tasks < max_tasks:
        tasks = DBTaskResult.objects.ready().filter(backend_name=worker.backend_name)
        if not worker.process_all_queues:
            tasks = tasks.filter(queue_name__in=worker.queue_names)
        with exclusive_transaction(tasks.db):
            claimed = tasks.get_locked()
            if claimed is not None:
                claimed.claim(worker.worker_id)
        if claimed is None:
            break
        worker.run_task(claimed)
    return worker._run_tasks


def _run_batch_rq(*, queues: list[str] | None, max_tasks: int | None) -> int:
    """The same on RQ: a burst of django-rq's SimpleWorker in this process (no fork, so the
    caller's database connection and transaction are the ones the tasks see); due delayed
    tasks are moved to their queues first by the worker's scheduler."""
    import django_rq
    from rq import SimpleWorker

    names = conf.queues() if not queues or "*" in queues else queues
    worker = django_rq.get_worker(*names, worker_class=SimpleWorker, job_class=RQ_JOB_CLASS,
                                  name="inline-" + get_random_string(12))
    finished = []

    def count(sender, task_result, **kwargs):
        finished.append(task_result.id)

    # django-tasks-rq sends task_finished for each job run, succeeded or failed
    task_finished.connect(count, weak=False)
    try:
        worker.work(burst=True, with_scheduler=True, max_jobs=max_tasks, logging_level="WARNING")
    finally:
        task_finished.disconnect(count)
    return len(finished)
