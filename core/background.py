"""Background work: the one import of Django's task framework in the project.

Everything that runs outside a request (event processing, deliveries, sealing,
verification, retention) is a task declared with :func:`task` from here::

    from core.background import OPS_QUEUE, task

    @task(queue_name=OPS_QUEUE)
    def seal_audit_task(): ...

    seal_audit_task.enqueue()

On Django 5.2 the API comes from the ``django-tasks`` backport. Moving to
Django 6's own ``django.tasks`` is the one line ``FRAMEWORK = "django.tasks"``
below (the database backend, ``django-tasks-db``, switches by itself).

The backend is chosen by configuration (``TASKS_BACKEND``, see settings):
the database backend by default, RQ on Redis for scale. The project adds what
the database backend lacks (core.engine): retries with capped exponential
back-off (:func:`retry`), the recovery of tasks whose worker died, worker
heartbeats (:func:`worker_status`) and a scheduler of periodic jobs
(:func:`periodic`).
"""

from __future__ import annotations

from importlib import import_module

from core.engine.retries import RetryPolicy, retry, retry_policy
from core.engine.status import WorkerStatus

FRAMEWORK = "django_tasks"

_api = import_module(FRAMEWORK)
_base = import_module(FRAMEWORK + ".base")
_signals = import_module(FRAMEWORK + ".signals")

task = _api.task
task_backends = _api.task_backends
default_task_backend = _api.default_task_backend
TaskContext = _api.TaskContext
TaskResult = _api.TaskResult
TaskResultStatus = _api.TaskResultStatus
Task = _base.Task
task_enqueued = _signals.task_enqueued
task_started = _signals.task_started
task_finished = _signals.task_finished

DEFAULT_QUEUE = "default"
FORWARDING_QUEUE = "forwarding"
OPS_QUEUE = "ops"

__all__ = [
    "DEFAULT_QUEUE",
    "FORWARDING_QUEUE",
    "OPS_QUEUE",
    "RetryPolicy",
    "Task",
    "TaskContext",
    "TaskResult",
    "TaskResultStatus",
    "WorkerStatus",
    "default_task_backend",
    "periodic",
    "retry",
    "retry_policy",
    "run_pending",
    "task",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
    "worker_status",
]


# -- periodic jobs ---------------------------------------------------------------------------------


def periodic(*, name: str, every, args: tuple = (), kwargs: dict | None = None):
    """Declare a periodic job: ``every`` is seconds or a callable returning
    them (read at each tick, so settings overrides apply). Run by
    ``manage.py run_scheduler``; see core.engine.scheduler."""
    from core.engine import scheduler

    def register(declared):
        scheduler.register(name=name, task=declared, every=every, args=args, kwargs=kwargs or {})
        return declared

    return register


# -- workers ---------------------------------------------------------------------------------------


def worker_status() -> WorkerStatus:
    """The last heartbeat of any worker. Shown on the dashboard; a stale
    heartbeat is information (and an alert), never a readiness failure."""
    from core.engine import heartbeat

    return heartbeat.status()


def run_pending(*, queues: list[str] | None = None, max_tasks: int | None = None) -> int:
    """Run the ready tasks of the database backend in this process until none
    is left (tests and one-off operations); returns how many ran."""
    from core.engine.worker import run_batch

    return run_batch(queues=queues, max_tasks=max_tasks)
