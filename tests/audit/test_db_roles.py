"""PostgreSQL least privilege (issue 11, item 6): ``manage.py create_db_roles``
makes an owner, an application and a purge role; the application role owns
nothing and cannot delete, update, truncate, disable a trigger or switch the
purge exception on; only the purge role's ``audit.allow_purge`` is honoured;
``purge_audit`` through DATABASE_PURGE_URL still works and ``migrate`` runs as
DATABASE_OWNER_URL. Role names are unique per test session (the server is shared)."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from audit.models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory

from .integrity_helpers import backdate, make_rows

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Role-Pass-" + uuid.uuid4().hex[:12]


@pytest.fixture(autouse=True)
def seal_file(tmp_path, settings):
    settings.AUDIT_SEAL_FILE = str(tmp_path / "seal.json")
    settings.AUDIT_SEAL_KEY = "k" * 40


@pytest.fixture
def roles():
    """Three roles of this test's own, made by the command; dropped after it."""
    tag = f"t{uuid.uuid4().hex[:10]}"
    names = {"owner": f"{tag}_owner", "app": f"{tag}_app", "purge": f"{tag}_purge", "rogue": f"{tag}_rogue"}
    options = {role: names[role] for role in ("owner", "app", "purge")}
    options.update({f"{role}_password": PASSWORD for role in ("owner", "app", "purge")})
    call_command("create_db_roles", **options)
    call_command("create_db_roles", **options)  # a second run changes nothing and fails on nothing
    with connection.cursor() as cursor:
        # a role that was wrongly given DELETE on the audit tables, to show the trigger's own check
        cursor.execute(f'CREATE ROLE "{names["rogue"]}" LOGIN PASSWORD %s', [PASSWORD])
        cursor.execute(f'GRANT "{names["app"]}" TO "{names["rogue"]}"')
        cursor.execute(f'GRANT DELETE ON activity_logs, audit_trail TO "{names["rogue"]}"')
    yield names
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY(%s)",
                       [list(names.values())])
        cursor.execute(f'REASSIGN OWNED BY "{names["owner"]}" TO CURRENT_USER')
        for name in names.values():
            cursor.execute(f'DROP OWNED BY "{name}"')
            cursor.execute(f'DROP ROLE IF EXISTS "{name}"')
        cursor.execute("DELETE FROM audit_purge_roles WHERE role_name = ANY(%s)", [list(names.values())])


def url(role: str) -> str:
    s = connection.settings_dict
    return f"postgresql://{role}:{PASSWORD}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def connect(role: str):
    s = connection.settings_dict
    return psycopg.connect(host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, dbname=s["NAME"],
                           user=role, password=PASSWORD, autocommit=True)


def refused(conn, sql, match):
    with pytest.raises(psycopg.Error) as info:
        with conn.transaction():
            conn.execute(sql)
    assert match in str(info.value), str(info.value)


def test_the_application_role_owns_nothing_and_cannot_rewrite_the_trail(roles):
    make_rows(1)
    event_id = SystemEvent.objects.get().pk
    with connect(roles["app"]) as app:
        owned = app.execute("SELECT count(*) FROM pg_class WHERE relowner = "
                            "(SELECT oid FROM pg_roles WHERE rolname = current_user)").fetchone()[0]
        assert owned == 0
        for table in ("activity_logs", "system_events", "audit_trail", "update_history", "audit_seals"):
            refused(app, f"DELETE FROM {table}", "permission denied")
            refused(app, f"TRUNCATE {table}", "permission denied")
            refused(app, f"ALTER TABLE {table} DISABLE TRIGGER ALL", "must be owner")
        refused(app, "UPDATE audit_trail SET change_reason = 'rewritten'", "permission denied")
        refused(app, "UPDATE system_events SET severity = 'critical'", "permission denied")
        refused(app, "SET session_replication_role = replica", "permission denied")
        refused(app, "INSERT INTO audit_purge_roles VALUES (current_user)", "permission denied")
        refused(app, "ALTER FUNCTION audit_refuse_rewrite() OWNER TO CURRENT_USER", "must be owner")
        # switching the exception on changes nothing for it
        with pytest.raises(psycopg.Error, match="permission denied"), app.transaction():
            app.execute("SET LOCAL audit.allow_purge = 'on'")
            app.execute("DELETE FROM activity_logs")
        # what the application does need still works: writing its data and the event state
        app.execute("UPDATE accounts_user SET department = department")
        with app.transaction():
            app.execute("UPDATE system_events SET processed = true, processed_at = now() WHERE id = %s", [event_id])
        assert app.execute("SELECT count(*) FROM audit_trail").fetchone()[0] == 1
    assert ActivityLog.objects.count() == 1 and AuditTrail.objects.count() == 1
    assert SystemEvent.objects.get().processed is True


def test_the_purge_exception_is_honoured_only_for_the_purge_role(roles):
    make_rows(2)
    with connect(roles["rogue"]) as rogue:
        with pytest.raises(psycopg.Error, match="append-only: DELETE refused"), rogue.transaction():
            rogue.execute("SET LOCAL audit.allow_purge = 'on'")
            rogue.execute("DELETE FROM activity_logs")
    with connect(roles["purge"]) as purge:
        refused(purge, "DELETE FROM activity_logs", "append-only: DELETE refused")  # not without the setting
        refused(purge, "UPDATE activity_logs SET details = 'x'", "permission denied")
        with purge.transaction():
            purge.execute("SET LOCAL audit.allow_purge = 'on'")
            assert purge.execute("DELETE FROM activity_logs WHERE details = 'MR000'").rowcount == 1
    assert list(ActivityLog.objects.values_list("details", flat=True)) == ["MR001"]


def _manage(*args, env):
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "marine_center.settings_test", **env}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=300)


def test_purge_audit_through_database_purge_url_still_works(roles, settings):
    old = make_rows(2, entity_prefix="OLD")
    backdate(3000, trails=old, activities=ActivityLog.objects.all(), events=SystemEvent.objects.all())
    make_rows(1, entity_prefix="NEW")
    env = {"DATABASE_URL": url(roles["app"]), "DATABASE_PURGE_URL": url(roles["purge"]),
           "AUDIT_SEAL_FILE": settings.AUDIT_SEAL_FILE, "AUDIT_SEAL_KEY": settings.AUDIT_SEAL_KEY}
    done = _manage("purge_audit", "--yes", env=env)
    assert done.returncode == 0, done.stderr
    assert set(AuditTrail.objects.values_list("entity_id", flat=True)) == {"NEW000"}
    assert UpdateHistory.objects.count() == 1
    assert not ActivityLog.objects.filter(details__startswith="OLD").exists()
    # the same purge as the application role alone is refused by the database
    make_rows(1, entity_prefix="OLD")
    backdate(3000, trails=AuditTrail.objects.filter(entity_id__startswith="OLD"))
    as_app = _manage("purge_audit", "--yes", "--table", "audit_trail", env={**env, "DATABASE_PURGE_URL": ""})
    assert as_app.returncode != 0
    assert "permission denied" in as_app.stderr
    assert AuditTrail.objects.filter(entity_id__startswith="OLD").count() == 1


def test_migrate_connects_as_the_owner(roles):
    done = _manage("migrate", "--noinput", env={"DATABASE_URL": url(roles["app"]),
                                                "DATABASE_OWNER_URL": url(roles["owner"])})
    assert done.returncode == 0, done.stderr
    assert f"Migrating as {roles['owner']} (DATABASE_OWNER_URL)." in done.stdout
