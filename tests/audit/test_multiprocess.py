"""Several servers, one PostgreSQL: two uvicorn processes take writes at once and no audit row is lost."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection

from audit.models import ActivityLog, AuditTrail
from audit.operations import integrity
from maintenance.models import MaintenanceRequest

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
WRITES_PER_SERVER = 15


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, token, body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def start_servers(tmp_path, count, app="marine_center.asgi:application", **extra_env):
    """``count`` uvicorn processes on the test database; yields their ports."""
    s = connection.settings_dict
    url = f"postgres://{s['USER']}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "marine_center.settings_test", "DEBUG": "0",
           "AUDIT_SEAL_FILE": str(tmp_path / "seal.json"), **extra_env}
    procs, ports = [], []
    for _ in range(count):
        port = free_port()
        log = open(tmp_path / f"uvicorn-{port}.log", "wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1", "--no-proxy-headers", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        ports.append(port)
    try:
        for port, proc in zip(ports, procs, strict=True):
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError((tmp_path / f"uvicorn-{port}.log").read_text()) from None
                    time.sleep(0.2)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def servers(tmp_path):
    yield from start_servers(tmp_path, 2)


def test_two_servers_on_one_database_lose_no_audit_row(servers, engineer, staff, settings, tmp_path):
    from knox.models import AuthToken

    settings.AUDIT_SEAL_FILE = str(tmp_path / "seal.json")
    tokens = {"PE001": AuthToken.objects.create(engineer)[1], "ST001": AuthToken.objects.create(staff)[1]}
    connection.close()  # the servers and this process must not share a connection

    def create(args):
        port, user, i = args
        return call(port, "POST", "/api/maintenance-requests/", tokens[user],
                    {"vessel": f"MV Port{port}", "title": f"Job {user} {i}", "change_reason": f"run {i}"})

    jobs = [(port, user, i) for port in servers for user in tokens for i in range(WRITES_PER_SERVER)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(create, jobs))
    assert [status for status, _ in results] == [201] * len(jobs), results[:3]
    codes = {(body.get("data") or body).get("code") for _, body in results}
    assert len(codes) == len(jobs) and None not in codes

    # both servers did the work, every write has exactly its audit rows
    assert MaintenanceRequest.objects.count() == len(jobs)
    assert {r.vessel for r in MaintenanceRequest.objects.all()} == {f"MV Port{p}" for p in servers}
    creates = AuditTrail.objects.filter(entity_type="maintenance_request", action_type="create")
    assert sorted(creates.values_list("entity_id", flat=True)) == sorted(codes)
    for trail in creates:
        assert trail.user_id in tokens and trail.change_reason.startswith("run ")
        assert trail.ip_address == "127.0.0.1"
    api_writes = ActivityLog.objects.filter(method="POST", path="/api/maintenance-requests/")
    # each write: the middleware's API row and the action in words (core.actions), both from the request
    assert api_writes.filter(activity__startswith="API POST").count() == len(jobs)
    assert api_writes.filter(activity__startswith="Created maintenance request").count() == len(jobs)
    assert api_writes.count() == 2 * len(jobs)

    # and it all seals and verifies as one log
    integrity.seal()
    report = integrity.verify()
    assert report.ok and report.rows_checked >= 2 * len(jobs)


def test_with_the_connection_pool_requests_reuse_connections_and_capture_as_usual(engineer, tmp_path):
    """``DATABASE_POOL=1`` (psycopg's pool, for ASGI): the server's
    connections outlive requests, so the capture statements prepared on them
    are reused; every write still has exactly its audit rows."""
    from knox.models import AuthToken

    token = AuthToken.objects.create(engineer)[1]
    mine = connection.settings_dict["NAME"]

    def server_backends() -> set[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
                           "AND backend_type = 'client backend'", [mine])
            return {pid for (pid,) in cursor.fetchall()}

    for [port] in start_servers(tmp_path, 1, DATABASE_POOL="1", DATABASE_POOL_MIN="1", DATABASE_POOL_MAX="2"):
        status, body = call(port, "POST", "/api/maintenance-requests/", token,
                            {"vessel": "MV Pool", "title": "Job 0", "change_reason": "pooled"})
        assert status == 201, body
        code = (body.get("data") or body)["code"]
        first = server_backends()
        for i in range(1, 11):
            status, body = call(port, "PATCH", f"/api/maintenance-requests/{code}/", token,
                                {"title": f"Job {i}", "change_reason": f"pooled {i}"})
            assert status == 200, body
        assert first and server_backends() == first and len(first) <= 2  # the same connections throughout
    updates = AuditTrail.objects.filter(entity_id=code, action_type="update").order_by("id")
    assert [t.change_reason for t in updates] == [f"pooled {i}" for i in range(1, 11)]
    assert [json.loads(t.new_value)["title"] for t in updates] == [f"Job {i}" for i in range(1, 11)]
    assert MaintenanceRequest.history.filter(code=code).count() == 11
