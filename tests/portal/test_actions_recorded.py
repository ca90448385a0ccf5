"""Issue 12.1 and 12.3: every action a person takes in the portal is an activity row in words
(declared once per service with core.actions.action), shown in their "My activity"; a refused
attempt is a failed audit_trail row with the error message and no update_history row."""

import pytest
from django.db import transaction

from audit.models import ActivityLog, AuditTrail, UpdateHistory
from maintenance import services as maintenance
from maintenance.models import InventoryItem, MaintenanceRequest


def _steps(world):
    mr, emg, item = world["request"].code, world["emergency"].code, world["item"]
    return [
        # (who, url, form, the sentence in their activity)
        ("staff", "/requests/new/", {"title": "Fix the windlass", "vessel": "MV Borealis", "category": "deck",
                                     "priority": "urgent", "reason": "Seen at drill"},
         "Created maintenance request {new_mr} (Fix the windlass)"),
        ("staff", f"/requests/{mr}/edit/", {"title": "Replace bilge pump now", "vessel": "MV Aurora",
                                            "category": "engine", "priority": "high", "reason": "More urgent"},
         f"Edited maintenance request {mr}"),
        ("engineer", f"/requests/{mr}/assign/", {"assignee": "ST002", "reason": "Pump specialist"},
         f"Assigned maintenance request {mr} to ST002"),
        ("engineer", f"/requests/{mr}/approve/", {"reason": "Budget ok"}, f"Approved maintenance request {mr}"),
        ("other_staff", f"/requests/{mr}/start/", {"reason": "On board"}, f"Started work on maintenance request {mr}"),
        ("other_staff", f"/requests/{mr}/complete/", {}, f"Completed maintenance request {mr}"),
        ("engineer", "/requests/{new_mr}/reject/", {"reason": "Duplicate", "confirm": "on"}, "Rejected maintenance request {new_mr}"),
        ("other_staff", "/emergencies/new/", {"vessel": "MV Polar", "emergency_type": "fire", "severity": "critical",
                                              "location": "Berth 2", "description": "Galley fire"},
         "Reported emergency {new_emg} (fire, critical)"),
        ("engineer", f"/emergencies/{emg}/acknowledge/", {}, f"Acknowledged emergency {emg}"),
        ("engineer", f"/emergencies/{emg}/assign/", {"assignee": "ST002", "reason": "On duty"},
         f"Assigned emergency {emg} to ST002"),
        ("engineer", f"/emergencies/{emg}/dispatch/", {}, f"Dispatched help to emergency {emg}"),
        ("engineer", f"/emergencies/{emg}/resolve/", {}, f"Resolved emergency {emg}"),
        ("admin", f"/emergencies/{emg}/close/", {}, f"Closed emergency {emg}"),
        ("engineer", f"/inventory/{item.code}/adjust/", {"quantity_change": 5, "reason": "Delivery"},
         f"Adjusted stock of {item.part_number} by +5 to 6"),
        ("engineer", "/inventory/new/", {"part_number": "GK-9", "name": "Gasket kit", "location": "B2",
                                         "quantity_on_hand": 4, "minimum_stock": 2, "reason": "New stock line"},
         "Created inventory item {new_item} (GK-9)"),
    ]


def test_each_portal_action_is_an_activity_row_in_words(as_, world):
    from emergencies.models import Emergency

    names = {}
    for who, url, form, sentence in _steps(world):
        url = url.format(**names)
        response = as_(who).post(url, form)
        assert response.status_code == 302, (who, url, response.content[:500])
        names.setdefault("new_mr", MaintenanceRequest.objects.filter(title="Fix the windlass").values_list(
            "code", flat=True).first())
        names["new_emg"] = Emergency.objects.filter(vessel="MV Polar").values_list("code", flat=True).first()
        names["new_item"] = InventoryItem.objects.filter(part_number="GK-9").values_list("code", flat=True).first()
        expected = sentence.format(**names)
        user_id = world[who].user_id
        assert ActivityLog.objects.filter(user_id=user_id, activity=expected).count() == 1, (
            expected, list(ActivityLog.objects.filter(user_id=user_id).values_list("activity", flat=True)[:5]))
        if form.get("reason"):
            row = ActivityLog.objects.get(user_id=user_id, activity=expected)
            assert row.details == f"Reason: {form['reason']}"

    page = as_("engineer").get("/my-activity/").content.decode()
    assert f"Approved maintenance request {world['request'].code}" in page
    assert f"Acknowledged emergency {world['emergency'].code}" in page


