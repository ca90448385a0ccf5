"""The audit pages for people: /admin/audit-log, /dashboard/, /my-activity/,
/users/<id>/activity/ and the change history on detail pages. Role matrix,
filters through the shared FilterSet, paging without COUNT(*), before/after
highlighting, escaping of recorded values, recorded reads."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def at(hours_ago: float):
    return timezone.now() - timedelta(hours=hours_ago)


def trail(entity_id="MR001", *, user_id="PE001", action_type="update", status="completed", hours_ago=0.0,
          entity_type="maintenance_request", changes=None, old=None, new=None, **extra):
    changes = changes if changes is not None else {"priority": {"old": "low", "new": "high"}}
    row = AuditTrail.objects.create(
        user_id=user_id, action_type=action_type, entity_type=entity_type, entity_id=entity_id, status=status,
        changes=changes, old_value=old, new_value=new, ip_address="10.0.0.9", **extra,
    )
    AuditTrail.objects.filter(pk=row.pk).update(timestamp=at(hours_ago))
    return row


def clear_trail():
    UpdateHistory.objects.all().delete()
    AuditTrail.objects.all().delete()


def ids_on_page(response) -> list[int]:
    return [int(i) for i in re.findall(r'class="row\d audit-row[^"]*" data-id="(\d+)"', response.content.decode())]


# --- who may see what -----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/admin/audit-log", "/admin/audit-log/", "/dashboard/", "/users/ST002/activity/"])
def test_manager_pages_anonymous_is_sent_to_the_login_page(client, personas, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    assert url.rstrip("/").split("/")[-1] in response["Location"]


@pytest.mark.parametrize("url", ["/admin/audit-log", "/admin/audit-log/", "/dashboard/", "/dashboard/data/",
                                 "/users/ST002/activity/"])
def test_manager_pages_refuse_staff_with_403(portal, personas, url):
    response = portal(personas["staff"]).get(url)
    assert response.status_code == 403
    assert b"audit-row" not in response.content and b"data-metric" not in response.content


@pytest.mark.parametrize("who", ["engineer", "admin"])
@pytest.mark.parametrize("url", ["/admin/audit-log", "/admin/audit-log/", "/dashboard/", "/dashboard/data/",
                                 "/users/ST001/activity/", "/my-activity/"])
def test_manager_pages_open_to_admins_and_port_engineers(portal, personas, who, url):
    assert portal(personas[who]).get(url).status_code == 200


def test_dashboard_data_anonymous_is_401_json(client, personas):
    response = client.get("/dashboard/data/")
    assert response.status_code == 401
    assert response.json()["success"] is False


def test_my_activity_needs_login_and_is_open_to_staff(client, portal, personas):
    assert client.get("/my-activity/")["Location"].startswith("/login/?next=/my-activity/")
    assert portal(personas["staff"]).get("/my-activity/").status_code == 200
    assert portal(personas["staff"]).get("/users/ST001/activity/").status_code == 200  # their own


def test_audit_log_has_the_portals_look_and_the_filter_controls(portal, personas):
    html = portal(personas["engineer"]).get("/admin/audit-log").content.decode()
    assert "css/portal.css" in html and "admin/css/base.css" not in html
    assert "<h1>Audit log</h1>" in html
    for name in ("hours", "from", "to", "user_id", "action_type", "entity_type", "entity_id", "status"):
        assert f'name="{name}"' in html
    assert 'type="datetime-local" name="from"' in html and 'type="datetime-local" name="to"' in html
    # presets keep the other filters and replace the period
    for hours, label in (("1", "1 h"), ("24", "24 h"), ("168", "7 d"), ("720", "30 d")):
        assert re.search(rf'href="\?hours={hours}"[^>]*>{label}</a>', html), label
    assert 'href="?hours=24" aria-current="true">24 h</a>' in html
    # the user picker offers ids with names
    assert 'list="audit-users"' in html and '<option value="PE001">PE001 · PE001 Person</option>' in html
    assert 'action="/logout/"' in html  # a port engineer logs out through the portal
    assert "<script" not in html.split("<main")[1] and 'style="' not in html


def test_presets_and_picker_keep_the_other_filters_in_the_url(portal, personas):
    html = portal(personas["engineer"]).get("/admin/audit-log?user_id=ST001&from=2026-01-01T00:00").content.decode()
    assert 'href="?user_id=ST001&amp;hours=168">7 d</a>' in html
    assert 'value="ST001"' in html and 'value="2026-01-01T00:00"' in html
    assert 'aria-current="true"' not in html  # a range is in force, no preset


def test_viewing_the_audit_log_is_recorded_with_its_filters(portal, personas):
    portal(personas["engineer"]).get("/admin/audit-log?hours=2&user_id=ST001&page=1")
    row = ActivityLog.objects.get(user_id="PE001", activity="Viewed audit log")
    assert '"user_id": "ST001"' in row.details and '"hours": 2.0' in row.details and '"page": 1' in row.details


# --- filters ------------------------------------------------------------------------------------


@pytest.fixture
def five_rows(personas):
    clear_trail()
    return {
        "base": trail("MR001"),
        "user": trail("MR001", user_id="ST001"),
        "action": trail("MR001", action_type="approve"),
        "entity": trail("EMG001", entity_type="emergency"),
        "status": trail("MR002", status="failed", error_message="Illegal move"),
        "old": trail("MR001", hours_ago=30),
    }


@pytest.mark.parametrize(("query", "expected"), [
    ("", ["status", "entity", "action", "user", "base"]),
    ("hours=48", ["status", "entity", "action", "user", "base", "old"]),
    ("user_id=ST001", ["user"]),
    ("action_type=approve", ["action"]),
    ("entity_type=emergency", ["entity"]),
    ("entity_id=MR002", ["status"]),
    ("status=failed", ["status"]),
    ("entity_type=maintenance_request&entity_id=MR001&user_id=PE001&action_type=update", ["base"]),
])
def test_each_filter_selects_its_rows_newest_first(portal, personas, five_rows, query, expected):
    response = portal(personas["engineer"]).get(f"/admin/audit-log?{query}")
    assert response.status_code == 200
    assert ids_on_page(response) == [five_rows[name].pk for name in expected]


@pytest.mark.parametrize(("query", "message"), [
    ("hours=abc", "hours must be a number"),
    ("hours=0", "hours must be greater than 0"),
    ("hours=-1", "hours must be greater than 0"),
    ("hours=9000", "at most 8760"),
    ("action_type=explode", "action_type: &#x27;explode&#x27; is not valid"),
    ("entity_type=ship", "entity_type: &#x27;ship&#x27; is not valid"),
    ("status=done", "status: &#x27;done&#x27; is not valid"),
    ("user_id=" + "X" * 30, "user_id must be at most 20 characters"),
    ("entity_id=MR%00", "entity_id must not contain NUL"),
    ("page=0", "page must be a whole number"),
    ("page=abc", "page must be a whole number"),
    ("page=-2", "page must be a whole number"),
    ("page=%C2%B2", "page must be a whole number"),  # a digit to str.isdigit(), not to int()
    ("from=yesterday", "from must be a date and time"),
    ("to=2026-13-45", "to must be a date and time"),
    ("from=2026-12-02&to=2026-12-01", "to must be after from"),
    ("before=12;drop", "The page cursor is not valid"),
    ("after=abc.1", "The page cursor is not valid"),
    ("before=1.%C2%B2", "The page cursor is not valid"),
])
def test_bad_filter_values_show_an_error_never_a_500(portal, personas, query, message):
    trail("MR001")
    response = portal(personas["engineer"]).get(f"/admin/audit-log?{query}")
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert 'class="errornote message message-error"' in html
    assert ids_on_page(response) == []  # no silently changed filter
    assert "audit-export" not in html


def test_empty_form_controls_mean_no_filter(portal, personas):
    clear_trail()
    row = trail("MR001")
    client = portal(personas["engineer"])
    response = client.get("/admin/audit-log?hours=&user_id=&action_type=&entity_type=&entity_id=&status=")
    assert response.status_code == 200 and ids_on_page(response) == [row.pk]
    html = client.get("/admin/audit-log?hours=&user_id=PE001&status=").content.decode()
    assert 'href="/api/realtime/export-audit?user_id=PE001" class="audit-export button secondary"' in html


def test_bad_hours_escape_the_echoed_value(portal, personas):
    html = portal(personas["engineer"]).get("/admin/audit-log", {"hours": XSS}).content.decode()
    assert XSS not in html


# --- paging -------------------------------------------------------------------------------------------


def test_keyset_pages_with_newer_and_older_links_and_a_capped_total(portal, personas):
    clear_trail()
    rows = [trail(f"MR{i:03d}", user_id="PE001") for i in range(120)]
    newest_first = [r.pk for r in reversed(rows)]
    client = portal(personas["engineer"])
    with CaptureQueriesContext(connection) as queries:
        page1 = client.get("/admin/audit-log?user_id=PE001")
    trail_sql = [q["sql"] for q in queries.captured_queries if "audit_trail" in q["sql"]]
    # the total is counted over at most 10,001 rows (SPEC's capped total), the page reads 51 rows, no OFFSET
    counts = [sql for sql in trail_sql if "COUNT(" in sql.upper()]
    assert counts and all(re.search(r"LIMIT 10001\b", sql) for sql in counts)
    assert any(re.search(r"LIMIT 51\b", sql) for sql in trail_sql)
    assert not [sql for sql in trail_sql if "OFFSET" in sql.upper()]
    assert ids_on_page(page1) == newest_first[:50]
    html = page1.content.decode()
    assert "1–50 of 120" in html and 'rel="prev"' not in html
    older = re.search(r'href="([^"]+)" rel="next">Older', html).group(1).replace("&amp;", "&")
    assert "user_id=PE001" in older and "before=" in older and "page=" not in older

    page2 = client.get("/admin/audit-log" + older)
    assert ids_on_page(page2) == newest_first[50:100]
    html = page2.content.decode()
    assert "51–100 of 120" in html
    page3 = client.get("/admin/audit-log" + re.search(r'href="([^"]+)" rel="next">Older', html).group(1)
                       .replace("&amp;", "&"))
    assert ids_on_page(page3) == newest_first[100:]
    html = page3.content.decode()
    assert "101–120 of 120" in html and 'rel="next"' not in html
    newer = re.search(r'href="([^"]+)" rel="prev">&larr; Newer', html).group(1).replace("&amp;", "&")
    assert "after=" in newer
    assert ids_on_page(client.get("/admin/audit-log" + newer)) == newest_first[50:100]


def _older_link(response) -> str:
    html = response.content.decode()
    return "/admin/audit-log" + re.search(r'href="([^"]+)" rel="next">Older', html).group(1).replace("&amp;", "&")


def _rows_at(hours_ago: float, count: int) -> list[int]:
    """``count`` rows sharing one timestamp, newest first (ties go by id)."""
    rows = [trail(f"MR{i:03d}", user_id="PE001").pk for i in range(count)]
    AuditTrail.objects.filter(pk__in=rows).update(timestamp=at(hours_ago))
    return rows[::-1]


def test_an_older_page_inside_rows_of_one_timestamp_says_its_position(portal, personas):
    clear_trail()
    newest_first = _rows_at(1, 30) + _rows_at(2, 60) + _rows_at(3, 30)
    client = portal(personas["engineer"])
    page2 = client.get(_older_link(client.get("/admin/audit-log?user_id=PE001")))
    # its first row is the 21st of the 60 that share a timestamp: 30 newer ones plus 20 ties before it
    assert ids_on_page(page2) == newest_first[50:100]
    assert "51–100 of 120" in page2.content.decode()
    page3 = client.get(_older_link(page2))
    assert ids_on_page(page3) == newest_first[100:] and "101–120 of 120" in page3.content.decode()


def test_an_older_page_past_the_cap_says_records_after_the_cap(portal, personas, monkeypatch):
    from audit import selectors

    clear_trail()
    newest_first = _rows_at(1, 3) + _rows_at(2, 100)
    monkeypatch.setattr(selectors, "TOTAL_CAP", 5)
    client = portal(personas["engineer"])
    # 3 newer rows and 47 ties before page 2: above the cap of 5 only once both are counted
    page2 = client.get(_older_link(client.get("/admin/audit-log?user_id=PE001")))
    assert ids_on_page(page2) == newest_first[50:100]
    assert "50 records after the first 5 of more than 5" in page2.content.decode()


def test_page_numbers_still_work(portal, personas):
    clear_trail()
    rows = [trail(f"MR{i:03d}", user_id="PE001") for i in range(60)]
    newest_first = [r.pk for r in reversed(rows)]
    response = portal(personas["engineer"]).get("/admin/audit-log?user_id=PE001&page=2")
    assert ids_on_page(response) == newest_first[50:]
    html = response.content.decode()
    assert "51–60 of 60" in html and 'href="?user_id=PE001&amp;page=1" rel="prev"' in html


def test_a_total_above_ten_thousand_is_said_so(portal, personas, monkeypatch):
    from audit import selectors

    clear_trail()
    for i in range(8):
        trail(f"MR{i:03d}")
    monkeypatch.setattr(selectors, "TOTAL_CAP", 5)
    html = portal(personas["engineer"]).get("/admin/audit-log").content.decode()
    assert "1–8 of more than 5" in html


def test_from_and_to_select_a_range_and_the_export_keeps_it(portal, personas):
    clear_trail()
    inside = trail("MR001", hours_ago=30)
    trail("MR002", hours_ago=50)
    trail("MR003", hours_ago=1)
    start = (at(40)).strftime("%Y-%m-%dT%H:%M")
    end = (at(20)).strftime("%Y-%m-%dT%H:%M")
    client = portal(personas["engineer"])
    response = client.get(f"/admin/audit-log?from={start}&to={end}")
    assert response.status_code == 200 and ids_on_page(response) == [inside.pk]
    html = response.content.decode()
    href = re.search(r'<a href="([^"]+)" class="audit-export', html).group(1).replace("&amp;", "&")
    assert f"from={start}".replace(":", "%3A") in href
    body = b"".join(client.get(href).streaming_content).decode()
    assert '"MR001"' in body and "MR002" not in body and "MR003" not in body


def test_exactly_a_full_last_page_has_no_older_link(portal, personas):
    clear_trail()
    for i in range(50):
        trail(f"MR{i:03d}")
    assert 'rel="next"' not in portal(personas["engineer"]).get("/admin/audit-log").content.decode()


# --- rows --------------------------------------------------------------------------------------------------


def test_one_sentence_per_record_with_the_fields_folded(portal, personas):
    clear_trail()
    trail("MR007", changes={"status": {"old": "pending", "new": "approved"}},
          old='{"status": "pending", "title": "Pump"}', new='{"status": "approved", "title": "Pump"}',
          change_reason="Parts are in stock")
    trail("MR008", action_type="create", changes={}, old=None,
          new='{"id": 8, "code": "MR008", "title": "Winch", "category": "deck", "priority": "high", '
              '"assigned_to": null, "created_at": "2026-12-02T05:44:13Z"}')
    html = portal(personas["engineer"]).get("/admin/audit-log").content.decode()
    assert ("PE001 · PE001 Person updated maintenance request MR007 · Pump: Status — &#x27;Parts are in stock&#x27;"
            in html)
    assert re.search(r'<details class="change-fields">\s*<summary>1 changed field</summary>', html)
    assert '<del>Pending</del></td><td class="after"><ins>Approved</ins>' in html
    assert "10.0.0.9" in html
    create = html[html.index("created maintenance request MR008"):]
    assert re.search(r'<details class="change-fields">\s*<summary>Created with 4 fields</summary>', create)
    assert "<td>Deck machinery</td>" in create and "<td>High</td>" in create
    assert ">Id<" not in create and ">Created at<" not in create and ">Assigned to<" not in create


def test_row_links_to_entity_history_detail_page_and_user_timeline(portal, personas):
    clear_trail()
    trail("MR007", user_id="ST001")
    html = portal(personas["engineer"]).get("/admin/audit-log").content.decode()
    assert 'href="/requests/MR007/"' in html
    assert 'href="?entity_type=maintenance_request&amp;entity_id=MR007&amp;hours=8760"' in html
    assert 'href="/users/ST001/activity/"' in html


def test_export_button_carries_the_filters_and_the_session_can_follow_it(portal, personas):
    clear_trail()
    trail("MR001", user_id="PE001", action_type="approve")
    trail("MR002", user_id="ST001")
    client = portal(personas["engineer"])
    html = client.get("/admin/audit-log?hours=48&user_id=PE001&action_type=approve&page=1").content.decode()
    href = re.search(r'<a href="([^"]+)" class="audit-export', html).group(1).replace("&amp;", "&")
    assert href == "/api/realtime/export-audit?hours=48&user_id=PE001&action_type=approve"
    response = client.get(href)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    assert body.count("\r\n") == 2 and '"MR001"' in body and "MR002" not in body


# --- dashboard ---------------------------------------------------------------------------------------------


def test_dashboard_tiles_show_the_spec_metrics(portal, personas):
    from emergencies import services as emergencies
    from maintenance import services as maintenance

    staff, engineer = personas["staff"], personas["engineer"]
    maintenance.create_request(actor=staff, vessel="MV A", title="One")
    maintenance.create_request(actor=staff, vessel="MV A", title="Two")
    third = maintenance.create_request(actor=staff, vessel="MV A", title="Three")
    maintenance.approve_request(request_obj=third, actor=engineer)
    emergencies.report_emergency(actor=staff, vessel="MV A", emergency_type="fire", description="Galley",
                                 severity="high")
    SystemEvent.objects.all().delete()
    for severity in ("error", "critical", "warning"):
        SystemEvent.objects.create(event_type="x", severity=severity)
    old = SystemEvent.objects.create(event_type="x", severity="error")
    SystemEvent.objects.filter(pk=old.pk).update(timestamp=at(2))

    client = portal(engineer)
    ActivityLog.objects.all().delete()
    ActivityLog.objects.create(user_id="ST001", activity="Page visit")
    ActivityLog.objects.create(user_id="ST002", activity="Page visit")
    ActivityLog.objects.create(user_id="ST002", activity="Logout")
    ActivityLog.objects.create(user_id="ST003", activity="Failed login")
    hour_old = ActivityLog.objects.create(user_id="ST004", activity="Page visit")
    ActivityLog.objects.filter(pk=hour_old.pk).update(timestamp=at(1.5))
    html = client.get("/dashboard/").content.decode()

    def tile(key):
        return int(re.search(rf'data-metric="{key}">(\d+)<', html).group(1))

    assert tile("pending_maintenance") == 2
    assert tile("active_emergencies") == 1
    assert tile("recent_errors_1h") == 2
    assert tile("recent_activities_1h") == 4
    assert tile("active_users_1h") == 2  # ST001, ST002 (a failed login is not ST003's doing)
    assert tile("online_users_15m") == 1  # ST002 logged out
    assert 'src="/static/audit/dashboard.js"' in html and "http" not in re.sub(r'https?://[^"]*w3\.org[^"]*', "", html.split("<main")[1])


def test_dashboard_charts_are_svg_with_text_alternatives(portal, personas):
    SystemEvent.objects.all().delete()
    e = SystemEvent.objects.create(event_type="x", severity="error")
    SystemEvent.objects.filter(pk=e.pk).update(timestamp=at(2))
    html = portal(personas["engineer"]).get("/dashboard/").content.decode()
    assert html.count("<svg") == 2
    assert "<title id=\"activity-title\">Activities per minute, last hour (UTC)</title>" in html
    assert "<title id=\"errors-title\">Error and critical events per hour, last 24 hours (UTC)</title>" in html
    assert '<desc id="errors-desc" data-chart-desc>1 error and critical events in total' in html
    # each chart is named for screen readers, and its labels are HTML text (12 px and more, not scaled SVG)
    assert 'aria-label="Error and critical events per hour, last 24 hours (UTC): 1 error and critical events in total' in html
    assert html.count('role="img" aria-label="') == 2 and "<text " not in html
    assert len(re.findall(r'<rect data-i="\d+"', html)) == 60 + 24
    assert "Show the numbers as a table" in html


def test_dashboard_data_has_series_and_open_critical_events(portal, personas):
    SystemEvent.objects.all().delete()
    e = SystemEvent.objects.create(event_type="disk_full", severity="error")
    SystemEvent.objects.filter(pk=e.pk).update(timestamp=at(2))
    SystemEvent.objects.create(event_type="emergency_created", severity="critical", entity_type="emergency",
                               entity_id="EMG004", event_data=XSS)
    SystemEvent.objects.create(event_type="emergency_created", severity="critical", entity_id="EMG003",
                               processed=True, acknowledged_at=at(0), acknowledged_by="PE001")
    SystemEvent.objects.create(event_type="emergency_created", severity="critical", entity_id="EMG005",
                               processed=True)  # processed (alerted) but nobody took it on: still open
    body = portal(personas["engineer"]).get("/dashboard/data/").json()
    errors = body["charts"]["errors"]["bars"]
    assert len(errors) == 24 and len(body["charts"]["activity"]["bars"]) == 60
    assert [b["count"] for b in errors][-3:] == [1, 0, 3]  # 2 hours ago, 1 hour ago (none), this hour (the criticals)
    assert [c["entity_id"] for c in body["critical_events"]] == ["EMG005", "EMG004"]
    assert body["critical_events"][1]["url"] == "/emergencies/EMG004/"
    assert body["critical_events"][1]["event_data"] == XSS  # JSON; the script sets it with textContent


def test_dashboard_escapes_recorded_values(portal, personas):
    ActivityLog.objects.create(user_id="ST001", activity=XSS, details=XSS)
    SystemEvent.objects.create(event_type=XSS, severity="critical", entity_id="EMG001", event_data=XSS)
    html = portal(personas["engineer"]).get("/dashboard/").content.decode()
    assert XSS not in html
    assert html.count(XSS_ESCAPED) >= 4


def test_dashboard_script_never_uses_inner_html():
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / "static" / "audit" / "dashboard.js").read_text()
    assert "innerHTML" not in source and "insertAdjacentHTML" not in source and "textContent" in source


# --- activity timelines --------------------------------------------------------------------------------------


def test_my_activity_shows_only_my_rows_newest_first_and_filters_by_hours(portal, personas):
    client = portal(personas["staff"])
    ActivityLog.objects.all().delete()
    for text, hours in (("old one", 30), ("recent one", 0.5), ("newest", 0)):
        row = ActivityLog.objects.create(user_id="ST001", activity=text, ip_address="10.1.1.1")
        ActivityLog.objects.filter(pk=row.pk).update(timestamp=at(hours))
    ActivityLog.objects.create(user_id="ST002", activity="someone else's")
    html = client.get("/my-activity/").content.decode()
    assert html.index("newest") < html.index("recent one")
    assert "old one" not in html and "someone else" not in html and "10.1.1.1" in html
    html = client.get("/my-activity/?hours=48").content.decode()
    assert "old one" in html
    response = client.get("/my-activity/?hours=nope")
    assert response.status_code == 400 and "hours must be a number" in response.content.decode()


def test_my_activity_pages(portal, personas):
    client = portal(personas["staff"])
    ActivityLog.objects.bulk_create([ActivityLog(user_id="ST001", activity=f"act {i:03d}") for i in range(60)])
    html = client.get("/my-activity/").content.decode()
    assert 'rel="next"' in html
    html2 = client.get("/my-activity/?page=2").content.decode()
    assert 'rel="prev"' in html2


def test_my_activity_escapes_recorded_values(portal, personas):
    client = portal(personas["staff"])
    ActivityLog.objects.create(user_id="ST001", activity=XSS, details=XSS)
    html = client.get("/my-activity/").content.decode()
    assert XSS not in html and html.count(XSS_ESCAPED) == 2


def test_manager_reading_someone_elses_activity_is_recorded(portal, personas):
    portal(personas["engineer"]).get("/users/ST001/activity/?hours=2")
    assert ActivityLog.objects.filter(user_id="PE001", activity="Viewed user activity",
                                      details__contains='"user_id": "ST001"').count() == 1


# --- entity timelines ------------------------------------------------------------------------------------------


def test_request_timeline_shows_who_when_where_why_and_field_changes(portal, personas):
    from maintenance import services

    obj = services.create_request(actor=personas["staff"], vessel="MV A", title=XSS)
    client = portal(personas["engineer"])
    client.post(f"/requests/{obj.code}/approve/", {"reason": "Budget approved " + XSS})
    obj.refresh_from_db()
    assert obj.status == "approved"
    html = client.get(f"/requests/{obj.code}/").content.decode()
    section = html[html.index('id="history"'):]
    approved = f"PE001 · PE001 Person approved maintenance request {obj.code}: Status, approved by, approved at"
    created = f"ST001 · ST001 Person created maintenance request {obj.code} · {XSS_ESCAPED}"
    assert section.index(approved) < section.index(created)  # newest first, one sentence each
    assert "from 127.0.0.1" in section
    assert "— &#x27;Budget approved " + XSS_ESCAPED + "&#x27;" in section
    # labels and choice labels, people by name, times in seconds and UTC with the exact value on hover
    assert '<th scope="row">Status</th>\n      <td class="before"><del>Pending</del></td><td class="after"><ins>Approved</ins></td>' in section
    assert "<ins>PE001 · PE001 Person</ins>" in section
    assert re.search(r'<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} UTC">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>', section)
    # the create is folded, lists only its non-empty fields, never the id or automatic timestamps
    create = section[section.index(created):]
    assert "<summary>Created with 7 fields</summary>" in create
    assert "<td>Medium</td>" in create and "<td>ST001 · ST001 Person</td>" in create
    assert ">Id<" not in section and ">Created at<" not in section and ">Updated at<" not in section
    assert "<del>empty</del></td><td class=\"after\"><ins>empty</ins>" not in section
    assert XSS not in html


def test_staff_see_their_own_request_history_without_ip(portal, personas):
    from maintenance import services

    obj = services.create_request(actor=personas["staff"], vessel="MV A", title="Pump")
    html = portal(personas["staff"]).get(f"/requests/{obj.code}/").content.decode()
    assert 'id="history"' in html and "ST001 · ST001 Person created maintenance request" in html
    assert "from 127.0.0.1" not in html and "Full history in the audit log" not in html
    assert portal(personas["other_staff"]).get(f"/requests/{obj.code}/").status_code in (403, 404)


def test_emergency_inventory_and_user_pages_show_their_history_to_managers(portal, personas):
    from emergencies import services as emergencies
    from maintenance import services as maintenance

    emg = emergencies.report_emergency(actor=personas["staff"], vessel="MV A", emergency_type="fire",
                                       description=XSS, severity="high")
    item = maintenance.create_item(actor=personas["admin"], part_number="P-1", name=XSS, quantity_on_hand=3)
    maintenance.adjust_stock(item=item, actor=personas["admin"], quantity_change=-1, reason="Used " + XSS)
    client = portal(personas["engineer"])
    for url, who in ((f"/emergencies/{emg.code}/", "ST001 · ST001 Person created emergency"),
                     (f"/inventory/{item.code}/", "ADM001 · ADM001 Person updated"),
                     ("/users/ST001/", "The system")):
        html = client.get(url).content.decode()
        assert 'id="history"' in html, url
        assert f'<span class="change-sentence">{who}' in html, url
        assert XSS not in html, url
    html = client.get(f"/inventory/{item.code}/").content.decode()
    assert "<del>3</del></td><td class=\"after\"><ins>2</ins>" in html


def test_staff_see_no_history_on_an_emergency(portal, personas):
    from emergencies import services as emergencies

    emg = emergencies.report_emergency(actor=personas["staff"], vessel="MV A", emergency_type="fire",
                                       description="Galley", severity="high")
    html = portal(personas["staff"]).get(f"/emergencies/{emg.code}/").content.decode()
    assert 'id="history"' not in html


def test_audit_log_escapes_recorded_values(portal, personas):
    from maintenance import services

    services.create_request(actor=personas["staff"], vessel=XSS, title=XSS, reason=XSS)
    html = portal(personas["engineer"]).get("/admin/audit-log").content.decode()
    assert XSS not in html
    assert html.count(XSS_ESCAPED) >= 3  # vessel, title, reason


def test_nav_links_by_role(portal, personas):
    staff_html = portal(personas["staff"]).get("/").content.decode()
    assert 'href="/my-activity/"' in staff_html and 'href="/dashboard/"' not in staff_html
    pe_html = portal(personas["engineer"]).get("/").content.decode()
    assert 'href="/dashboard/"' in pe_html and 'href="/admin/audit-log"' in pe_html


def test_a_person_is_shown_as_named_when_the_change_was_written(portal, personas):
    from maintenance import services

    engineer = personas["engineer"]
    engineer.full_name = "Priya Eriksen"
    engineer.save()
    obj = services.create_request(actor=personas["staff"], vessel="MV A", title="Winch")
    client = portal(engineer)
    client.post(f"/requests/{obj.code}/approve/", {"reason": "Budget confirmed"})
    approval = AuditTrail.objects.filter(entity_id=obj.code, action_type="approve").get()
    assert approval.user_display == "PE001 · Priya Eriksen"  # captured with the change
    type(engineer).objects.filter(pk=engineer.pk).update(full_name="Priya Renamed")
    html = client.get(f"/requests/{obj.code}/").content.decode()
    assert f"PE001 · Priya Eriksen approved maintenance request {obj.code}" in html
    # the raw id stays what the API and the exports give
    body = client.get(f"/api/realtime/audit-trail?entity_id={obj.code}").json()
    assert {r["user_id"] for r in body["records"]} == {"PE001", "ST001"}
    assert "user_display" not in body["records"][0]
