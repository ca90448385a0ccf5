"""The real-time audit API's contract (SPEC "The API"): keys and types,
defaults, newest first, limit/count/total, UTC millisecond timestamps, the
hours window, the role matrix, and every read recorded."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.context import audit_context
from audit.models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory
from audit.services import log_entity_change

MS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def at(hours_ago: float):
    return timezone.now() - timedelta(hours=hours_ago)


def activity(user_id: str, text: str, *, hours_ago: float = 0.0, ip: str | None = "10.0.0.5", details: str = ""):
    row = ActivityLog.objects.create(user_id=user_id, activity=text, details=details, ip_address=ip)
    ActivityLog.objects.filter(pk=row.pk).update(timestamp=at(hours_ago))
    return row


def event(event_type: str, severity: str, *, hours_ago: float = 0.0, data: str = ""):
    row = SystemEvent.objects.create(event_type=event_type, severity=severity, event_data=data,
                                     entity_type="emergency", entity_id="EMG001")
    SystemEvent.objects.filter(pk=row.pk).update(timestamp=at(hours_ago))
    return row


def change(entity_type: str, entity_id: str, field: str, old, new, *, actor="PE001", reason="", hours_ago=0.0,
           action_type="update"):
    with audit_context(actor=actor):
        trail = log_entity_change(entity_type, entity_id, field, old, new, action_type, reason)
    AuditTrail.objects.filter(pk=trail.pk).update(timestamp=at(hours_ago))
    UpdateHistory.objects.filter(audit=trail).update(timestamp=at(hours_ago))
    return trail


def trail(entity_id: str, *, user_id="PE001", action_type="update", status="completed", hours_ago=0.0,
          entity_type="maintenance_request", **extra):
    row = AuditTrail.objects.create(user_id=user_id, action_type=action_type, entity_type=entity_type,
                                    entity_id=entity_id, status=status, old_value='{"a": 1}',
                                    new_value='{"a": 2}', ip_address="10.0.0.9", **extra)
    AuditTrail.objects.filter(pk=row.pk).update(timestamp=at(hours_ago))
    return row


def clear_trail():
    """Drop the personas' creation records (a clean table for exact counts)."""
    UpdateHistory.objects.all().delete()
    AuditTrail.objects.all().delete()


def reads(user_id: str, text: str) -> list[ActivityLog]:
    return list(ActivityLog.objects.filter(user_id=user_id, activity=text).order_by("id"))


# --- user-activity ---------------------------------------------------------------


def test_user_activity_contract_keys_types_and_newest_first(api, personas):
    old = activity("ST001", "Viewed page", hours_ago=3, details="/requests/")
    new = activity("ST001", "Login (portal)", hours_ago=1)
    activity("ST002", "Viewed page", hours_ago=1)  # someone else's
    body = api(personas["engineer"]).get("/api/realtime/user-activity/ST001").json()
    assert list(body) == ["success", "user_id", "activities", "count", "total", "total_relation", "timestamp"]
    assert body["success"] is True and body["user_id"] == "ST001"
    assert [a["id"] for a in body["activities"]] == [new.pk, old.pk]
    first = body["activities"][0]
    assert list(first) == ["id", "activity", "details", "timestamp", "ip_address"]
    assert first["activity"] == "Login (portal)" and first["ip_address"] == "10.0.0.5"
    assert body["activities"][1]["details"] == "/requests/"
    assert all(MS_UTC.match(a["timestamp"]) for a in body["activities"])
    assert MS_UTC.match(body["timestamp"])
    assert body["count"] == 2 and body["total"] == 2


def test_user_activity_timestamp_is_the_row_time_in_utc_milliseconds(api, personas):
    row = activity("ST001", "Viewed page")
    utc_stamp = (timezone.now() - timedelta(hours=1)).replace(microsecond=123987)
    plus_two = utc_stamp.astimezone(timezone.get_fixed_timezone(120))
    ActivityLog.objects.filter(pk=row.pk).update(timestamp=plus_two)
    body = api(personas["admin"]).get("/api/realtime/user-activity/ST001").json()
    assert body["activities"][0]["timestamp"] == utc_stamp.strftime("%Y-%m-%dT%H:%M:%S") + ".123Z"


