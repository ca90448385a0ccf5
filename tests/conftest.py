"""Shared personas and clients for every test.

ADM001 (admin), PE001 (port engineer), ST001 and ST002 (staff); all share
PASSWORD. ``api(user)`` gives a DRF client authenticated by a real Bearer token.
"""

import pytest
from django.db import connection
from django.db.backends.signals import connection_created
from rest_framework.test import APIClient

PASSWORD = "Harbour-Pass-2025"


def _allow_audit_rewrite_in_tests(sender, connection, **kwargs):
    """On PostgreSQL the audit tables refuse UPDATE/DELETE/TRUNCATE (migration
    audit 0002). Tests back-date rows and flush tables, so the test process's
    own connections set ``audit.test_rewrite``; tests of the triggers turn it
    off (tests/audit/test_append_only.py).

    They also commit without waiting for the WAL to reach the disk (``synchronous_commit = off``:
    what a commit makes visible, and when, is unchanged; only a crash of the server could lose the
    last commits, and no test crashes it). The servers and workers that tests start get the same
    from the test database's own setting (``django_db_setup`` below)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET audit.test_rewrite = 'on'")
            cursor.execute("SET synchronous_commit = off")


connection_created.connect(_allow_audit_rewrite_in_tests, dispatch_uid="tests_allow_audit_rewrite")


def _flush_by_delete_on_postgresql():
    """After each transactional test Django empties every table with one ``TRUNCATE``. On
    PostgreSQL a TRUNCATE gives each table and each of its indexes a new file, and building each
    empty btree ends with an fsync of its file: a few hundred fsyncs per test, one to four seconds
    each time under I/O load. The test process empties the tables with ``DELETE`` instead (the
    same empty tables; the foreign keys are checked at the end of the flush's transaction, and
    the audit tables let the test harness delete through ``audit.test_rewrite``, above). A flush
    that resets sequences keeps Django's TRUNCATE ... RESTART IDENTITY."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or not tables:
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return ["SET CONSTRAINTS ALL DEFERRED"] + [
            f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};" for table in tables
        ]

    DatabaseOperations.sql_flush = sql_flush


_flush_by_delete_on_postgresql()


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        skip = pytest.mark.skip(reason="PostgreSQL-only: set DATABASE_URL to a PostgreSQL database to run it")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)
    if settings.TASKS_BACKEND != "database":
        skip = pytest.mark.skip(reason="reads the database backend's task rows; TASKS_BACKEND is not 'database'")
        for item in items:
            if "database_tasks" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _empty_rq_queues():
    """On the RQ backend (TASKS_BACKEND=rq), each test starts with empty queues: a job left by
    an earlier test would point at rows its rolled-back transaction never kept. Only the Redis
    database of TASKS_REDIS_URL is flushed."""
    from django.conf import settings

    if settings.TASKS_BACKEND == "rq":
        import django_rq

        django_rq.get_connection("default").flushdb()
    yield


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, and at the end: end the sessions that
    threads and server subprocesses of some tests may have left open on
    PostgreSQL, so the test database is dropped cleanly.

    On PostgreSQL the test database commits without waiting for the disk (see
    ``_allow_audit_rewrite_in_tests``) for every connection, those of the servers and
    workers that tests start included."""
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER DATABASE {connection.ops.quote_name(connection.settings_dict['NAME'])} "
                               "SET synchronous_commit = off")
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture(autouse=True)
def _shared_cache_emptied(request, django_db_blocker):
    """The shared cache (the lock-out's counters) is a database table, and a
    transactional test's rows outlive it: empty it after such a test."""
    yield
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
    if transactional or {"transactional_db", "live_server"} & set(request.fixturenames):
        from django.core.cache import caches

        with django_db_blocker.unblock():
            for cache in caches.all():
                cache.clear()


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture
def make_user(db):
    from accounts.models import User

    def make(user_id, role="staff", password=PASSWORD, **fields):
        fields.setdefault("full_name", f"{user_id} Person")
        fields.setdefault("email", f"{user_id.lower()}@example.com")
        return User.objects.create_user(user_id=user_id, password=password, role=role, **fields)

    return make


@pytest.fixture
def admin_user(make_user):
    return make_user("ADM001", role="admin")


@pytest.fixture
def engineer(make_user):
    return make_user("PE001", role="port_engineer")


@pytest.fixture
def staff(make_user):
    return make_user("ST001", role="staff")


@pytest.fixture
def other_staff(make_user):
    return make_user("ST002", role="staff")


@pytest.fixture
def personas(admin_user, engineer, staff, other_staff):
    return {"admin": admin_user, "engineer": engineer, "staff": staff, "other_staff": other_staff}


@pytest.fixture
def anon_api():
    return APIClient()


@pytest.fixture
def api(db):
    """api(user) -> APIClient sending a real Bearer token for that user."""
    from knox.models import AuthToken

    def make(user):
        client = APIClient()
        if user is not None:
            _, token = AuthToken.objects.create(user)
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


@pytest.fixture
def portal(client):
    """portal(user) -> Django test client logged in through the login form."""

    def make(user):
        from django.test import Client

        c = Client()
        if user is not None:
            response = c.post("/login/", {"username": user.user_id, "password": PASSWORD})
            assert response.status_code == 302, f"login failed for {user.user_id}"
        return c

    return make
