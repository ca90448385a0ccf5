"""Forwarding through a worker killed with SIGKILL mid-run (PostgreSQL: the workers are separate
processes): the next worker resumes from the stored cursors and every row reaches the sink."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from audit.models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory
from forwarding.models import ForwardCursor
from forwarding.tasks import forward_audit

ROOT = Path(__file__).resolve().parents[2]
MODELS = {"activity_logs": ActivityLog, "audit_trail": AuditTrail, "update_history": UpdateHistory,
          "system_events": SystemEvent}


def _worker(env, name, log_dir):
    log = open(log_dir / f"{name}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--queue-name", "forwarding", "--interval", "0.2",
         "--no-startup-delay", "--worker-id", name], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait(condition, what, log_dir, timeout=90):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(p.read_text() for p in log_dir.glob("*.log"))
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_loses_no_row_and_the_next_one_resumes_from_the_cursor(tmp_path, http_sink, write_rows):
    s = connection.settings_dict
    url = f"http://127.0.0.1:{http_sink.port}/ingest"
    env = {**os.environ, "DATABASE_URL": f"postgres://{s['USER']}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}",
           "DJANGO_SETTINGS_MODULE": "marine_center.settings_test", "DEBUG": "0", "BACKGROUND_HEARTBEAT": "0.3", "BACKGROUND_LEASE": "2",
           "AUDIT_SEAL_FILE": str(tmp_path / "seal.json"), "AUDIT_FORWARD_SINKS": url, "AUDIT_FORWARD_BATCH": "20",
           "AUDIT_FORWARD_RUN_FOR": "60"}
    write_rows(60)
    http_sink.delay = 0.3  # slow enough to kill the worker between two batches
    forward_audit.enqueue()
    procs = [_worker(env, "fwd-a", tmp_path)]
    try:
        _wait(lambda: len(http_sink.received) >= 2, "the first batches", tmp_path)
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].wait(timeout=10)
        delivered_before = len(http_sink.records())
        write_rows(20, start=60)
        http_sink.delay = 0
        procs.append(_worker(env, "fwd-b", tmp_path))
        forward_audit.enqueue()
        expected = {t: list(m.objects.order_by("pk").values_list("pk", flat=True)) for t, m in MODELS.items()}

        def all_delivered():
            got = {}
            for record in http_sink.records():
                got.setdefault(record["metadata"]["log_name"], set()).add(int(record["metadata"]["uid"].rsplit(":")[-1]))
            return all(set(ids) <= got.get(t, set()) for t, ids in expected.items())

        _wait(all_delivered, "every row at the sink", tmp_path)
        _wait(lambda: all(ForwardCursor.objects.get(sink=url, table=t).last_id == ids[-1]
                          for t, ids in expected.items()), "the cursors to reach the last rows", tmp_path)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    assert 0 < delivered_before < 4 * 80
    # in order per table: each table's ids first arrive in increasing order (a resent batch repeats, never reorders)
    first_seen = {}
    for record in http_sink.records():
        table, row_id = record["metadata"]["log_name"], int(record["metadata"]["uid"].rsplit(":")[-1])
        seen = first_seen.setdefault(table, [])
        if row_id not in seen:
            seen.append(row_id)
    assert first_seen == expected