@pytest.mark.django_db
def test_a_409_and_a_403_are_failed_rows_with_the_error_and_no_field_rows(api, personas, world):
    mr = world["request"]
    client = api(personas["engineer"])
    assert client.post(f"/api/maintenance-requests/{mr.code}/start/", {}, format="json").status_code == 409
    assert api(personas["other_staff"]).post(f"/api/maintenance-requests/{mr.code}/approve/", {},
                                             format="json").status_code in (403, 404)
    failed = AuditTrail.objects.filter(entity_id=mr.code, status="failed").order_by("id")
    first = failed[0]
    assert (first.user_id, first.action_type, first.entity_type) == ("PE001", "status_change", "maintenance_request")
    assert first.error_message == f"Cannot start maintenance request {mr.code}: it is pending."
    assert not UpdateHistory.objects.filter(audit__status="failed").exists()
    mr.refresh_from_db()
    assert mr.status == "pending"
    records = api(personas["admin"]).get("/api/realtime/audit-trail", {"status": "failed"}).json()["records"]
    assert [(r["entity_id"], r["status"], r["error_message"]) for r in records][-1] == (
        mr.code, "failed", first.error_message)


def test_stock_below_zero_is_a_failed_row(as_, world):
    item = world["item"]
    response = as_("admin").post(f"/inventory/{item.code}/adjust/", {"quantity_change": -9, "reason": "Used"})
    assert response.status_code in (200, 302, 400)
    item.refresh_from_db()
    assert item.quantity_on_hand == 1
    row = AuditTrail.objects.get(entity_id=item.code, status="failed")
    assert (row.user_id, row.change_reason) == ("ADM001", "Used")
    assert row.error_message == f"Cannot take 9 of {item.code}: only 1 in stock."
    assert not UpdateHistory.objects.filter(audit=row).exists()
    page = as_("admin").get("/admin/audit-log", {"status": "failed"}).content.decode()
    shown = page.split(f'data-id="{row.pk}"')[1].split("</tr>")[0]
    assert "Failed" in shown and row.error_message in shown


@pytest.mark.django_db(transaction=True)
def test_the_failed_row_survives_the_rollback_of_an_outer_transaction(personas, make_user, is_postgres):
    """On PostgreSQL the failed row goes through a second connection when the caller's own
    transaction is still open, so rolling that back keeps it; the refused change is gone."""
    obj = maintenance.create_request(actor=personas["staff"], vessel="MV Aurora", title="Pump")
    with pytest.raises(RuntimeError), transaction.atomic():
        with pytest.raises(Exception, match="Cannot start"):
            maintenance.start_request(request_obj=obj, actor=personas["engineer"], reason="try")
        raise RuntimeError("the caller rolls back")
    rows = AuditTrail.objects.filter(entity_id=obj.code, status="failed")
    if is_postgres:
        assert [(r.action_type, r.user_id, r.change_reason) for r in rows] == [("status_change", "PE001", "try")]
    else:  # one writer: the row was written in the outer transaction and went with it (documented)
        assert not rows.exists()
    obj.refresh_from_db()
    assert obj.status == "pending"


def test_cancel_in_the_portal_asks_for_a_reason_and_a_confirmation(as_, world):
    mr = world["request"]
    page = as_("staff").get(f"/requests/{mr.code}/").content.decode()
    assert "Yes, cancel this request" in page and "Reason for cancelling" in page
    for form in ({}, {"reason": "Not needed"}, {"confirm": "on"}):
        as_("staff").post(f"/requests/{mr.code}/cancel/", form)
        mr.refresh_from_db()
        assert mr.status == "pending", form
    response = as_("staff").post(f"/requests/{mr.code}/cancel/", {"reason": "Fixed by the crew", "confirm": "on"})
    assert response.status_code == 302
    mr.refresh_from_db()
    assert mr.status == "cancelled"
    row = ActivityLog.objects.get(user_id="ST001", activity=f"Cancelled maintenance request {mr.code}")
    assert row.details == "Reason: Fixed by the crew"


def test_reject_in_the_portal_needs_the_confirmation_too(as_, world):
    mr = world["request"]
    as_("engineer").post(f"/requests/{mr.code}/reject/", {"reason": "Duplicate"})
    mr.refresh_from_db()
    assert mr.status == "pending"


def test_a_manager_cannot_approve_their_own_request_in_the_portal(as_, world):
    as_("engineer").post("/requests/new/", {"title": "Own job", "vessel": "MV C", "category": "other",
                                            "priority": "low"})
    own = MaintenanceRequest.objects.get(title="Own job")
    response = as_("engineer").post(f"/requests/{own.code}/approve/", {"reason": "fine"}, follow=True)
    own.refresh_from_db()
    assert own.status == "pending"
    assert "your own maintenance request" in response.content.decode()
    failed = AuditTrail.objects.get(entity_id=own.code, status="failed")
    assert (failed.user_id, failed.action_type) == ("PE001", "approve")
