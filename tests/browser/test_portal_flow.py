"""End to end through a real browser: log in through the portal, create a
maintenance request, see it with its MR code in the list."""

import os
import re

import pytest

from tests.conftest import PASSWORD

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_logs_in_and_creates_a_request(live_server, browser_page, artifacts, make_user, settings, tmp_path):
    from maintenance.models import MaintenanceRequest

    assert live_server.url.startswith("http://127.0.0.1:")
    make_user("ST001", role="staff", full_name="Sam Stoker")
    page = browser_page

    page.goto(f"{live_server.url}/requests/")
    assert "/login/" in page.url  # anonymous users are sent to the login page
    page.fill("input[name=username]", "ST001")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/requests/$"))
    assert "ST001" in page.inner_text("header")

    page.click("text=New request")
    page.wait_for_url(re.compile(r"/requests/new/$"))
    page.fill("input[name=title]", "Replace the anchor winch brake")
    page.fill("input[name=vessel]", "MV Playwright")
    page.select_option("select[name=category]", "deck")
    page.select_option("select[name=priority]", "high")
    page.fill("textarea[name=description]", "Brake band worn <b>badly</b>")
    page.fill("textarea[name=reason]", "Found during the weekly check")
    page.click("button:has-text('Create request')")
    page.wait_for_url(re.compile(r"/requests/MR\d{3,}/$"))

    obj = MaintenanceRequest.objects.get(title="Replace the anchor winch brake")
    assert page.url.endswith(f"/requests/{obj.code}/")
    assert f"Maintenance request {obj.code} was created" in page.inner_text(".messages")
    assert "Brake band worn <b>badly</b>" in page.inner_text("main")  # shown as text, not markup

    page.click("nav.main-nav >> text=Requests")
    page.wait_for_url(re.compile(r"/requests/$"))
    row = page.locator("tbody tr", has_text=obj.code)
    assert row.count() == 1
    assert "Replace the anchor winch brake" in row.inner_text()
    assert "Pending" in row.inner_text()
    page.screenshot(path=str(artifacts / "portal_request_list.png"), full_page=True)
