"""Capped totals of the real-time audit API (SPEC "The API", issue 15.4):
``total`` is exact up to the cap with ``total_relation`` "eq"; above it the
cap with "gte"; ``exact_total=1`` gives the exact number. The cap is 10,000;
these tests lower it to 5 so that a handful of rows cross it."""

from __future__ import annotations

import pytest

from audit import selectors
from audit.models import ActivityLog, AuditTrail, SystemEvent
from tests.audit.test_api_realtime import activity, change, clear_trail, event, trail

ACTIVITY = "/api/realtime/user-activity/ST002"
HISTORY = "/api/realtime/entity-history/maintenance_request/MR900"
EVENTS = "/api/realtime/system-events"
TRAIL = "/api/realtime/audit-trail"


@pytest.fixture
def cap_of_five(monkeypatch):
    monkeypatch.setattr(selectors, "TOTAL_CAP", 5)


@pytest.fixture
def rows(db):
    """Seven matching rows for each endpoint (two above a cap of five)."""
    clear_trail()
    for i in range(7):
        activity("ST002", f"page {i}", hours_ago=1 + i / 100)
        event("unhandled_error", "error", hours_ago=0.1 + i / 100)
        change("maintenance_request", "MR900", "title", f"t{i}", f"t{i + 1}", hours_ago=0.2 + i / 100)


def test_the_real_cap_is_ten_thousand():
    assert selectors.TOTAL_CAP == 10_000


@pytest.mark.parametrize("url", [ACTIVITY, HISTORY, EVENTS, TRAIL])
def test_above_the_cap_total_is_the_cap_with_gte(api, personas, cap_of_five, rows, url):
    body = api(personas["admin"]).get(url, {"limit": 2}).json()
    assert (body["count"], body["total"], body["total_relation"]) == (2, 5, "gte")


@pytest.mark.parametrize("url", [ACTIVITY, HISTORY, EVENTS, TRAIL])
def test_exact_total_gives_the_exact_number_above_the_cap(api, personas, cap_of_five, rows, url):
    body = api(personas["admin"]).get(url, {"limit": 2, "exact_total": "1"}).json()
    assert (body["count"], body["total"], body["total_relation"]) == (2, 7, "eq")
    body = api(personas["admin"]).get(url, {"limit": 2, "exact_total": "0"}).json()
    assert (body["total"], body["total_relation"]) == (5, "gte")


@pytest.mark.parametrize("url", [ACTIVITY, HISTORY, EVENTS, TRAIL])
def test_at_or_below_the_cap_total_is_exact_with_eq(api, personas, monkeypatch, rows, url):
    monkeypatch.setattr(selectors, "TOTAL_CAP", 7)
    body = api(personas["admin"]).get(url, {"limit": 3}).json()
    assert (body["count"], body["total"], body["total_relation"]) == (3, 7, "eq")


def test_a_filtered_total_is_capped_on_the_filtered_rows(api, personas, cap_of_five, db):
    clear_trail()
    for i in range(6):
        trail(f"MR{i:03d}", status="failed", hours_ago=1)
    for i in range(3):
        trail(f"MR{i:03d}", status="completed", hours_ago=1)
    client = api(personas["engineer"])
    failed = client.get(TRAIL, {"status": "failed"}).json()
    completed = client.get(TRAIL, {"status": "completed"}).json()
    assert (failed["total"], failed["total_relation"]) == (5, "gte")
    assert (completed["total"], completed["total_relation"], completed["count"]) == (3, "eq", 3)


def test_an_exact_total_read_is_recorded_as_such(api, personas, cap_of_five, rows):
    api(personas["admin"]).get(TRAIL, {"exact_total": "1"})
    api(personas["admin"]).get(TRAIL)
    reads = list(ActivityLog.objects.filter(user_id="ADM001", activity="Viewed audit trail").order_by("id"))
    assert '"exact_total": true' in reads[0].details
    assert "exact_total" not in reads[1].details


def test_the_capped_count_is_one_bounded_statement(cap_of_five, rows):
    qs = AuditTrail.objects.order_by("-timestamp")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert selectors.capped_total(qs) == (5, "gte")
    (query,) = ctx.captured_queries
    # no ORDER BY inside (any index may count), LIMIT cap + 1
    assert "ORDER BY" not in query["sql"].upper() and "LIMIT 6" in query["sql"].upper()
    assert selectors.capped_total(SystemEvent.objects.filter(severity="critical")) == (0, "eq")
