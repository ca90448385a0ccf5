"""GET /healthz and GET /readyz (issue 11.11): unauthenticated, plain, no
detail of the failure leaked, never an activity row; /readyz is 503 when the
database is missing, unreachable or not migrated."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from audit.models import ActivityLog

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probe_answers_ok_anonymously_and_writes_no_activity(client, path):
    before = ActivityLog.objects.count()
    for _ in range(3):
        response = client.get(path)
        assert response.status_code == 200
        assert response["Content-Type"] == "text/plain; charset=utf-8"
        assert response.content == b"ok\n"
        assert "no-cache" in response["Cache-Control"]
    assert ActivityLog.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probe_refuses_writes(client, path):
    assert client.post(path).status_code == 405


def _probe_with_database(url: str) -> tuple[int, bytes, str]:
    """Status and body of /readyz and /healthz from a fresh process whose DATABASE_URL is ``url``."""
    code = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "c = Client(HTTP_HOST='127.0.0.1')\n"
        "r = c.get('/readyz'); h = c.get('/healthz')\n"
        "print(r.status_code, h.status_code, repr(r.content))\n"
    )
    env = {**os.environ, "DATABASE_URL": url, "TESTING": "1", "DEBUG": "0",
           "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "marine_center.settings")}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    ready, health, body = result.stdout.strip().splitlines()[-1].split(" ", 2)
    return int(ready), int(health), body + "\n" + result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgres://postgres@127.0.0.1:1/marine_nowhere",  # nothing listens on port 1
        "sqlite:////nonexistent-directory/marine/db.sqlite3",  # a database that cannot be opened
    ],
    ids=["unreachable", "missing"],
)
def test_readyz_is_503_without_a_database(url):
    ready, health, out = _probe_with_database(url)
    assert ready == 503
    assert health == 200  # the process is up; only readiness depends on the database
    body = out.splitlines()[0]
    assert body == "b'not ready\\n'"  # no driver message, host or path reaches the caller
    assert "database unavailable" in out  # the reason is in the server's log


def test_readyz_is_503_with_unapplied_migrations(tmp_path):
    db = tmp_path / "empty.sqlite3"
    db.touch()  # exists and answers, but nothing is migrated
    ready, health, out = _probe_with_database(f"sqlite:///{db}")
    assert ready == 503
    assert health == 200
    assert "unapplied migration" in out
