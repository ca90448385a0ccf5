import json

import pytest

from audit.capture.writer import write_activity, write_change, write_system_event
from audit.context import audit_context
from audit.models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory

pytestmark = pytest.mark.django_db


def test_write_change_writes_trail_and_linked_field_rows():
    with audit_context(actor="PE001", reason="Quarterly review", ip_address="10.0.0.7", request_id="req-1"):
        trail = write_change(
            action_type="update", entity_type="maintenance_request", entity_id="MR001",
            changes={"priority": {"old": "low", "new": "high"}, "estimated_cost": {"old": None, "new": "12.50"}},
            table_name="maintenance_maintenancerequest",
        )
    stored = AuditTrail.objects.get(pk=trail.pk)
    assert (stored.user_id, stored.ip_address, stored.request_id, stored.change_reason) == (
        "PE001", "10.0.0.7", "req-1", "Quarterly review")
    assert json.loads(stored.old_value) == {"priority": "low", "estimated_cost": None}
    assert stored.changes["priority"] == {"old": "low", "new": "high"}
    rows = {r.field_name: r for r in stored.field_changes.all()}
    assert set(rows) == {"priority", "estimated_cost"}
    assert rows["estimated_cost"].old_value is None and rows["estimated_cost"].new_value == "12.50"
    assert rows["priority"].record_id == "MR001" and rows["priority"].user_id == "PE001"
    assert rows["priority"].change_reason == "Quarterly review"
    assert rows["priority"].timestamp == stored.timestamp


def test_failed_change_writes_no_field_history():
    trail = write_change(action_type="approve", entity_type="maintenance_request", entity_id="MR002",
                         changes={"status": {"old": "completed", "new": "approved"}}, table_name="t",
                         status="failed", error_message="Cannot approve a completed request")
    assert AuditTrail.objects.get(pk=trail.pk).status == "failed"
    assert UpdateHistory.objects.count() == 0


def test_outside_a_request_the_actor_is_system():
    assert write_activity(activity="Nightly job").user_id == "system"


def test_nul_bytes_and_huge_values_are_sanitized():
    huge = "x" * 100_000
    trail = write_change(action_type="update", entity_type="emergency", entity_id="EMG\x00001",
                         changes={"description": {"old": "a\x00b", "new": huge}}, table_name="t")
    row = UpdateHistory.objects.get(audit=trail)
    assert row.old_value == "ab"
    assert len(row.new_value) <= 10_000
    assert AuditTrail.objects.get(pk=trail.pk).entity_id == "EMG001"
    activity = write_activity(activity="A\x00" * 300, details=huge)
    activity.refresh_from_db()
    assert "\x00" not in activity.activity and len(activity.activity) <= 255 and len(activity.details) <= 10_000


def test_system_event_stores_dict_data_as_json_and_refuses_unknown_severity():
    event = write_system_event(event_type="emergency_created", entity_type="emergency", entity_id="EMG001",
                               event_data={"severity": "critical"}, severity="critical")
    assert json.loads(SystemEvent.objects.get(pk=event.pk).event_data) == {"severity": "critical"}
    with pytest.raises(ValueError):
        write_system_event(event_type="x", severity="loud")


def test_str_is_helpful():
    trail = write_change(action_type="delete", entity_type="inventory_item", entity_id="INV004", changes={},
                         table_name="t", user_id="ADM001")
    assert str(trail) == "delete inventory_item INV004 by ADM001 (completed)"
    assert "Login" in str(ActivityLog(user_id="PE001", activity="Login"))
