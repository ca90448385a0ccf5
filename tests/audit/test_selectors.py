"""The seed's get_* readers and the queryset helpers of audit.selectors."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.context import audit_context
from audit.models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory
from audit.selectors import (
    activities_since,
    entity_changes,
    events_since,
    get_entity_change_history,
    get_real_time_events,
    get_user_activity_timeline,
    parse_severities,
    trail_filtered,
    validate_hours,
    validate_limit,
)
from audit.services import log_activity, log_entity_change, log_system_event

pytestmark = pytest.mark.django_db


def _age(row, **delta):
    type(row).objects.filter(pk=row.pk).update(timestamp=timezone.now() - timedelta(**delta))


def _activity(user_id, activity, minutes_ago=0, **ctx):
    with audit_context(actor=user_id, **ctx):
        row = log_activity(activity, f"{activity} details")
    _age(row, minutes=minutes_ago)
    return row


# --- get_user_activity_timeline ----------------------------------------------------


def test_timeline_returns_the_users_activities_newest_first_as_dicts():
    _activity("PE001", "Login", minutes_ago=30, ip_address="192.168.1.100")
    _activity("PE001", "Viewed maintenance request", minutes_ago=5, ip_address="192.168.1.100")
    _activity("ST001", "Login", minutes_ago=1)
    rows = get_user_activity_timeline("PE001")
    assert [r["activity"] for r in rows] == ["Viewed maintenance request", "Login"]
    assert set(rows[0]) == {"id", "activity", "details", "timestamp", "ip_address"}
    assert rows[0]["details"] == "Viewed maintenance request details"
    assert rows[0]["ip_address"] == "192.168.1.100"
    assert rows[0]["timestamp"] > rows[1]["timestamp"]
    assert rows[0]["timestamp"].tzinfo is not None


def test_timeline_keeps_only_the_hours_window():
    _activity("PE001", "old", minutes_ago=25 * 60)
    _activity("PE001", "two hours ago", minutes_ago=120)
    _activity("PE001", "recent", minutes_ago=10)
    assert [r["activity"] for r in get_user_activity_timeline("PE001")] == ["recent", "two hours ago"]
    assert [r["activity"] for r in get_user_activity_timeline("PE001", hours=1)] == ["recent"]
    assert [r["activity"] for r in get_user_activity_timeline("PE001", hours=0.5)] == ["recent"]
    assert len(get_user_activity_timeline("PE001", hours=48)) == 3


def test_timeline_limit_keeps_the_newest():
    for i in range(5):
        _activity("ST001", f"visit {i}", minutes_ago=10 - i)
    assert [r["activity"] for r in get_user_activity_timeline("ST001", limit=2)] == ["visit 4", "visit 3"]
    assert len(get_user_activity_timeline("ST001", limit=1000)) == 5


@pytest.mark.parametrize("hours", [0, -1, 8761, "abc", float("nan"), True, None])
def test_timeline_refuses_bad_hours(hours):
    with pytest.raises(ValueError, match="hours"):
        get_user_activity_timeline("PE001", hours=hours)


@pytest.mark.parametrize("limit", [0, -5, 1001, 100000, 2.5, "x", False])
def test_timeline_refuses_bad_limits(limit):
    with pytest.raises(ValueError, match="limit"):
        get_user_activity_timeline("PE001", limit=limit)


def test_timeline_requires_a_user_id():
    with pytest.raises(ValueError, match="user_id"):
        get_user_activity_timeline("")


def test_hours_at_the_bounds_and_as_text_are_accepted():
    assert validate_hours(8760) == 8760.0
    assert validate_hours("0.5") == 0.5
    assert validate_limit("1000") == 1000
    assert validate_limit(1) == 1


# --- get_entity_change_history -------------------------------------------------------


def test_entity_history_joins_field_rows_to_their_trail_rows_newest_first():
    with audit_context(actor="ST001"):
        log_entity_change("maintenance_request", "MR001", "title", "Pump", "Bilge pump", change_reason="typo")
    _age(AuditTrail.objects.get(), minutes=10)
    _age(UpdateHistory.objects.get(), minutes=10)
    with audit_context(actor="PE001"):
        log_entity_change("maintenance_request", "MR001", "status", "pending", "approved", action_type="approve",
                          change_reason="Approved by port engineer")
    log_entity_change("maintenance_request", "MR002", "status", "pending", "rejected", action_type="reject")
    log_entity_change("emergency", "MR001", "status", "a", "b")  # same id, other entity type

    rows = get_entity_change_history("maintenance_request", "MR001")
    assert rows == [
        {"timestamp": rows[0]["timestamp"], "action_type": "approve", "field_name": "status",
         "old_value": "pending", "new_value": "approved", "user_id": "PE001",
         "change_reason": "Approved by port engineer", "source": "manual"},
        {"timestamp": rows[1]["timestamp"], "action_type": "update", "field_name": "title",
         "old_value": "Pump", "new_value": "Bilge pump", "user_id": "ST001", "change_reason": "typo", "source": "manual"},
    ]
    assert rows[0]["timestamp"] > rows[1]["timestamp"]


def test_entity_history_limit_and_unknown_entity():
    for i in range(4):
        log_entity_change("inventory_item", "INV001", "quantity_on_hand", i, i + 1)
    rows = get_entity_change_history("inventory_item", "INV001", limit=3)
    assert [r["new_value"] for r in rows] == ["4", "3", "2"]
    assert get_entity_change_history("inventory_item", "INV999") == []
    assert entity_changes("inventory_item", "INV001").count() == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (("maintenance_request", "MR001", 0), "limit"),
        (("maintenance_request", "MR001", 1001), "limit"),
        (("", "MR001", 10), "entity_type"),
        (("maintenance_request", "", 10), "entity_id"),
    ],
)
def test_entity_history_validates_its_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        get_entity_change_history(*args)


# --- get_real_time_events ---------------------------------------------------------------


def _event(event_type, severity, minutes_ago=0):
    row = log_system_event(event_type, "emergency", "EMG001", "data", severity)
    _age(row, minutes=minutes_ago)
    return row


def test_real_time_events_default_to_the_last_hour_newest_first():
    _event("old", "critical", minutes_ago=90)
    _event("first", "info", minutes_ago=30)
    _event("second", "critical", minutes_ago=5)
    rows = get_real_time_events()
    assert [r["event_type"] for r in rows] == ["second", "first"]
    assert set(rows[0]) == {"id", "timestamp", "event_type", "entity_type", "entity_id", "event_data",
                            "severity", "processed"}
    assert (rows[0]["entity_type"], rows[0]["entity_id"], rows[0]["processed"]) == ("emergency", "EMG001", False)
    assert [r["event_type"] for r in get_real_time_events(hours=2)] == ["second", "first", "old"]


def test_real_time_events_filter_by_one_or_several_severities():
    _event("i", "info")
    _event("w", "warning")
    _event("e", "error")
    _event("c", "critical")
    assert [r["event_type"] for r in get_real_time_events(severity_filter="critical")] == ["c"]
    assert {r["event_type"] for r in get_real_time_events(severity_filter="error,critical")} == {"e", "c"}
    assert {r["event_type"] for r in get_real_time_events(severity_filter=["warning", "info"])} == {"w", "i"}
    assert len(get_real_time_events(severity_filter=None)) == 4


@pytest.mark.parametrize("severity", ["fatal", "error,boom", "", [], ["info", 3]])
def test_real_time_events_refuse_unknown_severities(severity):
    with pytest.raises(ValueError, match="severity"):
        get_real_time_events(severity_filter=severity)


@pytest.mark.parametrize("hours", [0, -1, 9000, "1h"])
def test_real_time_events_refuse_bad_hours(hours):
    with pytest.raises(ValueError, match="hours"):
        get_real_time_events(hours=hours)


def test_parse_severities_normalizes_and_deduplicates():
    assert parse_severities(" Error , critical,error") == ["error", "critical"]
    assert parse_severities(None) is None


# --- queryset helpers ---------------------------------------------------------------------


def test_activities_and_events_since_are_querysets_for_counting_and_paging():
    _activity("PE001", "a", minutes_ago=1)
    _activity("ST001", "b", minutes_ago=2)
    assert activities_since(hours=1).count() == 2
    assert list(activities_since(hours=1, user_id="ST001").values_list("activity", flat=True)) == ["b"]
    _event("x", "error")
    assert events_since(hours=1, severities="error").count() == 1
    assert events_since(hours=1, severities=["info"]).count() == 0


def test_trail_filtered_applies_only_allow_listed_filters():
    with audit_context(actor="PE001"):
        log_entity_change("maintenance_request", "MR001", "status", "pending", "approved", action_type="approve")
    with audit_context(actor="ST001"):
        log_entity_change("maintenance_request", "MR002", "title", "a", "b")
    old = AuditTrail.objects.get(entity_id="MR002")
    assert trail_filtered(hours=24).count() == 2
    assert list(trail_filtered(filters={"user_id": "PE001"}).values_list("entity_id", flat=True)) == ["MR001"]
    assert trail_filtered(filters={"action_type": "update", "entity_type": "maintenance_request"}).get() == old
    assert trail_filtered(filters={"status": "completed", "entity_id": ""}).count() == 2  # empty value: ignored
    _age(old, hours=30)
    assert list(trail_filtered(hours=24).values_list("entity_id", flat=True)) == ["MR001"]
    assert [t.entity_id for t in trail_filtered(hours=48)] == ["MR001", "MR002"]


@pytest.mark.parametrize("name", ["user_id__startswith", "timestamp", "ip_address", "pk"])
def test_trail_filtered_refuses_other_filters(name):
    with pytest.raises(ValueError, match="Unknown filter"):
        trail_filtered(filters={name: "x"})


def test_selectors_do_not_write():
    get_user_activity_timeline("PE001")
    get_real_time_events()
    get_entity_change_history("emergency", "EMG001")
    assert (ActivityLog.objects.count(), SystemEvent.objects.count()) == (0, 0)
