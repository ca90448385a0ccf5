"""Workers: heartbeats, and a task whose worker died is run again (recovery of stuck tasks)."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from core import background
from core.engine import heartbeat, recovery
from core.models import WorkerHeartbeat

from . import background_tasks

ROOT = Path(__file__).resolve().parents[2]


def running_row(*, worker_ids, started_ago: float, task=background_tasks.flaky, args=(0,)):
    result = task.enqueue(*args)
    DBTaskResult.objects.filter(pk=result.id).update(
        status="RUNNING", worker_ids=worker_ids, started_at=timezone.now() - dt.timedelta(seconds=started_ago))
    return result


@pytest.mark.django_db
def test_a_task_running_on_a_silent_worker_goes_back_to_ready(settings):
    settings.BACKGROUND_LEASE = 30
    heartbeat.start(worker_id="dead", queues=["default"])
    WorkerHeartbeat.objects.filter(pk="dead").update(last_seen=timezone.now() - dt.timedelta(seconds=31))
    stuck = running_row(worker_ids=["dead"], started_ago=45)
    assert recovery.recover_stuck() == 1
    row = DBTaskResult.objects.get(pk=stuck.id)
    assert row.status == "READY" and "worker dead stopped while running attempt 1" in row.traceback
    assert background.run_pending() == 1
    stuck.refresh()
    assert stuck.status == background.TaskResultStatus.SUCCESSFUL and stuck.worker_ids[0] == "dead"


@pytest.mark.django_db
def test_a_long_task_on_a_live_worker_and_a_young_task_are_left_alone(settings):
    settings.BACKGROUND_LEASE = 30
    heartbeat.start(worker_id="alive", queues=["default"])
    long_one = running_row(worker_ids=["alive"], started_ago=600)
    young = running_row(worker_ids=["never-beat"], started_ago=5)
    assert recovery.recover_stuck() == 0
    assert set(DBTaskResult.objects.filter(pk__in=[long_one.id, young.id]).values_list("status", flat=True)) == {
        "RUNNING"}


@pytest.mark.django_db
def test_a_task_out_of_attempts_is_failed_not_run_again(settings):
    settings.BACKGROUND_MAX_ATTEMPTS = 2
    stuck = running_row(worker_ids=["w1", "w2"], started_ago=3600)
    assert recovery.recover_stuck() == 1
    stuck.refresh()
    assert stuck.status == background.TaskResultStatus.FAILED
    assert stuck.errors[-1].exception_class_path == "core.engine.recovery.WorkerLost"


@pytest.mark.django_db
def test_worker_status_shows_the_last_heartbeat_and_whether_it_is_stale(settings):
    settings.BACKGROUND_LEASE = 30
    assert background.worker_status().last_seen is None and background.worker_status().stale
    heartbeat.start(worker_id="w1", queues=["default", "ops"])
    status = background.worker_status()
    assert (status.worker_id, status.queues, status.stale, status.workers_alive) == ("w1", "default,ops", False, 1)
    WorkerHeartbeat.objects.filter(pk="w1").update(last_seen=timezone.now() - dt.timedelta(minutes=5))
    status = background.worker_status()
    assert status.stale and status.age_seconds >= 300 and status.workers_alive == 0


def _worker(env, name, log_dir):
    log = open(log_dir / f"{name}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--queue-name", "default", "--interval", "0.2",
         "--no-startup-delay", "--worker-id", name],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait(condition, what, procs, log_dir, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(p.read_text() for p in log_dir.glob("*.log"))
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_with_sigkill_leaves_its_task_to_the_next_worker(tmp_path):
    s = connection.settings_dict
    env = {**os.environ, "DATABASE_URL": f"postgres://{s['USER']}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}",
           "DJANGO_SETTINGS_MODULE": "marine_center.settings_test", "DEBUG": "0", "BACKGROUND_HEARTBEAT": "0.3", "BACKGROUND_LEASE": "2",
           "AUDIT_SEAL_FILE": str(tmp_path / "seal.json")}
    marker = tmp_path / "marker"
    result = background_tasks.sleepy_once.enqueue(str(marker))
    first = _worker(env, "worker-a", tmp_path)
    procs = [first]
    try:
        _wait(lambda: marker.exists(), "the first attempt to start", procs, tmp_path)
        assert DBTaskResult.objects.get(pk=result.id).status == "RUNNING"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        second = _worker(env, "worker-b", tmp_path)
        procs.append(second)
        _wait(lambda: DBTaskResult.objects.get(pk=result.id).status == "SUCCESSFUL", "the task to be run again",
              procs, tmp_path)
        result.refresh()
        assert result.worker_ids == ["worker-a", "worker-b"]
        assert result.return_value == 2 and marker.read_text() == "done on attempt 2"
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=20) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    beats = {b.worker_id: b for b in WorkerHeartbeat.objects.all()}
    assert beats["worker-a"].stopped_at is None  # killed: it could not say goodbye
    assert beats["worker-b"].stopped_at is not None
    assert background.worker_status().worker_id == "worker-b"
