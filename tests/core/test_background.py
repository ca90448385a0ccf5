"""The background engine: the task framework on the database backend, queues, retries and back-off."""

import datetime as dt

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from audit.models import AuditSeal
from audit.operations import jobs
from core import background
from core.background import RetryPolicy, TaskResultStatus, run_pending

from . import background_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def seal_file(tmp_path, settings):
    settings.AUDIT_SEAL_FILE = str(tmp_path / "seal.json")
    settings.AUDIT_SEAL_KEY = "k" * 40
    return tmp_path / "seal.json"


def test_the_default_backend_keeps_tasks_in_the_project_database():
    from django_tasks_db import DatabaseBackend

    assert isinstance(background.task_backends["default"], DatabaseBackend)
    assert background.task_backends["default"].queues == {"default", "forwarding", "ops"}


def test_sealing_verification_and_purging_go_to_the_ops_queue():
    assert {jobs.seal_audit.queue_name, jobs.verify_audit.queue_name, jobs.purge_audit.queue_name} == {"ops"}
    result = jobs.seal_audit.enqueue()
    row = DBTaskResult.objects.get(pk=result.id)
    assert (row.queue_name, row.status) == ("ops", "READY")
    assert run_pending(queues=["default"]) == 0  # a default-only worker leaves it alone
    assert run_pending(queues=["ops"]) == 1
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"seq": 1, "rows": AuditSeal.objects.get().row_count}


@pytest.mark.parametrize(("failed", "delay"), [(1, 2.0), (2, 4.0), (3, 8.0), (6, 64.0), (9, 300.0), (40, 300.0)])
def test_back_off_doubles_and_is_capped(failed, delay):
    assert RetryPolicy(max_attempts=50, base_delay=2, max_delay=300).delay(failed) == delay


def test_a_failing_task_is_retried_until_it_succeeds(settings):
    settings.BACKGROUND_MAX_ATTEMPTS = 3
    settings.BACKGROUND_RETRY_BASE = 0  # no wait, so one batch runs every attempt
    result = background_tasks.flaky.enqueue(2)
    assert run_pending() == 3
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 3
    assert len(result.worker_ids) == 3


def test_a_task_out_of_attempts_fails_with_its_last_error(settings):
    settings.BACKGROUND_MAX_ATTEMPTS = 2
    settings.BACKGROUND_RETRY_BASE = 0
    result = background_tasks.flaky.enqueue(5)
    assert run_pending() == 2
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == "builtins.RuntimeError"
    assert "attempt 2 fails on purpose" in result.errors[-1].traceback


def test_a_retry_waits_for_its_back_off_and_keeps_the_error():
    before = timezone.now()
    result = background_tasks.always_fails.enqueue()
    assert run_pending() == 1  # the retry is not due yet
    row = DBTaskResult.objects.get(pk=result.id)
    assert row.status == "READY"
    assert row.run_after >= before + dt.timedelta(seconds=59)
    assert row.exception_class_path == "builtins.ValueError" and "never works" in row.traceback
    assert len(row.worker_ids) == 1
    assert background.retry_policy(background_tasks.always_fails.module_path).max_attempts == 5
