"""The admin's audit changelists in Chromium at 1366 px (issue 13.4): the IP
and the old and new values are on screen without scrolling sideways.
Screenshots go to test-artifacts/."""

import os

import pytest

from tests.browser.test_audit_ui import login

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH = 1366
IP = "203.0.113.77"


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def changes(make_user):
    from audit.context import audit_context
    from maintenance import services

    make_user("ADM001", role="admin")
    engineer = make_user("PE001", role="port_engineer")
    staff = make_user("ST001")
    obj = services.create_request(actor=staff, vessel="MV Aurora", title="Hull inspection before dry dock",
                                  description="Inspect the hull plating at frames 20 to 40 for corrosion and pitting.")
    with audit_context(ip_address=IP):
        services.update_request(request_obj=obj, actor=engineer, title="Hull inspection and repaint before dry dock",
                                priority="high", category="hull", reason="Survey due next month")
    return obj


@pytest.mark.parametrize("path, columns", [
    ("/admin/audit/audittrail/?action_type__exact=update", ["field-change_summary", "field-ip_address"]),
    ("/admin/audit/updatehistory/?q=MR001", ["field-old_text", "field-new_text", "field-trail_ip"]),
])
def test_ip_and_values_are_on_screen_at_1366(live_server, browser_page, artifacts, changes, path, columns):
    page = browser_page
    page.set_viewport_size({"width": WIDTH, "height": 900})
    login(page, live_server.url, "ADM001", "/my-activity/")  # the portal's login, then the admin
    page.goto(f"{live_server.url}{path}")
    results = page.locator("#changelist .results").bounding_box()
    assert results["x"] + results["width"] <= WIDTH
    for column in columns:
        box = page.locator(f"#result_list td.{column}").first.bounding_box()
        # inside the visible part of the list, not scrolled out of its box
        assert box is not None and results["x"] <= box["x"] and box["x"] + box["width"] <= results["x"] + results["width"], (column, box, results)
    clipped = page.evaluate("(() => { const r = document.querySelector('#changelist .results');"
                            " return r.scrollWidth - r.clientWidth; })()")
    assert clipped <= 0, f"the list scrolls {clipped} px sideways"
    assert page.locator(f"#result_list td:has-text('{IP}')").count() >= 1
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{overflow} px of sideways scroll"
    name = path.split("/")[3]
    page.screenshot(path=str(artifacts / f"admin-{name}-1366.png"), full_page=False)
