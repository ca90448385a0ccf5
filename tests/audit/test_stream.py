"""``/api/realtime/stream`` served by real uvicorn processes (ASGI), read by
a raw HTTP client while other requests write: delivery within seconds, rows
limited to the caller's rights, the kinds filter, resume with
``Last-Event-ID`` (every missed row, none twice) and two server processes
(a write through one is streamed by the other).

The servers use the test database: on PostgreSQL the test database itself
(``transaction=True`` so that the personas are committed); on SQLite,
whose test database lives in memory, a file copy of it made after the
personas are created. Every wait has a deadline; servers are killed in
``finally``."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 40
DELIVERY_SECONDS = 3.0

pytestmark = pytest.mark.django_db(transaction=True)


# --- servers and clients --------------------------------------------------------


@pytest.fixture
def database_url(tokens):
    """A DATABASE_URL for server processes that reaches the test database
    (with the personas and their tokens)."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        user = settings["USER"] or "postgres"
        password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
        yield f"postgres://{user}{password}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"
        return
    folder = tempfile.mkdtemp(prefix="stream-test-")
    path = Path(folder) / "db.sqlite3"
    # Django's SQLite test database lives in memory: copy it (schema and personas) to a file.
    connection.ensure_connection()
    target = sqlite3.connect(path)
    connection.connection.backup(target)
    target.close()
    try:
        yield f"sqlite:///{path}"
    finally:
        for file in Path(folder).glob("*"):
            file.unlink()
        os.rmdir(folder)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


APP = "marine_center.asgi:application"


@contextlib.contextmanager
def server(database_url: str, app: str = APP):
    """A uvicorn process on a free port serving ``app``; yields its port."""
    with server_process(database_url, app) as (port, _proc):
        yield port