def test_user_activity_default_window_is_24_hours_and_hours_narrows_it(api, personas):
    activity("ST001", "recent", hours_ago=0.2)
    activity("ST001", "this morning", hours_ago=10)
    activity("ST001", "yesterday", hours_ago=25)
    client = api(personas["admin"])
    assert [a["activity"] for a in client.get("/api/realtime/user-activity/ST001").json()["activities"]] == [
        "recent", "this morning"]
    assert [a["activity"] for a in client.get("/api/realtime/user-activity/ST001?hours=0.5").json()["activities"]] == [
        "recent"]
    assert client.get("/api/realtime/user-activity/ST001?hours=48").json()["total"] == 3


def test_user_activity_limit_defaults_to_50_and_total_counts_all_matches(api, personas):
    for i in range(55):
        activity("ST002", f"page {i}", hours_ago=1 + i / 100)
    client = api(personas["admin"])
    body = client.get("/api/realtime/user-activity/ST002").json()
    assert body["count"] == 50 and body["total"] == 55 and len(body["activities"]) == 50
    assert body["activities"][0]["activity"] == "page 0"
    body = client.get("/api/realtime/user-activity/ST002/?limit=3").json()
    assert (body["count"], body["total"]) == (3, 55)
    assert [a["activity"] for a in body["activities"]] == ["page 0", "page 1", "page 2"]


def test_user_activity_of_unknown_user_is_empty_for_a_manager(api, personas):
    body = api(personas["engineer"]).get("/api/realtime/user-activity/NOBODY9").json()
    assert body == {**body, "success": True, "user_id": "NOBODY9", "activities": [], "count": 0, "total": 0}


# --- entity-history --------------------------------------------------------------


def test_entity_history_contract_and_newest_first(api, personas):
    change("maintenance_request", "MR001", "status", "pending", "approved", reason="Checked", hours_ago=2,
           action_type="approve")
    change("maintenance_request", "MR001", "priority", "low", "high", actor="ADM001", hours_ago=1)
    change("maintenance_request", "MR002", "priority", "low", "high")  # another entity
    body = api(personas["engineer"]).get("/api/realtime/entity-history/maintenance_request/MR001").json()
    assert list(body) == ["success", "entity_type", "entity_id", "changes", "count", "total", "total_relation"]
    assert (body["entity_type"], body["entity_id"], body["count"], body["total"]) == (
        "maintenance_request", "MR001", 2, 2)
    newest, oldest = body["changes"]
    assert list(newest) == ["timestamp", "action_type", "field_name", "old_value", "new_value", "user_id",
                            "change_reason", "source"]
    assert newest["field_name"] == "priority" and newest["user_id"] == "ADM001"
    assert oldest == {**oldest, "action_type": "approve", "field_name": "status", "old_value": "pending",
                      "new_value": "approved", "user_id": "PE001", "change_reason": "Checked"}
    assert MS_UTC.match(newest["timestamp"])


def test_entity_history_limit_defaults_to_100(api, personas):
    for i in range(103):
        change("inventory_item", "INV001", "quantity_on_hand", i, i + 1, hours_ago=i / 1000)
    client = api(personas["admin"])
    body = client.get("/api/realtime/entity-history/inventory_item/INV001/").json()
    assert (body["count"], body["total"]) == (100, 103)
    assert body["changes"][0]["new_value"] == "1"
    body = client.get("/api/realtime/entity-history/inventory_item/INV001?limit=1").json()
    assert (body["count"], body["total"]) == (1, 103)


# --- system-events -----------------------------------------------------------------


