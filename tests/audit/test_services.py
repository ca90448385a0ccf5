"""The seed's log_* functions (audit.services)."""

import json
from datetime import date
from decimal import Decimal

import pytest

from audit.context import audit_context
from audit.models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory
from audit.services import log_activity, log_entity_change, log_system_event

pytestmark = pytest.mark.django_db


def test_log_activity_takes_actor_ip_and_reason_from_the_context():
    with audit_context(actor="PE001", ip_address="10.1.2.3", request_id="req-42", user_agent="pytest-agent"):
        row = log_activity("Viewed maintenance request", "Request ID: MR001")
    stored = ActivityLog.objects.get(pk=row.pk)
    assert (stored.user_id, stored.activity, stored.details) == ("PE001", "Viewed maintenance request", "Request ID: MR001")
    assert (stored.ip_address, stored.request_id, stored.user_agent) == ("10.1.2.3", "req-42", "pytest-agent")


def test_log_activity_outside_a_request_is_system_and_details_default_empty():
    row = log_activity("Nightly report")
    assert (row.user_id, row.details, row.ip_address) == ("system", "", None)


def test_log_activity_with_a_user_object_records_its_user_id(staff):
    with audit_context(actor=staff):
        row = log_activity("Downloaded file", "manual.pdf")
    assert row.user_id == "ST001"


def test_log_activity_strips_nul_bytes():
    row = log_activity("Comment\x00 sent", "body\x00with nul")
    stored = ActivityLog.objects.get(pk=row.pk)
    assert (stored.activity, stored.details) == ("Comment sent", "bodywith nul")


def test_log_activity_requires_an_activity():
    with pytest.raises(ValueError, match="activity is required"):
        log_activity("  ")
    assert ActivityLog.objects.count() == 0


def test_log_entity_change_writes_one_trail_row_and_its_field_row():
    with audit_context(actor="PE001", ip_address="192.168.1.100"):
        trail = log_entity_change(
            entity_type="maintenance_request", entity_id="MR001", field_name="status",
            old_value="pending", new_value="approved", action_type="approve",
            change_reason="Approved by port engineer",
        )
    stored = AuditTrail.objects.get(pk=trail.pk)
    assert (stored.action_type, stored.entity_type, stored.entity_id, stored.user_id) == (
        "approve", "maintenance_request", "MR001", "PE001")
    assert stored.ip_address == "192.168.1.100"
    assert stored.change_reason == "Approved by port engineer"
    assert json.loads(stored.old_value) == {"status": "pending"}
    assert json.loads(stored.new_value) == {"status": "approved"}
    history = UpdateHistory.objects.get()
    assert history.audit_id == stored.pk
    assert (history.record_id, history.field_name, history.old_value, history.new_value) == (
        "MR001", "status", "pending", "approved")
    assert history.table_name == "maintenance_maintenancerequest"
    assert (history.user_id, history.change_reason) == ("PE001", "Approved by port engineer")


def test_log_entity_change_reason_defaults_to_the_context_reason():
    with audit_context(reason="Monthly stock count"):
        log_entity_change("inventory_item", "INV001", "quantity_on_hand", 5, 7)
    history = UpdateHistory.objects.get()
    assert (history.change_reason, history.old_value, history.new_value) == ("Monthly stock count", "5", "7")
    assert history.audit.action_type == "update"
    assert history.audit.user_id == "system"


def test_log_entity_change_serializes_values_one_way():
    log_entity_change("maintenance_request", "MR002", "due_date", None, date(2025, 3, 1))
    log_entity_change("maintenance_request", "MR002", "estimated_cost", Decimal("10.50"), "")
    rows = {r.field_name: r for r in UpdateHistory.objects.all()}
    assert (rows["due_date"].old_value, rows["due_date"].new_value) == (None, "2025-03-01")
    assert (rows["estimated_cost"].old_value, rows["estimated_cost"].new_value) == ("10.50", "")


def test_log_entity_change_of_an_unregistered_entity_uses_its_type_as_table():
    log_entity_change("vessel", "V1", "name", "Old", "New")
    assert UpdateHistory.objects.get().table_name == "vessel"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"action_type": "explode"}, "Unknown action_type"),
        ({"entity_type": ""}, "entity_type is required"),
        ({"entity_id": " "}, "entity_id is required"),
        ({"field_name": ""}, "field_name is required"),
    ],
)
def test_log_entity_change_validates_its_arguments(kwargs, message):
    args = {"entity_type": "emergency", "entity_id": "EMG001", "field_name": "status",
            "old_value": "reported", "new_value": "acknowledged", **kwargs}
    with pytest.raises(ValueError, match=message):
        log_entity_change(**args)
    assert AuditTrail.objects.count() == 0 and UpdateHistory.objects.count() == 0


def test_log_system_event_stores_text_data():
    row = log_system_event("emergency_created", "emergency", "EMG001", "Engine failure reported", "critical")
    stored = SystemEvent.objects.get(pk=row.pk)
    assert (stored.event_type, stored.entity_type, stored.entity_id) == ("emergency_created", "emergency", "EMG001")
    assert (stored.event_data, stored.severity, stored.processed) == ("Engine failure reported", "critical", False)


def test_log_system_event_stores_a_dict_as_json_and_defaults_to_info():
    row = log_system_event("purge_finished", event_data={"deleted": 12, "table": "activity_logs", "on": date(2025, 1, 2)})
    stored = SystemEvent.objects.get(pk=row.pk)
    assert json.loads(stored.event_data) == {"deleted": 12, "table": "activity_logs", "on": "2025-01-02"}
    assert (stored.severity, stored.entity_type, stored.entity_id) == ("info", "", "")


@pytest.mark.parametrize("severity", ["fatal", "INFO", "", None])
def test_log_system_event_refuses_an_unknown_severity(severity):
    with pytest.raises(ValueError, match="severity"):
        log_system_event("x", severity=severity)
    assert SystemEvent.objects.count() == 0


def test_nothing_is_written_with_capture_switched_off():
    with audit_context(enabled=False):
        assert log_activity("a") is None
        assert log_entity_change("emergency", "EMG001", "status", "a", "b") is None
        assert log_system_event("x") is None
    assert (ActivityLog.objects.count(), AuditTrail.objects.count(), SystemEvent.objects.count()) == (0, 0, 0)


def test_a_rolled_back_transaction_leaves_no_manual_rows():
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        log_entity_change("emergency", "EMG001", "status", "a", "b")
        log_system_event("x")
        raise RuntimeError("abort")
    assert (AuditTrail.objects.count(), UpdateHistory.objects.count(), SystemEvent.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_log_entity_change_writes_datetimes_as_the_capture_does():
    import datetime as dt

    from audit.capture.diff import to_json
    from audit.services import log_entity_change

    when = dt.datetime(2025, 1, 20, 14, 30, 45, 123000, tzinfo=dt.UTC)
    trail = log_entity_change("maintenance_request", "MR001", "due_at", None, when)
    assert trail.changes["due_at"]["new"] == "2025-01-20T14:30:45.123000Z" == to_json(when)
    assert trail.field_changes.get().new_value == "2025-01-20T14:30:45.123000Z"
