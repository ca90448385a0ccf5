"""Periodic jobs: each job once per period, however many schedulers run."""

import datetime as dt
import logging
import threading

import pytest
from django.core.management import call_command
from django.db import connection
from django_tasks_db.models import DBTaskResult

from core.engine import scheduler
from core.models import ScheduledRun

T0 = dt.datetime(2026, 3, 1, 10, 0, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def audit_jobs_only(settings):
    """These tests count the audit's jobs; the alerts' sweep (tests/alerts) is switched off here."""
    settings.ALERT_SWEEP_EVERY = 0


def queued(name):
    return DBTaskResult.objects.filter(task_path=f"audit.operations.jobs.{name}").count()


@pytest.mark.django_db
def test_two_schedulers_in_the_same_period_enqueue_each_job_once():
    assert sorted(scheduler.tick(now=T0, scheduler_id="host-a")) == ["audit.purge", "audit.seal", "audit.verify"]
    assert scheduler.tick(now=T0 + dt.timedelta(seconds=20), scheduler_id="host-b") == []
    assert (queued("seal_audit"), queued("verify_audit"), queued("purge_audit")) == (1, 1, 1)
    run = ScheduledRun.objects.get(job="audit.seal")
    assert (run.period_start, run.scheduler) == (dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC), "host-a")
    assert run.task_id == str(DBTaskResult.objects.get(task_path="audit.operations.jobs.seal_audit").pk)


@pytest.mark.django_db
def test_the_next_period_enqueues_again_only_the_jobs_it_starts():
    scheduler.tick(now=T0)
    assert scheduler.tick(now=T0 + dt.timedelta(seconds=30)) == ["audit.seal"]  # 10:01:00
    assert sorted(scheduler.tick(now=dt.datetime(2026, 3, 1, 11, 0, 5, tzinfo=dt.UTC))) == ["audit.seal",
                                                                                               "audit.verify"]
    assert (queued("seal_audit"), queued("verify_audit"), queued("purge_audit")) == (3, 2, 1)


@pytest.mark.django_db
def test_intervals_come_from_settings_and_zero_switches_a_job_off(settings):
    settings.AUDIT_SEAL_EVERY = 10
    settings.AUDIT_VERIFY_EVERY = 0
    settings.AUDIT_PURGE_EVERY = 0
    assert scheduler.tick(now=T0) == ["audit.seal"]
    assert scheduler.tick(now=T0 + dt.timedelta(seconds=9)) == []  # 10:00:39 is still 10:00:30's period
    assert scheduler.tick(now=T0 + dt.timedelta(seconds=10)) == ["audit.seal"]
    assert queued("verify_audit") == 0


@pytest.mark.django_db
def test_run_scheduler_once_from_two_processes_enqueues_once(capsys):
    call_command("run_scheduler", "--once")
    call_command("run_scheduler", "--once")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Enqueued 3 job(s): ") and out[1] == "Enqueued 0 job(s)."
    assert ScheduledRun.objects.count() == 3


@pytest.mark.django_db
def test_run_scheduler_refuses_a_bad_interval():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--interval: use 0.1 to 60 seconds"):
        call_command("run_scheduler", "--once", "--interval", "0")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_schedulers_on_postgresql_enqueue_once():
    barrier = threading.Barrier(4)
    results = []

    def run(name):
        try:
            barrier.wait()
            results.append(scheduler.tick(now=T0, scheduler_id=name))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(f"s{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(name for names in results for name in names) == ["audit.purge", "audit.seal", "audit.verify"]
    assert (queued("seal_audit"), queued("verify_audit"), queued("purge_audit")) == (1, 1, 1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.database_tasks
def test_the_worker_says_nothing_of_a_routine_run_that_succeeded(caplog, settings):
    """``run_worker`` (verbosity 1) logs every ordinary task's start and end, a periodic job's
    run only when it failed (the alert sweep runs every 10 seconds); ``--verbosity 2`` all."""
    from tests.core import background_tasks

    def run(verbosity):
        caplog.clear()
        scheduler.tick(now=T0)  # enqueues the three audit jobs (seal, verify, purge)
        ordinary = background_tasks.flaky.enqueue(0)
        with caplog.at_level(logging.INFO):
            call_command("run_worker", queue_name="*", max_tasks=4, interval="0.1", verbosity=verbosity,
                         startup_delay=False)
        ScheduledRun.objects.all().delete()
        return ordinary.id, [r.getMessage() for r in caplog.records if r.getMessage().startswith("Task id=")]

    ordinary, lines = run(1)
    assert lines == [f"Task id={ordinary} path=tests.core.background_tasks.flaky state=RUNNING",
                     f"Task id={ordinary} path=tests.core.background_tasks.flaky state=SUCCESSFUL"], lines
    ordinary, lines = run(2)
    assert sum("audit.operations.jobs.seal_audit" in line for line in lines) == 2, lines
    assert f"Task id={ordinary} path=tests.core.background_tasks.flaky state=SUCCESSFUL" in lines
    # a periodic job's failure is always said
    from core.management.commands.run_worker import RoutineRunsQuiet

    quiet = RoutineRunsQuiet(["audit.operations.jobs.seal_audit"])
    failed = logging.LogRecord("django_tasks", logging.ERROR, __file__, 1, "Task id=%s path=%s state=%s",
                               ("7", "audit.operations.jobs.seal_audit", "FAILED"), None)
    assert quiet.filter(failed)
    failed.args = ("7", "audit.operations.jobs.seal_audit", "SUCCESSFUL")
    assert not quiet.filter(failed)


def test_the_scheduler_names_a_job_switched_off_as_off(settings):
    from core.management.commands.run_scheduler import job_list

    settings.AUDIT_VERIFY_EVERY = 0
    listed = job_list(scheduler.jobs())
    assert "audit.seal every 60 s" in listed and "audit.verify off" in listed and "every 0 s" not in listed
    assert job_list([]) == "no jobs"
