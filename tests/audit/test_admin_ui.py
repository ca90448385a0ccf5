"""The Django admin for the audit tables, beyond read-only: list filters,
search, before/after on the change view, the CSV export action, bounded
counts on the changelists, escaping of recorded values."""

from __future__ import annotations

import csv
import re

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from audit.models import ActivityLog, AuditTrail, UpdateHistory

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
CHANGELISTS = ["audittrail", "activitylog", "systemevent", "updatehistory"]


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def request_with_payload(personas):
    from maintenance import services

    obj = services.create_request(actor=personas["staff"], vessel="MV A", title="Pump", reason="new")
    services.update_request(request_obj=obj, actor=personas["engineer"], title=XSS, reason="=HYPERLINK(1)")
    return obj


def test_changelists_have_the_filters_and_search(portal, admin_user):
    client = portal(admin_user)
    html = client.get("/admin/audit/audittrail/").content.decode()
    for title in ("By action type", "By entity type", "By status", "By user"):
        assert title in html, title
    assert 'id="searchbar"' in html and "By time window" in html
    assert 'class="toplinks"' in html  # the date hierarchy, built by index probes (no DISTINCT)
    assert "By severity" in client.get("/admin/audit/systemevent/").content.decode()


@pytest.mark.parametrize("name", CHANGELISTS)
def test_changelists_build_no_filter_choices_from_the_table(portal, admin_user, request_with_payload, name):
    """No DISTINCT over an audit table (Django's date hierarchy, method,
    status_code, event_type choices): each would be a full scan on every
    page view."""
    with CaptureQueriesContext(connection) as queries:
        html = portal(admin_user).get(f"/admin/audit/{name}/").content.decode()
    assert "By time window" in html and "Last 24 hours" in html
    assert not [q["sql"] for q in queries.captured_queries if "DISTINCT" in q["sql"].upper()]
    assert "By method" not in html and "By status code" not in html and "By event type" not in html


def test_time_window_filter_selects_by_timestamp(portal, admin_user):
    from datetime import timedelta

    from django.utils import timezone

    ActivityLog.objects.bulk_create([ActivityLog(user_id="ST001", activity="recent"),
                                     ActivityLog(user_id="ST001", activity="old")])
    ActivityLog.objects.filter(activity="old").update(timestamp=timezone.now() - timedelta(days=3))
    client = portal(admin_user)
    rows = lambda url: client.get(url).content.decode().count('class="field-entity"')  # noqa: E731
    html = client.get("/admin/audit/activitylog/?user_id=ST001&window=24h").content.decode()
    assert "recent" in html and ">old<" not in html
    assert ActivityLog.objects.filter(user_id="ST001").count() >= 2
    assert ">old<" in client.get("/admin/audit/activitylog/?user_id=ST001&window=7d").content.decode()
    AuditTrail.objects.filter(pk=AuditTrail.objects.order_by("id").values("id")[:1]).update(
        timestamp=timezone.now() - timedelta(days=40))
    assert rows("/admin/audit/audittrail/?window=30d") == rows("/admin/audit/audittrail/") - 1 >= 0


def test_filters_and_search_select_rows(portal, admin_user, request_with_payload):
    client = portal(admin_user)
    code = request_with_payload.code
    html = client.get("/admin/audit/audittrail/?entity_type=maintenance_request&user_id=PE001&action_type=update").content.decode()
    assert html.count('class="action-checkbox"') == 1
    html = client.get(f"/admin/audit/audittrail/?q={code}").content.decode()
    assert html.count('class="action-checkbox"') == 2
    html = client.get("/admin/audit/audittrail/?user_id=nobody").content.decode()
    assert html.count('class="action-checkbox"') == 0
    # search is exact and case-sensitive (an index serves it): no substring, no other case
    assert client.get(f"/admin/audit/audittrail/?q={code[:-1]}").content.decode().count('class="action-checkbox"') == 0
    assert client.get(f"/admin/audit/audittrail/?q={code.lower()}").content.decode().count('class="action-checkbox"') == 0
    html = client.get("/admin/audit/audittrail/?q=PE001").content.decode()  # PE001's changes, and PE001's account
    expected = AuditTrail.objects.filter(Q(user_id="PE001") | Q(entity_type="user", entity_id="PE001")).count()
    assert html.count('class="action-checkbox"') == expected > AuditTrail.objects.filter(user_id="PE001").count() > 0
    html = client.get(f"/admin/audit/updatehistory/?q={code}").content.decode()
    assert html.count('class="field-record_id"') == UpdateHistory.objects.filter(record_id=code).count() > 0


def test_change_view_shows_before_and_after_escaped(portal, admin_user, request_with_payload):
    row = AuditTrail.objects.get(entity_id=request_with_payload.code, action_type="update")
    html = portal(admin_user).get(f"/admin/audit/audittrail/{row.pk}/change/").content.decode()
    assert re.search(r'<tr class="changed"><th scope="row">title</th><td class="before">Pump</td>'
                     rf'<td class="after">{re.escape(XSS_ESCAPED)}</td></tr>', html)
    assert XSS not in html
    assert "audit/audit-admin.css" in html
    field = UpdateHistory.objects.get(audit=row, field_name="title")
    assert f'href="/admin/audit/updatehistory/{field.pk}/change/"' in html
    html = portal(admin_user).get(f"/admin/audit/updatehistory/{field.pk}/change/").content.decode()
    assert f'href="/admin/audit/audittrail/{row.pk}/change/"' in html and XSS not in html and XSS_ESCAPED in html


