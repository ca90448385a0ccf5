"""PostgreSQL: system_events lets exactly its state columns change, each once, from empty to a
value; every other UPDATE (and DELETE, TRUNCATE) is refused, from any role."""

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from audit.models import SystemEvent

from .integrity_helpers import raw

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.tasks]


@pytest.fixture
def enforced():
    raw("SET audit.test_rewrite = 'off'")
    yield
    raw("SET audit.test_rewrite = 'on'")


@pytest.fixture
def event(db):
    return SystemEvent.objects.create(event_type="emergency_created", severity="critical", entity_type="emergency",
                                      entity_id="EMG001", event_data='{"vessel": "MV Aurora"}')


def refused(sql, params=()):
    with pytest.raises(DatabaseError, match="system_events is append-only: UPDATE refused"):
        with transaction.atomic():
            raw(sql, params)


def test_each_state_column_is_set_once(enforced, event):
    now = timezone.now()
    assert raw("UPDATE system_events SET processed = true, processed_at = %s WHERE id = %s", [now, event.pk]) == 1
    refused("UPDATE system_events SET processed_at = %s WHERE id = %s", [timezone.now(), event.pk])
    refused("UPDATE system_events SET processed = false WHERE id = %s", [event.pk])
    refused("UPDATE system_events SET processed_at = NULL WHERE id = %s", [event.pk])
    assert raw("UPDATE system_events SET acknowledged_at = %s, acknowledged_by = 'PE001', "
               "acknowledgement_note = 'on it' WHERE id = %s", [now, event.pk]) == 1
    refused("UPDATE system_events SET acknowledged_by = 'ADM001' WHERE id = %s", [event.pk])
    refused("UPDATE system_events SET acknowledgement_note = 'rewritten' WHERE id = %s", [event.pk])
    refused("UPDATE system_events SET acknowledged_at = NULL WHERE id = %s", [event.pk])
    event.refresh_from_db()
    assert (event.processed, event.acknowledged_by, event.acknowledgement_note) == (True, "PE001", "on it")
    # writing a state column with the value it already has changes nothing and is not refused
    assert raw("UPDATE system_events SET processed = true WHERE id = %s", [event.pk]) == 1


@pytest.mark.parametrize("assignment", [
    "severity = 'info'", "event_data = '{}'", "event_type = 'nothing'", "timestamp = now()", "entity_id = 'EMG999'",
    "request_id = 'x'", "xact_id = 1", "id = id + 1000", "processed = true, severity = 'info'",
])
def test_every_other_update_is_refused(enforced, event, assignment):
    refused(f"UPDATE system_events SET {assignment} WHERE id = %s", [event.pk])
    event.refresh_from_db()
    assert (event.severity, event.event_type, event.processed) == ("critical", "emergency_created", False)


def test_delete_and_truncate_stay_refused(enforced, event):
    for sql in ("DELETE FROM system_events", "TRUNCATE system_events"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            raw(sql)
    assert SystemEvent.objects.filter(pk=event.pk).exists()


def test_an_application_role_may_set_the_state_and_nothing_else(event):
    """A role that owns nothing and holds UPDATE on the table (the application's): the same rule;
    the test harness's escape does not apply to it."""
    raw("DROP ROLE IF EXISTS audit_event_probe")
    raw("CREATE ROLE audit_event_probe NOSUPERUSER NOLOGIN")
    try:
        raw("GRANT SELECT, UPDATE, DELETE ON system_events TO audit_event_probe")
        with transaction.atomic():
            raw("SET LOCAL ROLE audit_event_probe")
            raw("SET LOCAL audit.test_rewrite = 'on'")
            assert raw("UPDATE system_events SET processed = true, processed_at = now() WHERE id = %s",
                       [event.pk]) == 1
        with pytest.raises(DatabaseError, match="append-only: UPDATE refused"), transaction.atomic():
            raw("SET LOCAL ROLE audit_event_probe")
            raw("SET LOCAL audit.test_rewrite = 'on'")
            raw("UPDATE system_events SET severity = 'info' WHERE id = %s", [event.pk])
        with pytest.raises(DatabaseError, match="append-only: UPDATE refused"), transaction.atomic():
            raw("SET LOCAL ROLE audit_event_probe")
            raw("UPDATE system_events SET processed_at = now() WHERE id = %s", [event.pk])
    finally:
        raw("REVOKE ALL ON system_events FROM audit_event_probe")
        raw("DROP ROLE IF EXISTS audit_event_probe")
    event.refresh_from_db()
    assert event.processed and event.severity == "critical"


def test_processing_and_acknowledging_work_with_the_trigger_on(enforced, api, personas):
    from alerts import processing
    from audit.services import log_system_event
    from core.background import run_pending

    created = log_system_event("emergency_created", "emergency", "EMG003", {"vessel": "MV Cape"}, "critical")
    assert run_pending() >= 1  # the worker's part: process it, send its deliveries
    created.refresh_from_db()
    assert created.processed  # processed through the trigger
    assert processing.process_event(created.pk) is None
    response = api(personas["engineer"]).post(f"/api/realtime/system-events/{created.pk}/acknowledge",
                                              {"note": "ok"}, format="json")
    assert response.status_code == 200
    again = api(personas["admin"]).post(f"/api/realtime/system-events/{created.pk}/acknowledge", {}, format="json")
    assert again.status_code == 409