def test_system_events_contract_default_one_hour_and_severity_filter(api, personas):
    error = event("unhandled_error", "error", hours_ago=0.5, data='{"path": "/x"}')
    crit = event("emergency_created", "critical", hours_ago=0.1)
    event("user_approved", "info", hours_ago=0.2)
    event("unhandled_error", "error", hours_ago=2)  # outside the default hour
    client = api(personas["engineer"])
    body = client.get("/api/realtime/system-events").json()
    assert list(body) == ["success", "events", "count", "total", "total_relation", "hours_included"]
    assert body["hours_included"] == 1 and (body["count"], body["total"]) == (3, 3)
    first = body["events"][0]
    assert list(first) == ["id", "timestamp", "event_type", "entity_type", "entity_id", "event_data", "severity",
                           "processed", "processed_at", "acknowledged_at", "acknowledged_by", "acknowledgement_note"]
    assert first["id"] == crit.pk and first["processed"] is False and first["entity_id"] == "EMG001"
    assert MS_UTC.match(first["timestamp"])
    body = client.get("/api/realtime/system-events?severity=error").json()
    assert [e["id"] for e in body["events"]] == [error.pk]
    assert body["events"][0]["event_data"] == '{"path": "/x"}'
    body = client.get("/api/realtime/system-events/?hours=3&severity=error,critical").json()
    assert [e["severity"] for e in body["events"]] == ["critical", "error", "error"]
    assert body["hours_included"] == 3
    assert client.get("/api/realtime/system-events?hours=0.25").json()["hours_included"] == 0.25


def test_system_events_limit_and_total(api, personas):
    for i in range(5):
        event("tick", "info", hours_ago=i / 100)
    body = api(personas["admin"]).get("/api/realtime/system-events?limit=2").json()
    assert (body["count"], body["total"]) == (2, 5)


# --- audit-trail ---------------------------------------------------------------------


def test_audit_trail_contract_defaults_and_order(api, personas):
    clear_trail()
    rows = [trail(f"MR00{i}", hours_ago=i) for i in range(1, 4)]
    trail("MR009", hours_ago=30)  # outside 24 h
    body = api(personas["engineer"]).get("/api/realtime/audit-trail").json()
    assert list(body) == ["success", "records", "count", "total", "total_relation"]
    assert [r["id"] for r in body["records"]] == [r.pk for r in rows]
    record = body["records"][0]
    assert list(record) == ["id", "timestamp", "user_id", "action_type", "entity_type", "entity_id", "old_value",
                            "new_value", "ip_address", "status", "error_message", "source"]
    assert record == {**record, "user_id": "PE001", "action_type": "update", "entity_type": "maintenance_request",
                      "entity_id": "MR001", "old_value": '{"a": 1}', "new_value": '{"a": 2}',
                      "ip_address": "10.0.0.9", "status": "completed"}
    assert MS_UTC.match(record["timestamp"])
    assert (body["count"], body["total"]) == (3, 3)


def test_audit_trail_limit_defaults_to_200(api, personas):
    clear_trail()
    AuditTrail.objects.bulk_create(
        AuditTrail(user_id="PE001", action_type="update", entity_type="maintenance_request", entity_id=f"MR{i:03d}")
        for i in range(205)
    )
    client = api(personas["admin"])
    body = client.get("/api/realtime/audit-trail").json()
    assert (body["count"], body["total"]) == (200, 205)
    body = client.get("/api/realtime/audit-trail?limit=1000").json()
    assert (body["count"], body["total"]) == (205, 205)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("user_id=ST001", {"MR002"}),
        ("action_type=approve", {"MR003"}),
        ("entity_type=emergency", {"EMG001"}),
        ("entity_id=MR001", {"MR001"}),
        ("status=failed", {"MR004"}),
        ("user_id=PE001&action_type=update&status=completed", {"MR001", "EMG001"}),
        ("hours=0.5", {"MR001"}),
    ],
)
def test_audit_trail_filters(api, personas, query, expected):
    clear_trail()
    trail("MR001", hours_ago=0.1)
    trail("MR002", user_id="ST001", hours_ago=1)
    trail("MR003", action_type="approve", hours_ago=1)
    trail("MR004", status="failed", hours_ago=1, error_message="Cannot approve a completed request")
    trail("EMG001", entity_type="emergency", hours_ago=2)
    body = api(personas["admin"]).get(f"/api/realtime/audit-trail?{query}").json()
    assert {r["entity_id"] for r in body["records"]} == expected
    assert body["total"] == len(expected)


# --- dashboard -------------------------------------------------------------------------


