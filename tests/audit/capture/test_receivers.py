"""Automatic capture through save(), delete(), m2m and simple-history."""

import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import transaction

from audit.context import audit_context
from audit.models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory
from maintenance.models import InventoryItem, MaintenanceRequest

pytestmark = pytest.mark.django_db


def make_request(requester, **fields):
    fields.setdefault("code", f"MR{MaintenanceRequest.objects.count() + 1:03d}")
    fields.setdefault("vessel", "MV Aurora")
    fields.setdefault("title", "Bilge pump failing")
    return MaintenanceRequest.objects.create(requested_by=requester, **fields)


def trail_for(entity_id, **filters):
    return AuditTrail.objects.filter(entity_id=entity_id, **filters).order_by("id")


def test_create_records_every_field_with_codes_and_the_actor_and_a_field_row_for_each_set_field(staff, engineer):
    with audit_context(actor=engineer, reason="New defect"):
        mr = make_request(staff, estimated_cost=Decimal("1200.50"), assigned_to=engineer)
    trail = trail_for(mr.code).get()
    assert (trail.action_type, trail.entity_type, trail.user_id, trail.change_reason) == (
        "create", "maintenance_request", "PE001", "New defect")
    assert trail.old_value is None
    new = json.loads(trail.new_value)
    assert new["requested_by"] == "ST001" and new["assigned_to"] == "PE001"
    assert new["estimated_cost"] == "1200.50" and new["due_date"] is None and new["description"] == ""
    assert new["created_at"].endswith("Z")
    fields = dict(trail.field_changes.values_list("field_name", "new_value"))
    assert fields["title"] == "Bilge pump failing" and fields["assigned_to"] == "PE001"
    assert fields["estimated_cost"] == "1200.50"
    # empty before and after: no field row (the trail's new_value above still holds the whole row)
    assert "due_date" not in fields and "description" not in fields and "approved_by" not in fields
    assert set(fields) == {k for k, v in new.items() if v not in (None, "")}


def test_update_records_only_changed_fields_and_nothing_when_nothing_changed(staff, engineer):
    mr = make_request(staff)
    loaded = MaintenanceRequest.objects.get(pk=mr.pk)
    with audit_context(actor="PE001", reason="Triage"):
        loaded.priority = "urgent"
        loaded.estimated_cost = Decimal("99.90")
        loaded.save()
        loaded.save()  # no change: no row
        MaintenanceRequest.objects.get(pk=mr.pk).save()  # updated_at alone is no change
    trails = trail_for(mr.code, action_type="update")
    assert trails.count() == 1
    assert trails[0].changes == {"priority": {"old": "medium", "new": "urgent"},
                                 "estimated_cost": {"old": None, "new": "99.90"}}
    rows = UpdateHistory.objects.filter(audit=trails[0]).order_by("field_name")
    assert [(r.field_name, r.old_value, r.new_value, r.user_id, r.change_reason) for r in rows] == [
        ("estimated_cost", None, "99.90", "PE001", "Triage"), ("priority", "medium", "urgent", "PE001", "Triage")]


def test_status_move_to_approved_is_an_approve_and_fk_change_is_an_assign(staff, engineer, admin_user):
    mr = make_request(staff)
    mr.status, mr.approved_by = "approved", engineer
    mr.save()
    mr.assigned_to = admin_user
    mr.save(update_fields=["assigned_to"])
    actions = list(trail_for(mr.code).values_list("action_type", flat=True))
    assert actions == ["create", "approve", "assign"]
    assign = trail_for(mr.code, action_type="assign").get()
    assert assign.changes == {"assigned_to": {"old": None, "new": "ADM001"}}


def test_outside_a_request_the_actor_is_system(staff):
    mr = make_request(staff)
    assert trail_for(mr.code).get().user_id == "system"


def test_delete_records_the_old_values(staff):
    item = InventoryItem.objects.create(code="INV001", part_number="P-1", name="Impeller", quantity_on_hand=3)
    with audit_context(actor="ADM001", reason="Obsolete part"):
        InventoryItem.objects.get(pk=item.pk).delete()
    trail = trail_for("INV001", action_type="delete").get()
    assert trail.new_value is None and json.loads(trail.old_value)["quantity_on_hand"] == 3
    assert trail.change_reason == "Obsolete part"


def test_password_is_masked_and_no_hash_is_stored_anywhere(staff):
    staff.set_password("A-new-Secret-99")
    staff.save()
    trail = trail_for("ST001", action_type="password_reset").get()
    assert trail.changes == {"password": {"old": "[changed]", "new": "[changed]"}}
    hashes = [staff.password, staff.password.split("$")[-1]]
    for model, columns in [(AuditTrail, ["old_value", "new_value", "changes", "error_message"]),
                           (UpdateHistory, ["old_value", "new_value"]),
                           (ActivityLog, ["details", "activity"]), (SystemEvent, ["event_data"])]:
        for row in model.objects.values_list(*columns):
            text = json.dumps(row, default=str)
            assert not any(h in text for h in hashes)
            assert "pbkdf2" not in text


def test_group_add_and_remove_are_permission_changes(staff):
    crew = Group.objects.create(name="Deck crew")
    with audit_context(actor="ADM001"):
        staff.groups.add(crew)
        staff.groups.remove(crew)
    changes = list(trail_for("ST001", action_type="permission_change").values_list("changes", flat=True))
    assert changes == [{"groups": {"old": [], "new": ["Deck crew"]}}, {"groups": {"old": ["Deck crew"], "new": []}}]


def test_rolled_back_change_leaves_no_audit_row(staff):
    with pytest.raises(RuntimeError), transaction.atomic():
        make_request(staff)
        raise RuntimeError("abort")
    assert MaintenanceRequest.objects.count() == 0
    assert not AuditTrail.objects.filter(entity_type="maintenance_request").exists()
    assert not UpdateHistory.objects.filter(table_name=MaintenanceRequest._meta.db_table).exists()


@pytest.mark.django_db(transaction=True)
def test_failing_audit_write_fails_the_change_in_autocommit(staff, monkeypatch):
    mr = make_request(staff)
    from audit.capture import writer

    def boom(*args, **kwargs):
        raise RuntimeError("audit insert failed")

    monkeypatch.setattr(writer, "write", boom)  # the one writer (PostgreSQL: the UPDATE heads its statement)
    mr.title = "Changed"
    with pytest.raises(RuntimeError):
        mr.save()
    assert MaintenanceRequest.objects.get(pk=mr.pk).title == "Bilge pump failing"
    assert mr.history.count() == 1  # the snapshot of the failed save rolled back too
    with pytest.raises(RuntimeError):
        MaintenanceRequest.objects.filter(pk=mr.pk).update(title="Bulk")
    assert MaintenanceRequest.objects.get(pk=mr.pk).title == "Bilge pump failing"


def test_capture_can_be_switched_off(staff):
    with audit_context(enabled=False):
        mr = make_request(staff)
        mr.title = "Quiet"
        mr.save()
    assert not AuditTrail.objects.filter(entity_type="maintenance_request").exists()
    assert mr.history.count() == 0


def test_history_snapshot_carries_actor_and_reason(staff, engineer):
    with audit_context(actor=engineer, reason="Checked on board"):
        mr = make_request(staff)
    record = mr.history.get()
    assert record.history_user_id == engineer.pk and record.history_change_reason == "Checked on board"
