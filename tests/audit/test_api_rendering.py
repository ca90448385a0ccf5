"""The four real-time lists write their rows as the database hands them over
(audit.api.rendering): the body must be, byte for byte, what DRF's
JSONRenderer writes for the dicts built from the rows' values, whatever the
text holds (quotes, backslashes, control characters, non-ASCII, the line
separators JSONRenderer escapes, ``%``), for NULLs, IPv6 addresses and
timestamps whose milliseconds must be truncated, not rounded. On PostgreSQL
the rows come from SQL, on SQLite from Python: the suite runs on both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from audit.models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory
from core.fields import iso_ms
from tests.audit.test_api_realtime import clear_trail

NASTY = 'say "hi" \\ C:\\path\nline\r\ttab\x01\x1f\x7f é ∑ 😀 \u2028 \u2029 %s %(x)s {0} </script>'


def when(seconds_ago: float, microsecond: int) -> datetime:
    base = (timezone.now() - timedelta(seconds=seconds_ago)).replace(microsecond=microsecond)
    return base.astimezone(UTC)


def reference(body: dict) -> bytes:
    return JSONRenderer().render(body)


@pytest.fixture
def admin_api(api, personas):
    return api(personas["admin"])


def test_user_activity_body_is_what_json_renderer_writes(admin_api, db):
    rows = [
        ActivityLog.objects.create(user_id="ST002", activity=NASTY, details=NASTY, ip_address="2001:db8::1"),
        ActivityLog.objects.create(user_id="ST002", activity="Login", details="", ip_address=None),
        ActivityLog.objects.create(user_id="ST002", activity="Page visit", details="/", ip_address="::ffff:10.0.0.1"),
    ]
    for row, (ago, micro) in zip(rows, [(30, 999_999), (20, 0), (10, 123_456)], strict=True):
        ActivityLog.objects.filter(pk=row.pk).update(timestamp=when(ago, micro))
    response = admin_api.get("/api/realtime/user-activity/ST002", {"limit": 10})
    assert response.status_code == 200
    body = response.json()
    expected = [
        {"id": r.pk, "activity": r.activity, "details": r.details, "timestamp": iso_ms(r.timestamp),
         "ip_address": r.ip_address}
        for r in ActivityLog.objects.filter(user_id="ST002").order_by("-timestamp", "-id")
    ]
    assert [a["timestamp"][-5:] for a in expected] == [".123Z", ".000Z", ".999Z"]
    assert response.content == reference({
        "success": True, "user_id": "ST002", "activities": expected, "count": 3, "total": 3, "total_relation": "eq",
        "timestamp": body["timestamp"],
    })
    assert body["activities"][2]["activity"] == NASTY and body["activities"][1]["ip_address"] is None
    assert b"\\u2028" in response.content and "\u2028".encode() not in response.content


def test_audit_trail_body_is_what_json_renderer_writes(admin_api, db):
    clear_trail()
    nasty = AuditTrail.objects.create(user_id="PE001", action_type="update", entity_type="maintenance_request",
                                      entity_id="MR001", old_value='{"title": "a \\"quoted\\" \\u00e9"}',
                                      new_value=NASTY, ip_address="2001:db8::7", status="failed",
                                      error_message=NASTY, source="manual")
    bare = AuditTrail.objects.create(user_id="system", action_type="create", entity_type="emergency",
                                     entity_id="EMG001", old_value=None, new_value=None, ip_address=None)
    AuditTrail.objects.filter(pk=nasty.pk).update(timestamp=when(20, 999_500))
    AuditTrail.objects.filter(pk=bare.pk).update(timestamp=when(10, 1_000))
    response = admin_api.get("/api/realtime/audit-trail", {"limit": 10})
    assert response.status_code == 200
    fields = ("id", "timestamp", "user_id", "action_type", "entity_type", "entity_id", "old_value", "new_value",
              "ip_address", "status", "error_message", "source")
    expected = []
    for row in AuditTrail.objects.order_by("-timestamp", "-id"):
        record = {name: getattr(row, name) for name in fields}
        record["timestamp"] = iso_ms(row.timestamp)
        expected.append(record)
    assert [r["timestamp"][-5:] for r in expected] == [".001Z", ".999Z"]
    assert response.content == reference({"success": True, "records": expected, "count": 2, "total": 2,
                                          "total_relation": "eq"})
    record = response.json()["records"][1]
    assert (record["new_value"], record["old_value"], record["source"]) == (NASTY, nasty.old_value, "manual")


def test_system_events_body_is_what_json_renderer_writes(admin_api, db):
    handled = SystemEvent.objects.create(event_type="unhandled_error", severity="error", entity_type="emergency",
                                         entity_id="EMG001", event_data=NASTY, processed=True,
                                         processed_at=when(5, 250_999), acknowledged_at=when(4, 999_999),
                                         acknowledged_by="PE001", acknowledgement_note=NASTY)
    fresh = SystemEvent.objects.create(event_type="emergency_created", severity="critical", entity_type="",
                                       entity_id="", event_data="")
    SystemEvent.objects.filter(pk=handled.pk).update(timestamp=when(20, 0))
    SystemEvent.objects.filter(pk=fresh.pk).update(timestamp=when(10, 777_777))
    response = admin_api.get("/api/realtime/system-events", {"limit": 10, "severity": "error,critical"})
    assert response.status_code == 200
    fields = ("id", "timestamp", "event_type", "entity_type", "entity_id", "event_data", "severity", "processed",
              "processed_at", "acknowledged_at", "acknowledged_by", "acknowledgement_note")
    expected = []
    for row in SystemEvent.objects.filter(pk__in=[handled.pk, fresh.pk]).order_by("-timestamp", "-id"):
        event = {name: getattr(row, name) for name in fields}
        for name in ("timestamp", "processed_at", "acknowledged_at"):
            event[name] = iso_ms(event[name])
        expected.append(event)
    assert response.content == reference({"success": True, "events": expected, "count": 2, "total": 2,
                                          "total_relation": "eq", "hours_included": 1})
    events = response.json()["events"]
    assert [(e["processed"], e["acknowledged_at"] is None) for e in events] == [(False, True), (True, False)]
    assert events[1]["processed_at"].endswith(".250Z") and events[1]["acknowledged_at"].endswith(".999Z")


def test_entity_history_body_is_what_json_renderer_writes(admin_api, db):
    clear_trail()
    approve = AuditTrail.objects.create(user_id="PE001", action_type="approve", entity_type="maintenance_request",
                                        entity_id="MR777", source="manual")
    table = "maintenance_maintenancerequest"
    linked = UpdateHistory.objects.create(table_name=table, record_id="MR777", field_name="status",
                                          old_value=NASTY, new_value=None, user_id="PE001", change_reason=NASTY,
                                          audit=approve)
    orphan = UpdateHistory.objects.create(table_name=table, record_id="MR777", field_name="title",
                                          old_value="a", new_value="b", user_id="ST001", change_reason="",
                                          audit=None)
    UpdateHistory.objects.filter(pk=linked.pk).update(timestamp=when(20, 123_999))
    UpdateHistory.objects.filter(pk=orphan.pk).update(timestamp=when(10, 0))
    response = admin_api.get("/api/realtime/entity-history/maintenance_request/MR777", {"limit": 10})
    assert response.status_code == 200
    expected = [
        {"timestamp": iso_ms(h.timestamp), "action_type": (h.audit.action_type if h.audit else "") or "update",
         "field_name": h.field_name, "old_value": h.old_value, "new_value": h.new_value, "user_id": h.user_id,
         "change_reason": h.change_reason, "source": (h.audit.source if h.audit else "") or "captured"}
        for h in UpdateHistory.objects.filter(record_id="MR777").order_by("-timestamp", "-id")
    ]
    assert [(c["action_type"], c["source"]) for c in expected] == [("update", "captured"), ("approve", "manual")]
    assert response.content == reference({"success": True, "entity_type": "maintenance_request",
                                          "entity_id": "MR777", "changes": expected, "count": 2, "total": 2,
                                          "total_relation": "eq"})


def test_an_indented_rendering_still_holds_the_rows(admin_api, db):
    ActivityLog.objects.create(user_id="ST002", activity=NASTY, details="", ip_address=None)
    response = admin_api.get("/api/realtime/user-activity/ST002", HTTP_ACCEPT="application/json; indent=2")
    assert response.status_code == 200
    assert b'\n  "activities": [\n    {\n' in response.content
    assert response.json()["activities"][0]["activity"] == NASTY