def test_dashboard_metrics_as_spec_defines_them(api, personas, staff, engineer):
    from emergencies.services import report_emergency
    from maintenance.services import create_request

    ActivityLog.objects.all().delete()
    activity("ST001", "Viewed page", hours_ago=0.1)
    activity("ST001", "Viewed page", hours_ago=0.05)
    activity("ST002", "Login (portal)", hours_ago=0.2)
    activity("ST002", "Logout (portal)", hours_ago=0.1)  # logged out since: not online
    activity("PE001", "Viewed page", hours_ago=0.5)  # active this hour, not in the last 15 min
    activity("ADM001", "Viewed page", hours_ago=2)  # outside the hour
    activity("ADM001", "Failed login", hours_ago=0.01)  # an attempt on ADM001's name, not ADM001's doing
    activity("system", "Retention purge", hours_ago=0.01)
    event("unhandled_error", "error", hours_ago=0.5)
    event("integrity_failed", "critical", hours_ago=0.2)
    event("account_locked", "warning", hours_ago=0.2)
    event("unhandled_error", "error", hours_ago=3)
    first = create_request(actor=staff, vessel="MV Aurora", title="Pump")
    create_request(actor=staff, vessel="MV Aurora", title="Valve")
    from maintenance.services import approve_request

    approve_request(request_obj=first, actor=engineer)
    from emergencies.services import acknowledge_emergency, resolve_emergency

    report_emergency(actor=staff, vessel="MV Aurora", emergency_type="fire", description="Engine room")
    done = report_emergency(actor=staff, vessel="MV Borealis", emergency_type="medical", description="Injury")
    acknowledge_emergency(emergency=done, actor=engineer)
    resolve_emergency(emergency=done, actor=engineer)

    ActivityLog.objects.filter(user_id__in=["ST001", "PE001"], timestamp__gte=at(0.01)).delete()  # services' own rows
    recent_rows = ActivityLog.objects.filter(timestamp__gte=at(1)).count()
    body = api(personas["engineer"]).get("/api/realtime/dashboard").json()
    assert list(body) == ["success", "timestamp", "metrics", "latest_activities"]
    assert MS_UTC.match(body["timestamp"])
    assert body["metrics"] == {
        "active_users_1h": 3,  # ST001, ST002, PE001
        "recent_activities_1h": recent_rows,
        "recent_errors_1h": 2,
        "online_users_15m": 1,  # ST001
        "pending_maintenance": 1,
        "active_emergencies": 1,
    }


def test_dashboard_latest_activities_are_the_ten_newest(api, personas):
    ActivityLog.objects.all().delete()
    for i in range(12):
        activity("ST001", f"page {i}", hours_ago=i / 10, details=f"d{i}")
    body = api(personas["admin"]).get("/api/realtime/dashboard/").json()
    latest = body["latest_activities"]
    assert len(latest) == 10
    assert list(latest[0]) == ["user_id", "activity", "details", "timestamp"]
    assert [a["activity"] for a in latest] == [f"page {i}" for i in range(10)]
    assert latest[0]["details"] == "d0" and MS_UTC.match(latest[0]["timestamp"])


# --- roles ----------------------------------------------------------------------------

MANAGER_ONLY = [
    "/api/realtime/system-events",
    "/api/realtime/audit-trail",
    "/api/realtime/dashboard",
    "/api/realtime/export-audit",
]


@pytest.mark.parametrize("url", MANAGER_ONLY + ["/api/realtime/user-activity/ST001",
                                                 "/api/realtime/entity-history/maintenance_request/MR001"])