@contextlib.contextmanager
def server_process(database_url: str, app: str = APP):
    """A uvicorn process on a free port serving ``app``; yields its port and its ``Popen``."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "marine_center.settings_test"}
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"server exited: {log.read().decode(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("server did not start in time")
                time.sleep(0.2)
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def call(port: int, method: str, path: str, token: str | None = None, body: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


class StreamReader(threading.Thread):
    """Reads one SSE response in the background into ``messages``:
    ``[(received_at, id, event, data)]``."""

    def __init__(self, port: int, token: str | None, query: str = "", headers: dict | None = None,
                 seconds: float = 8.0):
        super().__init__(daemon=True)
        self.port, self.token, self.query, self.extra = port, token, query, headers or {}
        self.seconds = seconds
        self.messages: list[tuple[float, str, str, dict]] = []
        self.status: int | None = None
        self.headers: dict = {}
        self.body = b""
        self.opened = threading.Event()
        self.error: BaseException | None = None

    def run(self):
        try:
            self._read()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.opened.set()

    def _read(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.seconds + 20)
        headers = dict(self.extra)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        sep = "&" if self.query else ""
        conn.request("GET", f"/api/realtime/stream?timeout={self.seconds}{sep}{self.query}", headers=headers)
        response = conn.getresponse()
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        if response.status != 200:
            self.body = response.read()
            self.opened.set()
            return
        fields: dict[str, str] = {}
        while True:
            line = response.readline()
            if not line:
                break
            text = line.decode().rstrip("\n")
            if text.startswith(": stream open"):
                self.opened.set()
            if text == "":
                if "data" in fields:
                    self.messages.append((time.monotonic(), fields.get("id", ""), fields.get("event", ""),
                                          json.loads(fields["data"])))
                fields = {}
            elif not text.startswith(":"):
                name, _, value = text.partition(": ")
                fields[name] = value
        conn.close()

    def start_and_wait(self, timeout: float = 15.0) -> StreamReader:
        self.start()
        assert self.opened.wait(timeout), "the stream did not open"
        assert self.error is None, self.error
        return self

    def wait_for(self, predicate, timeout: float = DELIVERY_SECONDS):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in list(self.messages):
                if predicate(message):
                    return message
            time.sleep(0.05)
        return None

    def finish(self):
        self.join(timeout=self.seconds + 25)
        assert not self.is_alive(), "the stream did not end at its timeout"
        assert self.error is None, self.error


@pytest.fixture
def tokens(personas):
    from knox.models import AuthToken

    return {key: AuthToken.objects.create(user)[1] for key, user in personas.items()}


def _rows_above(table: str, low: int, database_url: str) -> set[int]:
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
            return {pk for (pk,) in db.execute(f"SELECT id FROM {table} WHERE id > ?", (low,))}  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table} WHERE id > %s", [low])  # noqa: S608
        return {pk for (pk,) in cursor.fetchall()}


def _max_id(table: str, database_url: str) -> int:
    return max(_rows_above(table, 0, database_url), default=0)


TIMESTAMP_LENGTH = len("2025-01-20T14:30:45.123Z")


# --- tests ----------------------------------------------------------------------------


def test_stream_delivers_commits_within_seconds_limited_by_rights_and_kinds(database_url, tokens):
    with server(database_url) as port:
        manager = StreamReader(port, tokens["engineer"]).start_and_wait()
        own = StreamReader(port, tokens["staff"]).start_and_wait()
        critical = StreamReader(port, tokens["admin"], "kinds=event&severity=critical").start_and_wait()
        audit_only = StreamReader(port, tokens["admin"], "kinds=audit").start_and_wait()

        status, created = call(port, "POST", "/api/maintenance-requests/", tokens["staff"],
                               {"vessel": "MV Aurora", "title": "Bilge pump", "change_reason": "stream test"})
        assert status == 201, created
        written_at = time.monotonic()
        status, emergency = call(port, "POST", "/api/emergencies/", tokens["engineer"],
                                 {"vessel": "MV Aurora", "emergency_type": "fire", "description": "Engine room",
                                  "severity": "critical"})
        assert status == 201, emergency
        code = created["code"]

        audit = manager.wait_for(lambda m: m[2] == "audit" and m[3]["entity_id"] == code)
        assert audit is not None, manager.messages
        assert audit[0] - written_at < DELIVERY_SECONDS
        assert set(audit[3]) == {"id", "timestamp", "user_id", "action_type", "entity_type", "entity_id",
                                 "old_value", "new_value", "ip_address", "status"}
        assert audit[3]["action_type"] == "create" and audit[3]["user_id"] == "ST001"
        assert audit[3]["timestamp"].endswith("Z") and len(audit[3]["timestamp"]) == TIMESTAMP_LENGTH
        staff_write = manager.wait_for(lambda m: m[2] == "activity" and m[3]["user_id"] == "ST001"
                                       and m[3]["activity"] == "API POST /api/maintenance-requests/")
        assert staff_write is not None
        assert set(staff_write[3]) == {"id", "user_id", "activity", "details", "timestamp", "ip_address"}
        assert manager.wait_for(lambda m: m[2] == "event" and m[3]["event_type"] == "emergency_created")
        assert critical.wait_for(lambda m: m[3].get("event_type") == "emergency_created"
                                 and m[3]["entity_id"] == emergency["code"])
        assert own.wait_for(lambda m: m[3]["activity"] == "API POST /api/maintenance-requests/")
        assert audit_only.wait_for(lambda m: m[3]["entity_id"] == emergency["code"])

        refused = StreamReader(port, tokens["staff"], "kinds=audit").start_and_wait()
        anonymous = StreamReader(port, None).start_and_wait()
        for reader in (manager, own, critical, audit_only, refused, anonymous):
            reader.finish()

    assert manager.headers["content-type"].startswith("text/event-stream")
    assert {m[3]["user_id"] for m in own.messages} == {"ST001"}
    assert {m[2] for m in own.messages} == {"activity"}  # no audit_trail, no system event for staff
    assert {m[2] for m in critical.messages} == {"event"}
    assert {m[3]["severity"] for m in critical.messages} == {"critical"}
    assert {m[2] for m in audit_only.messages} == {"audit"}
    ids = [(m[2], m[3]["id"]) for m in manager.messages]
    assert len(ids) == len(set(ids))  # nothing twice
    assert refused.status == 403 and json.loads(refused.body)["success"] is False
    assert anonymous.status == 401 and json.loads(anonymous.body)["error"]["code"] == "not_authenticated"


def test_resume_with_last_event_id_delivers_exactly_the_missed_rows(database_url, tokens):
    with server(database_url) as port:
        start = {t: _max_id(t, database_url) for t in ("activity_logs", "audit_trail", "system_events")}
        cursor = f"a{start['activity_logs']}-t{start['audit_trail']}-e{start['system_events']}"
        first = StreamReader(port, tokens["admin"], f"last_event_id={cursor}&max_events=3").start_and_wait()
        for n in range(2):
            status, _ = call(port, "POST", "/api/inventory/", tokens["admin"],
                             {"part_number": f"PN-{n}", "name": f"Filter {n}"})
            assert status == 201
        first.finish()
        assert len(first.messages) == 3
        last_id = first.messages[-1][1]

        # disconnected: more changes happen
        for n in range(2, 4):
            status, _ = call(port, "POST", "/api/inventory/", tokens["engineer"],
                             {"part_number": f"PN-{n}", "name": f"Filter {n}"})
            assert status == 201

        second = StreamReader(port, tokens["admin"], headers={"Last-Event-ID": last_id}, seconds=3).start_and_wait()
        second.finish()

    delivered_first = {(m[2], m[3]["id"]) for m in first.messages}
    delivered_second = [(m[2], m[3]["id"]) for m in second.messages]
    assert delivered_first.isdisjoint(delivered_second)  # no duplicates across the reconnection
    assert len(delivered_second) == len(set(delivered_second))  # none within it
    expected = {
        (kind, pk)
        for kind, table in (("activity", "activity_logs"), ("audit", "audit_trail"), ("event", "system_events"))
        for pk in _rows_above(table, start[table], database_url)
    }
    assert delivered_first | set(delivered_second) == expected  # no loss
    entity_ids = {m[3]["entity_id"] for m in second.messages if m[2] == "audit"}
    assert {"INV003", "INV004"} <= entity_ids


def test_a_write_through_one_server_process_is_streamed_by_another(database_url, tokens):
    with server(database_url) as port_a, server(database_url) as port_b:
        reader = StreamReader(port_b, tokens["engineer"], "kinds=audit").start_and_wait()
        status, item = call(port_a, "POST", "/api/inventory/", tokens["admin"],
                            {"part_number": "XP-1", "name": "Impeller", "change_reason": "two processes"})
        assert status == 201, item
        written_at = time.monotonic()
        message = reader.wait_for(lambda m: m[3]["entity_id"] == item["code"])
        reader.finish()
    assert message is not None, reader.messages
    assert message[0] - written_at < DELIVERY_SECONDS
    assert message[3]["user_id"] == "ADM001" and message[3]["action_type"] == "create"
