"""PostgreSQL: the audit tables refuse UPDATE, DELETE and TRUNCATE, except the purge's DELETE."""

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from audit.models import AUDIT_TABLES, ActivityLog, AuditSeal, AuditTrail, SystemEvent, UpdateHistory

from .integrity_helpers import backdate, make_rows, raw

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

@pytest.fixture(autouse=True)
def seal_file(tmp_path, settings):
    settings.AUDIT_SEAL_FILE = str(tmp_path / "seal.json")
    settings.AUDIT_SEAL_KEY = "k" * 40


@pytest.fixture
def enforced():
    """Turn off the test harness's escape (tests/conftest.py) for this connection."""
    raw("SET audit.test_rewrite = 'off'")
    yield
    raw("SET audit.test_rewrite = 'on'")


def refused(sql, params=()):
    with pytest.raises(DatabaseError, match="append-only") as info:
        with transaction.atomic():
            raw(sql, params)
    return str(info.value)


@pytest.mark.parametrize("table", AUDIT_TABLES)
def test_raw_update_delete_and_truncate_are_refused(table, enforced):
    make_rows(1)
    before = connection.cursor()
    assert "UPDATE refused" in refused(f"UPDATE {table} SET timestamp = now()")
    assert "DELETE refused" in refused(f"DELETE FROM {table}")
    assert "TRUNCATE refused" in refused(f"TRUNCATE {table} CASCADE")
    before.execute(f"SELECT count(*) FROM {table}")
    assert before.fetchone()[0] == 1


def test_updates_and_deletes_through_the_orm_are_refused(enforced):
    trails = make_rows(1)
    with pytest.raises(DatabaseError, match="audit table audit_trail is append-only: UPDATE refused"):
        with transaction.atomic():
            AuditTrail.objects.filter(pk=trails[0].pk).update(change_reason="rewritten")
    event = SystemEvent.objects.get()
    event.severity = "critical"  # (processed may change, once: tests/audit/test_event_state.py)
    with pytest.raises(DatabaseError, match="system_events is append-only: UPDATE refused"):
        with transaction.atomic():
            event.save()
    with pytest.raises(DatabaseError, match="activity_logs is append-only: DELETE refused"):
        with transaction.atomic():
            ActivityLog.objects.all().delete()
    assert AuditTrail.objects.get().change_reason == "ok 0 ✓"
    assert SystemEvent.objects.get().severity == "info"


def test_the_seal_chain_is_append_only_too(enforced):
    make_rows(1)
    call_command("seal_audit")
    assert "UPDATE refused" in refused("UPDATE audit_seals SET row_count = 0")
    assert "DELETE refused" in refused("DELETE FROM audit_seals")


def test_the_purge_setting_allows_delete_only_inside_its_transaction(enforced):
    make_rows(1)
    refused("UPDATE activity_logs SET details = 'x'")
    with transaction.atomic():
        raw("SET LOCAL audit.allow_purge = 'on'")
        with pytest.raises(DatabaseError, match="UPDATE refused"), transaction.atomic():
            raw("UPDATE activity_logs SET details = 'x'")  # still no UPDATE
        assert raw("DELETE FROM activity_logs") == 1
    make_rows(1)
    refused("DELETE FROM activity_logs")  # the setting ended with its transaction


def test_the_purge_works_with_the_triggers_on(enforced):
    old = make_rows(2)
    raw("SET audit.test_rewrite = 'on'")
    backdate(4000, trails=old, activities=ActivityLog.objects.all(), events=SystemEvent.objects.all())
    raw("SET audit.test_rewrite = 'off'")
    call_command("seal_audit")
    call_command("purge_audit", "--yes")
    assert (AuditTrail.objects.count(), UpdateHistory.objects.count(), ActivityLog.objects.count()) == (0, 0, 0)
    assert list(SystemEvent.objects.values_list("event_type", flat=True)) == ["audit_purged"]
    assert AuditSeal.objects.count() > 1
    call_command("verify_audit")


def test_the_test_harness_escape_is_refused_to_a_non_superuser_role():
    """audit.test_rewrite is honoured only for superusers (who could disable
    the triggers anyway): the application's own role gains nothing from it."""
    make_rows(1)
    raw("DROP ROLE IF EXISTS audit_app_probe")
    raw("CREATE ROLE audit_app_probe NOSUPERUSER NOLOGIN")
    try:
        raw("GRANT SELECT, UPDATE, DELETE ON activity_logs TO audit_app_probe")
        with pytest.raises(DatabaseError, match="append-only"):
            with transaction.atomic():
                raw("SET LOCAL ROLE audit_app_probe")
                raw("SET LOCAL audit.test_rewrite = 'on'")
                raw("UPDATE activity_logs SET details = 'rewritten'")
        assert not ActivityLog.objects.filter(details="rewritten").exists()
    finally:
        raw("REVOKE ALL ON activity_logs FROM audit_app_probe")
        raw("DROP ROLE IF EXISTS audit_app_probe")
