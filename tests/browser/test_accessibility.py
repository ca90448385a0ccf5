"""axe-core over the pages people read (issue 13.4): the portal (home,
requests, a request, emergencies, my activity), the audit-log page, the
dashboard and the admin's audit changelists, as a port engineer and as an
administrator, with no serious or critical violation."""

import os

import pytest

from tests.browser import axe
from tests.browser.test_audit_ui import login

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PORTAL = ["/", "/requests/", "/requests/MR001/", "/emergencies/", "/my-activity/"]
AUDIT = ["/admin/audit-log", "/dashboard/"]
ADMIN = ["/admin/", "/admin/audit/audittrail/", "/admin/audit/activitylog/", "/admin/audit/systemevent/",
         "/admin/audit/updatehistory/"]


@pytest.fixture(autouse=True)
def _fast(settings, monkeypatch):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from audit.web import views

    monkeypatch.setattr(views, "STREAM_TIMEOUT", 5)  # short streams: nothing left open at teardown


@pytest.fixture
def data(make_user):
    from audit.models import SystemEvent
    from emergencies import services as emergencies
    from maintenance import services

    make_user("ADM001", role="admin", full_name="Ada Admin")
    engineer = make_user("PE001", role="port_engineer", full_name="Priya Eriksen")
    staff = make_user("ST001", full_name="Sam Staff")
    obj = services.create_request(actor=staff, vessel="MV Aurora", title="Hull inspection", category="hull")
    services.approve_request(request_obj=obj, actor=engineer, reason="Budget confirmed")
    emergencies.report_emergency(actor=staff, vessel="MV Aurora", emergency_type="fire", description="Galley fire",
                                 severity="critical")
    SystemEvent.objects.create(event_type="unhandled_error", severity="error", event_data="boom")
    return obj


def _check(page, base, paths):
    found = {}
    for path in paths:
        page.goto(f"{base}{path}")
        page.wait_for_load_state("load")
        problems = axe.violations(page)
        if problems:
            found[path] = problems
    return found


def test_portal_and_audit_pages_have_no_serious_violation(live_server, browser_page, data):
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 900})
    login(page, live_server.url, "PE001", "/my-activity/")
    found = _check(page, live_server.url, PORTAL + AUDIT)
    assert not found, "\n".join(f"{path}: {p}" for path, problems in found.items() for p in problems)


def test_admin_audit_pages_have_no_serious_violation(live_server, browser_page, data):
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 900})
    login(page, live_server.url, "ADM001", "/my-activity/")
    found = _check(page, live_server.url, ADMIN + AUDIT)
    assert not found, "\n".join(f"{path}: {p}" for path, problems in found.items() for p in problems)


def test_the_two_admin_findings_are_gone(live_server, browser_page, data):
    """link-in-text-block (breadcrumbs told apart by colour only) and
    label-title-only (the changelist search box), whatever their impact."""
    page = browser_page
    login(page, live_server.url, "ADM001", "/my-activity/")
    page.goto(f"{live_server.url}/admin/audit/audittrail/")
    rules = axe.violations(page, impacts=("minor", "moderate", "serious", "critical"))
    assert not [r for r in rules if r.startswith(("link-in-text-block", "label-title-only"))], rules
