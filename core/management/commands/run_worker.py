"""``manage.py run_worker``: serve background tasks, of the database backend (the project's
worker) or of RQ (django-rq's worker, with its scheduler so that delayed tasks run)."""

from __future__ import annotations

import logging

from django.core.management import call_command
from django.core.management.base import CommandError
from django_tasks_db.management.commands import db_worker

from core.engine import conf, scheduler
from core.engine.worker import RQ_JOB_CLASS, Worker, new_worker_id


class RoutineRunsQuiet(logging.Filter):
    """Leaves out django-tasks' "Task id=... path=... state=..." lines of the periodic jobs' runs
    unless they failed: the alert sweep alone runs every 10 seconds, and its two lines a run
    buried everything else the worker had to say. Every other task's lines, and a periodic job's
    failure, stay; ``--verbosity 2`` shows them all."""

    def __init__(self, paths):
        super().__init__()
        self.paths = frozenset(paths)

    def filter(self, record):
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) == 3 and str(record.msg).startswith("Task id=") and args[1] in self.paths:
            return str(args[2]) == "FAILED"
        return True


class Command(db_worker.Command):
    help = (
        "Run a background worker. Database backend (TASKS_BACKEND=database): claims ready tasks of "
        "the given queues ('default', 'forwarding', 'ops', or '*' for all), retries a failed task with capped exponential "
        "back-off (BACKGROUND_MAX_ATTEMPTS, BACKGROUND_RETRY_BASE, BACKGROUND_RETRY_CAP), writes a heartbeat "
        "every BACKGROUND_HEARTBEAT seconds and puts back tasks left RUNNING by a worker silent for "
        "BACKGROUND_LEASE seconds. Example: manage.py run_worker --queue-name ops. With TASKS_BACKEND=rq it "
        "runs django-rq's worker (with its scheduler) on the same queues, taken from Redis at TASKS_REDIS_URL."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(reload=False, worker_id=None)
        if conf.backend_name() != "database":
            # django-tasks-db's --backend accepts only a database backend; on RQ the name is not used
            for action in parser._actions:
                if action.dest == "backend_name":
                    action.type = str

    def handle(self, *, verbosity, queue_name, interval, batch, backend_name, startup_delay, max_tasks,
               worker_id, exclude_queues, **options):
        queue_names = queue_name.split(",")
        excluded = exclude_queues.split(",") if exclude_queues else []
        if excluded and "*" not in queue_names:
            raise CommandError("--exclude-queues can only be used with --queue-name=*")
        unknown = [q for q in queue_names if q != "*" and q not in conf.queues()]
        if unknown:
            raise CommandError(f"--queue-name: unknown queue {', '.join(map(repr, unknown))}; "
                               f"use {', '.join(conf.queues())} or '*'.")
        if conf.backend_name() == "rq":
            served = conf.queues() if "*" in queue_names else queue_names
            served = [q for q in served if q not in excluded]
            call_command("rqworker", *served, job_class=RQ_JOB_CLASS, with_scheduler=True, burst=bool(max_tasks), verbosity=verbosity,
                         max_jobs=max_tasks)
            return
        self.configure_logging(verbosity)
        worker = Worker(queue_names=queue_names, interval=interval, batch=batch, backend_name=backend_name,
                        startup_delay=startup_delay, max_tasks=max_tasks, worker_id=worker_id or new_worker_id(),
                        excluded_queue_names=excluded)
        worker.configure_signals()
        worker.run()

    def configure_logging(self, verbosity: int) -> None:
        super().configure_logging(verbosity)
        # on the logger the lines are logged to (its handler may be the root's), once per process
        tasks_logger = logging.getLogger(db_worker.TASKS_LOGGER)
        for old in [f for f in tasks_logger.filters if isinstance(f, RoutineRunsQuiet)]:
            tasks_logger.removeFilter(old)
        if verbosity == 1:
            tasks_logger.addFilter(RoutineRunsQuiet(getattr(job.task, "module_path", "") for job in scheduler.jobs()))
