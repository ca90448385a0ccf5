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


def test_engineer_reads_filters_and_pages_the_audit_log(live_server, browser_page, artifacts, make_user):
    from audit.models import AuditTrail
    from maintenance import services

    make_user("PE001", role="port_engineer", full_name="Priya Eriksen")
    staff = make_user("ST001", full_name="Sam Tan")
    services.create_request(actor=staff, vessel="MV Payload", title=XSS, reason=XSS)
    AuditTrail.objects.bulk_create([
        AuditTrail(user_id="ST001", action_type="update", entity_type="maintenance_request", entity_id=f"MR{i:03d}",
                   changes={"priority": {"old": "low", "new": "high"}}, ip_address="10.0.0.7")
        for i in range(100, 160)
    ])
    total = AuditTrail.objects.count()  # the 60 updates, the request's and both users' creates
    page = browser_page
    dialogs = watch_dialogs(page)
    login(page, live_server.url, "PE001", "/admin/audit-log")
    assert page.locator("#header").count() == 0 and page.locator("header.site-header").count() == 1  # portal look
    # presets and the user picker (a datalist matching ids and names)
    assert page.locator("a.preset").all_inner_texts() == ["1 h", "24 h", "7 d", "30 d"]
    assert page.get_attribute("a.preset[aria-current=true]", "href") == "?hours=24"
    assert page.locator("#audit-users option[value=ST001]").get_attribute("label") is None
    assert page.locator("#audit-users option[value=ST001]").inner_text() == "ST001 · Sam Tan"
    assert f"1–50 of {total}" in page.inner_text("#audit-summary")

    # one line per record: a sentence, its time; the fields folded
    first = page.locator("li.audit-row").first
    assert first.locator(".change-line").count() == 1
    line = first.locator(".change-line")
    assert line.evaluate("e => e.getClientRects().length") == 1
    sentence = first.locator(".change-sentence").inner_text()
    assert re.fullmatch(r"ST001 · Sam Tan updated maintenance request MR159: Priority", sentence), sentence
    assert first.locator("details").get_attribute("open") is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", first.locator("time").inner_text())
    assert first.locator("time").get_attribute("title").endswith(" UTC")

    # the older link is a keyset cursor and shows older records
    page.click("a.audit-older")
    page.wait_for_url(re.compile(r"before="))
    assert f"51–{total} of {total}" in page.inner_text("#audit-summary")
    codes = [re.search(r"MR\d+", t).group(0) for t in page.locator(".change-sentence").all_inner_texts()[:10]]
    assert codes == [f"MR{i:03d}" for i in range(109, 99, -1)]
    create = page.locator("li.audit-row", has_text="created maintenance request").first
    assert XSS in create.inner_text()  # recorded text shown as text
    summary = create.locator("details summary")
    assert re.fullmatch(r"Created with \d+ fields", summary.inner_text())
    assert not create.locator("table.change-table").is_visible()  # collapsed until opened
    summary.click()
    assert create.locator("table.change-table").is_visible()
    assert "Priya" not in create.inner_text() and "Sam Tan" in create.inner_text()
    assert page.locator("a.audit-newer").count() == 1 and page.locator("a.audit-older").count() == 0

    # filters through the form, kept in the URL and in the export link
    page.goto(f"{live_server.url}/admin/audit-log")
    page.fill("input[name=user_id]", "ST001")
    page.select_option("select[name=action_type]", "update")
    page.click("button[type=submit]:has-text('Filter')")
    page.wait_for_url(re.compile(r"user_id=ST001"))
    assert page.locator("li.audit-row").count() == 50 and "of 60" in page.inner_text("#audit-summary")
    export = page.get_attribute("a.audit-export", "href")
    assert "user_id=ST001" in export and "action_type=update" in export
    assert "user_id=ST001" in page.get_attribute("a.preset >> nth=2", "href")

    # a phone: each record a card, nothing scrolls sideways
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/admin/audit-log")
    page.locator("li.audit-row details").first.evaluate("d => d.open = true")
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(artifacts / "audit_log_phone.png"), full_page=False)

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
    from playwright.sync_api import expect

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

    # locator waits: the page's Content-Security-Policy refuses the eval behind wait_for_function's strings
    expect(page.locator('[data-metric="pending_maintenance"]')).to_have_text("1", timeout=15_000)
    expect(page.locator("#latest-activities")).to_contain_text("<script>alert(1)</script>", timeout=15_000)
    assert page.evaluate("window.__marker") == "same page"  # no reload
    assert page.get_attribute("#live-status", "data-mode") == "stream"  # pushed by /api/realtime/stream
    assert page.locator("#latest-activities script").count() == 0
    assert int(page.inner_text('[data-metric="recent_activities_1h"]')) >= 2
    page.screenshot(path=str(artifacts / "audit_dashboard.png"), full_page=True)
    assert dialogs == []


@pytest.mark.postgres  # the held-open event stream needs its own connections (see the test above)
def test_an_idle_dashboard_left_open_30_seconds_adds_no_activity_row(live_server, browser_page, make_user):
    """SPEC: reads are logged once per look. The page is opened (one row), then left alone for 30 s
    while its script polls every 2 s and its stream reconnects every 5 s: no row is added."""
    from playwright.sync_api import expect

    from audit.models import ActivityLog

    make_user("PE001", role="port_engineer")
    page = browser_page
    login(page, live_server.url, "PE001", "/dashboard/")
    expect(page.locator("#live-status")).to_have_attribute("data-mode", "stream", timeout=15_000)
    page.wait_for_timeout(1_000)  # the refresh that the opening's own row announced
    before = ActivityLog.objects.count()
    opened = ActivityLog.objects.filter(user_id="PE001", activity="Viewed audit dashboard").count()
    polls = page.evaluate("""() => new Promise(done => {
        let n = 0; const t0 = Date.now();
        const tick = () => window.auditDashboard.poll().then(() => { n++; Date.now() - t0 < 30000 ? setTimeout(tick, 2000) : done(n); });
        tick();
    })""")
    assert polls >= 10
    assert ActivityLog.objects.count() == before
    assert opened == 1
    assert not ActivityLog.objects.filter(activity="Opened audit stream").exists()  # its look's stream


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