def test_activity_change_view_escapes(portal, admin_user):
    row = ActivityLog.objects.create(user_id="ST001", activity=XSS, details=XSS)
    html = portal(admin_user).get(f"/admin/audit/activitylog/{row.pk}/change/").content.decode()
    assert XSS not in html and XSS_ESCAPED in html


def test_change_view_cannot_save(portal, admin_user, request_with_payload):
    row = AuditTrail.objects.filter(entity_id=request_with_payload.code).first()
    client = portal(admin_user)
    html = client.get(f"/admin/audit/audittrail/{row.pk}/change/").content.decode()
    assert 'name="_save"' not in html and "<textarea" not in html
    response = client.post(f"/admin/audit/audittrail/{row.pk}/change/", {"user_id": "X"})
    assert response.status_code == 403
    assert AuditTrail.objects.get(pk=row.pk).user_id == row.user_id


def test_export_action_gives_the_same_safe_csv_and_is_recorded(portal, admin_user, personas, request_with_payload):
    client = portal(admin_user)
    html = client.get("/admin/audit/audittrail/").content.decode()
    assert 'value="export_selected_csv"' in html and 'value="delete_selected"' not in html
    rows = list(AuditTrail.objects.filter(entity_id=request_with_payload.code).order_by("-timestamp", "-id"))
    response = client.post("/admin/audit/audittrail/", {
        "action": "export_selected_csv", "_selected_action": [r.pk for r in rows], "index": 0,
    })
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    lines = body.split("\r\n")
    # headers are labels, and the actor is a person named as captured (issue 13.4)
    assert lines[0].startswith('"ID","Timestamp","User","Action type","Entity type","Entity ID","Old value"')
    people = {row[2] for row in list(csv.reader(body.splitlines()))[1:]}
    assert people == {f"{p.user_id} ({p.full_name})" for p in (personas["staff"], personas["engineer"])}
    assert len([line for line in lines if line]) == 1 + len(rows)
    assert "\"'=HYPERLINK(1)\"" in body  # formula neutralised, as in the API export
    assert ActivityLog.objects.filter(user_id="ADM001", activity="Exported audit trail").count() == 1


@pytest.mark.parametrize("name", CHANGELISTS)
def test_changelists_never_count_a_whole_table(portal, admin_user, request_with_payload, name):
    client = portal(admin_user)
    table = {"audittrail": "audit_trail", "activitylog": "activity_logs", "systemevent": "system_events",
             "updatehistory": "update_history"}[name]
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/admin/audit/{name}/")
    assert response.status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper() and table in q["sql"]]
    assert counts, "the paginator counted (boundedly)"
    assert all("LIMIT 10000" in sql for sql in counts), counts


def test_capped_paginator_stops_at_the_cap(settings, monkeypatch, admin_user, portal):
    from audit.admin import base as audit_admin

    monkeypatch.setattr(audit_admin, "COUNT_CAP", 3)
    ActivityLog.objects.bulk_create([ActivityLog(user_id="ST001", activity=f"a{i}") for i in range(10)])
    paginator = audit_admin.CappedCountPaginator(ActivityLog.objects.order_by("-id"), 2)
    assert paginator.count == 3 and paginator.num_pages == 2


def test_date_hierarchy_drills_down_by_index_probes_without_distinct(portal, admin_user):
    import datetime as dt

    ActivityLog.objects.bulk_create([ActivityLog(user_id="ST001", activity=a) for a in ("y2024", "y2025")])
    ActivityLog.objects.filter(activity="y2024").update(timestamp=dt.datetime(2024, 3, 5, 10, tzinfo=dt.UTC))
    ActivityLog.objects.filter(activity="y2025").update(timestamp=dt.datetime(2025, 7, 9, 10, tzinfo=dt.UTC))
    client = portal(admin_user)
    with CaptureQueriesContext(connection) as queries:
        years = client.get("/admin/audit/activitylog/").content.decode()
        months = client.get("/admin/audit/activitylog/?timestamp__year=2024").content.decode()
        days = client.get("/admin/audit/activitylog/?timestamp__year=2024&timestamp__month=3").content.decode()
    assert not [q["sql"] for q in queries.captured_queries if "DISTINCT" in q["sql"].upper()]
    toplinks = lambda html: re.search(r'class="toplinks".*?</nav>', html, re.S).group(0)  # noqa: E731
    assert "timestamp__year=2024" in toplinks(years) and "timestamp__year=2025" in toplinks(years)
    assert "timestamp__year=2023" not in toplinks(years)
    assert "March 2024" in toplinks(months) and "April 2024" not in toplinks(months)
    assert "March 5" in toplinks(days) and "March 6" not in toplinks(days)
    assert "y2024" in days and "y2025" not in days
