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