def test_anonymous_gets_401_envelope(anon_api, db, url):
    response = anon_api.get(url)
    assert response.status_code == 401
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("url", MANAGER_ONLY)
@pytest.mark.parametrize(("who", "status"), [("admin", 200), ("engineer", 200), ("staff", 403)])
def test_manager_only_endpoints(api, personas, url, who, status):
    response = api(personas[who]).get(url)
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize(
    ("who", "target", "status"),
    [
        ("staff", "ST001", 200),  # themself
        ("staff", "ST002", 403),  # another existing user
        ("staff", "NOBODY9", 403),  # a user that does not exist: same answer
        ("staff", "PE001", 403),
        ("engineer", "ST001", 200),
        ("engineer", "NOBODY9", 200),
        ("admin", "ST002", 200),
        ("other_staff", "ST002", 200),
    ],
)
def test_user_activity_roles(api, personas, who, target, status):
    response = api(personas[who]).get(f"/api/realtime/user-activity/{target}?hours=abc" if status == 403
                                       else f"/api/realtime/user-activity/{target}")
    assert response.status_code == status
    if status == 403:
        assert response.json()["success"] is False


def test_staff_may_read_only_their_requests_history(api, personas, staff, other_staff, engineer):
    from maintenance.services import assign_request, create_request

    mine = create_request(actor=staff, vessel="MV Aurora", title="Pump")
    theirs = create_request(actor=other_staff, vessel="MV Aurora", title="Winch")
    assigned = create_request(actor=other_staff, vessel="MV Aurora", title="Crane")
    assign_request(request_obj=assigned, actor=engineer, assignee=staff)
    client = api(staff)
    assert client.get(f"/api/realtime/entity-history/maintenance_request/{mine.code}").status_code == 200
    assert client.get(f"/api/realtime/entity-history/maintenance_request/{assigned.code}").status_code == 200
    assert client.get(f"/api/realtime/entity-history/maintenance_request/{theirs.code}").status_code == 403
    assert client.get("/api/realtime/entity-history/maintenance_request/MR999").status_code == 403  # no such
    assert client.get("/api/realtime/entity-history/user/ST001").status_code == 403
    assert client.get("/api/realtime/entity-history/emergency/EMG001").status_code == 403
    for who in ("admin", "engineer"):
        assert api(personas[who]).get(
            f"/api/realtime/entity-history/maintenance_request/{theirs.code}").status_code == 200
    body = client.get(f"/api/realtime/entity-history/maintenance_request/{mine.code}").json()
    assert body["total"] >= 1 and "Pump" in {c["new_value"] for c in body["changes"] if c["field_name"] == "title"}


# --- reads are recorded ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "activity_text", "details"),
    [
        ("/api/realtime/audit-trail?user_id=ST001&hours=2", "Viewed audit trail",
         {"hours": 2.0, "user_id": "ST001", "limit": 200}),
        ("/api/realtime/system-events?severity=critical", "Viewed system events",
         {"hours": 1, "severity": ["critical"], "limit": 1000}),
        ("/api/realtime/user-activity/ST002?limit=5", "Viewed user activity",
         {"user_id": "ST002", "hours": 24, "limit": 5}),
        ("/api/realtime/entity-history/emergency/EMG001", "Viewed entity history",
         {"entity_type": "emergency", "entity_id": "EMG001", "limit": 100}),
        ("/api/realtime/dashboard", "Viewed audit dashboard", {}),
    ],
)
def test_every_read_is_recorded_with_its_filters(api, personas, url, activity_text, details):
    assert api(personas["engineer"]).get(url).status_code == 200
    (row,) = reads("PE001", activity_text)
    assert json.loads(row.details) == details


def test_a_refused_read_is_recorded_and_a_bad_one_is_not_answered(api, personas):
    assert api(personas["staff"]).get("/api/realtime/user-activity/ST002").status_code == 403
    assert [json.loads(r.details) for r in reads("ST001", "Denied audit read")] == [
        {"path": "/api/realtime/user-activity/ST002"}]
    assert reads("ST001", "Viewed user activity") == []


def test_a_read_that_cannot_be_recorded_is_refused(api, personas, monkeypatch):
    from audit import services

    def broken(*args, **kwargs):
        raise RuntimeError("audit database down")

    monkeypatch.setattr(services, "log_activity", broken)
    response = api(personas["admin"]).get("/api/realtime/audit-trail")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "audit_unavailable"
    assert "records" not in response.json()


def test_portal_session_works_too(portal, personas):
    response = portal(personas["engineer"]).get("/api/realtime/dashboard")
    assert response.status_code == 200 and response.json()["success"] is True
