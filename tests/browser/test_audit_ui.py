"""The audit pages in Chromium: a port engineer filters and pages the
audit-log page; the dashboard updates without a reload when another session
makes a change; recorded script payloads render as text; staff are refused.
Screenshots go to test-artifacts/."""

import os
import re

import pytest

from tests.conftest import PASSWORD

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _fast(settings, monkeypatch):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from audit.web import views

    monkeypatch.setattr(views, "POLL_SECONDS", 2)  # the live server runs in this process
    monkeypatch.setattr(views, "STREAM_TIMEOUT", 5)  # short streams: nothing left open at teardown


def login(page, base, user_id, next_url):
    page.goto(f"{base}{next_url}")
    assert "/login/" in page.url  # anonymous: sent to the login page
    page.fill("input[name=username]", user_id)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(next_url) + "$"))


def watch_dialogs(page) -> list:
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return dialogs


def test_engineer_filters_and_pages_the_audit_log(live_server, browser_page, artifacts, make_user):
    from audit.models import AuditTrail
    from maintenance import services

    engineer = make_user("PE001", role="port_engineer")
    staff = make_user("ST001")
    services.create_request(actor=staff, vessel="MV Payload", title=XSS, reason=XSS)
    AuditTrail.objects.bulk_create([
        AuditTrail(user_id="ST001", action_type="update", entity_type="maintenance_request", entity_id=f"MR{i:03d}",
                   changes={"priority": {"old": "low", "new": "high"}}, ip_address="10.0.0.7")
        for i in range(100, 160)
    ])
    del engineer
    page = browser_page
    dialogs = watch_dialogs(page)
    login(page, live_server.url, "PE001", "/admin/audit-log")
    assert page.locator("#header").count() == 1  # the admin's look
    page.screenshot(path=str(artifacts / "audit_log.png"), full_page=False)

    page.fill("input[name=user_id]", "ST001")
    page.select_option("select[name=action_type]", "update")
    page.click("input[type=submit][value=Filter]")
    page.wait_for_url(re.compile(r"user_id=ST001"))
    assert page.locator("tr.audit-row").count() == 50
    assert "Page 1" in page.inner_text(".audit-pages")
    assert page.locator("tr.audit-row", has_text="Create").count() == 0  # only updates
    export = page.get_attribute("a.audit-export", "href")
    assert "user_id=ST001" in export and "action_type=update" in export

    page.click("a.audit-next")
    page.wait_for_url(re.compile(r"page=2"))
    assert "Page 2" in page.inner_text(".audit-pages")
    assert page.locator("tr.audit-row").count() == 10  # 60 updates by ST001: 50 on page 1, 10 here
    assert page.locator("a.audit-next").count() == 0
    assert "user_id=ST001" in page.get_attribute("a.audit-prev", "href")

    page.goto(f"{live_server.url}/admin/audit-log?action_type=create&user_id=ST001")
    row = page.locator("tr.audit-row").first
    assert XSS in row.inner_text()  # shown as text
    assert page.locator("tr.audit-row tr.changed").count() >= 3
    page.goto(f"{live_server.url}/admin/audit-log?hours=abc")
    assert "hours must be a number" in page.inner_text(".audit-errors")
    assert dialogs == []


@pytest.mark.postgres  # see the reason below
def test_dashboard_updates_live_when_another_session_changes_something(live_server, browser_page, artifacts,
                                                                       make_user, api):
    """Runs on PostgreSQL only: on SQLite, pytest-django's live server shares
    the test's one in-memory connection between its threads, and a held-open
    event stream polling on it can deadlock the other requests (seen once in
    CI: a session lookup waiting forever). Production SQLite (a file, one
    connection per thread) does not share connections."""
    from audit.models import ActivityLog

    make_user("PE001", role="port_engineer")
    staff = make_user("ST001")
    page = browser_page
    dialogs = watch_dialogs(page)
    login(page, live_server.url, "PE001", "/dashboard/")
    assert page.inner_text('[data-metric="pending_maintenance"]') == "0"
    page.evaluate("window.__marker = 'same page'")

    # another session: the staff member's API client creates a request
    response = api(staff).post("/api/maintenance-requests/", {"vessel": "MV Live", "title": "Leaking gland"},
                               format="json")
    assert response.status_code == 201
    ActivityLog.objects.create(user_id="ST001", activity=XSS, details=XSS)

    page.wait_for_function(
        "document.querySelector('[data-metric=\"pending_maintenance\"]').textContent === '1'", timeout=15_000)
    page.wait_for_function(
        "document.getElementById('latest-activities').textContent.includes('<script>alert(1)</script>')",
        timeout=15_000)
    assert page.evaluate("window.__marker") == "same page"  # no reload
    assert page.get_attribute("#live-status", "data-mode") == "stream"  # pushed by /api/realtime/stream
    assert page.locator("#latest-activities script").count() == 0
    assert int(page.inner_text('[data-metric="recent_activities_1h"]')) >= 2
    page.screenshot(path=str(artifacts / "audit_dashboard.png"), full_page=True)
    assert dialogs == []


def test_staff_are_refused_the_manager_pages(live_server, browser_page, make_user):
    make_user("ST001")
    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "ST001")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))
    for url in ("/admin/audit-log", "/dashboard/"):
        response = page.goto(f"{live_server.url}{url}")
        assert response.status == 403
        assert "You are not allowed" in page.inner_text("main")
    response = page.goto(f"{live_server.url}/my-activity/")
    assert response.status == 200 and "Login" in page.inner_text("table")
