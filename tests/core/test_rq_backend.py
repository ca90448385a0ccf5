"""The RQ backend (TASKS_BACKEND=rq, Redis at TASKS_REDIS_URL): selected by configuration, every
queue mapped to Redis, the scheduler enqueuing through the same API and a worker running the jobs.
Run by .ci/run with the RQ backend; skipped on the default database backend."""

import datetime as dt

import pytest
from django.conf import settings
from django.core.management import call_command

from core import background
from core.engine import scheduler

pytestmark = [
    pytest.mark.tasks,
    pytest.mark.skipif(settings.TASKS_BACKEND != "rq", reason="runs with TASKS_BACKEND=rq (see .ci/run)"),
]


def test_every_queue_is_mapped_to_redis():
    import django_rq

    backend = background.task_backends["default"]
    assert type(backend).__name__ == "RQBackend"
    assert backend.queues == set(settings.BACKGROUND_QUEUES) == {"default", "forwarding", "ops"}
    for name in settings.BACKGROUND_QUEUES:
        kwargs = django_rq.get_queue(name).connection.connection_pool.connection_kwargs
        assert f"{kwargs['host']}:{kwargs['port']}/{kwargs['db']}" in settings.TASKS_REDIS_URL
    call_command("check", "--fail-level", "ERROR")  # django-tasks-rq's own checks: django_rq installed, queues known


@pytest.mark.django_db
def test_a_task_goes_to_its_queue_on_redis_and_a_worker_runs_it():
    import django_rq

    from tests.core.background_tasks import flaky

    result = flaky.using(queue_name="ops").enqueue(0)
    assert django_rq.get_queue("ops").job_ids == [result.id]
    assert background.run_pending(queues=["default"]) == 0  # a default-only worker leaves it alone
    assert background.run_pending(queues=["ops"]) == 1
    result.refresh()
    assert result.status == background.TaskResultStatus.SUCCESSFUL
    assert result.return_value == 1


@pytest.mark.django_db
def test_the_scheduler_enqueues_its_jobs_on_redis(settings):
    import django_rq

    settings.ALERT_SWEEP_EVERY = 0
    now = dt.datetime(2026, 3, 1, 10, 0, 30, tzinfo=dt.UTC)
    assert sorted(scheduler.tick(now=now)) == ["audit.purge", "audit.seal", "audit.verify"]
    assert scheduler.tick(now=now) == []  # once per period, as on the database backend
    assert django_rq.get_queue("ops").count == 3


def test_run_worker_serves_the_queues_with_the_rq_worker(tmp_path):
    """``manage.py run_worker`` on the RQ backend runs django-rq's worker (in its own process here)
    with django-tasks-rq's job class: the task runs and its result is stored in Redis."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.core.background_tasks import flaky

    result = flaky.using(queue_name="ops").enqueue(0)
    env = {**os.environ, "TASKS_BACKEND": "rq", "TASKS_REDIS_URL": settings.TASKS_REDIS_URL,
           "DJANGO_SETTINGS_MODULE": "marine_center.settings_test",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}"}
    proc = subprocess.run([sys.executable, "manage.py", "run_worker", "--queue-name", "ops", "--max-tasks", "1"],
                          cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result.refresh()
    assert result.status == background.TaskResultStatus.SUCCESSFUL and result.return_value == 1
