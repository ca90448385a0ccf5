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
    off (tests/audit/test_append_only.py)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET audit.test_rewrite = 'on'")


connection_created.connect(_allow_audit_rewrite_in_tests, dispatch_uid="tests_allow_audit_rewrite")


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
    PostgreSQL, so the test database is dropped cleanly."""
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
