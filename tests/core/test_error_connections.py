"""No PostgreSQL connection left behind by an unhandled error under uvicorn (issue 12.10).

Django converts an exception to its response in a thread of the default executor
under ASGI, where the ``unhandled_error`` event (and DEBUG's technical page,
reading ``request.user``) opened connections that ``request_finished`` never
closed. A server answers errors, then pg_stat_activity's count of connections to
the test database comes back to what it was before them."""

import time
import urllib.error
import urllib.request

import pytest
from django.db import connection

from tests.audit.test_multiprocess import call, start_servers

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ERRORS = 12


def _status(port: int, path: str, token: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _connections_to_this_database() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


def _settled_count(baseline: int, seconds: float = 10.0) -> int:
    deadline = time.monotonic() + seconds
    while True:
        count = _connections_to_this_database()
        if count <= baseline or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


@pytest.mark.parametrize("debug", ["0", "1"], ids=["debug-off", "debug-on"])
def test_errors_leave_no_connection_open(tmp_path, admin_user, debug):
    from knox.models import AuthToken

    token = AuthToken.objects.create(admin_user)[1]
    servers = start_servers(tmp_path, 1, app="tests.core.asgi_errors:application", DEBUG=debug)
    try:
        (port,) = next(servers)
        assert call(port, "GET", "/api/maintenance-requests/", token)[0] == 200  # warm: a normal request
        baseline = _settled_count(0, seconds=2)
        paths = ["/api/test-boom/", "/test-boom/"]  # the API's JSON 500 and the portal's HTML one
        statuses = [_status(port, paths[i % 2], token) for i in range(ERRORS)]
        assert statuses == [500] * ERRORS
        assert _settled_count(baseline) == baseline
    finally:
        servers.close()
