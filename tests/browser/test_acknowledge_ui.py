"""Acknowledging from the dashboard in Chromium: the event leaves the open list without a reload,
and an acknowledgement by another session reaches the open dashboard through the stream."""

import os

import pytest

from tests.browser.test_audit_ui import _fast, login, watch_dialogs  # noqa: F401 - _fast is an autouse fixture

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_an_engineer_acknowledges_from_the_dashboard_and_sees_another_acknowledgement_live(
        live_server, browser_page, artifacts, make_user, api):
    """PostgreSQL only, like the live dashboard test (the SQLite live server shares one connection)."""
    from playwright.sync_api import expect

    from audit.models import SystemEvent

    make_user("PE001", role="port_engineer")
    admin = make_user("ADM001", role="admin")
    fire = SystemEvent.objects.create(event_type="emergency_created", severity="critical", entity_type="emergency",
                                      entity_id="EMG001", event_data='{"vessel": "MV Aurora"}')
    flood = SystemEvent.objects.create(event_type="emergency_created", severity="critical", entity_type="emergency",
                                       entity_id="EMG002", event_data='{"vessel": "MV Borealis"}')
    page = browser_page
    dialogs = watch_dialogs(page)
    login(page, live_server.url, "PE001", "/dashboard/")
    page.evaluate("window.__marker = 'same page'")
    assert page.locator("#critical-events li[data-event]").count() == 2
    assert "open for" in page.inner_text("#critical-events")

    item = page.locator(f'#critical-events li[data-event="{fire.pk}"]')
    item.locator("input[name=note]").fill("Fire team on board")
    item.locator("button", has_text="Acknowledge").click()
    # locator waits: the page's Content-Security-Policy refuses the eval behind wait_for_function's strings
    expect(page.locator(f'#critical-events li[data-event="{fire.pk}"]')).to_have_count(0, timeout=15_000)
    fire.refresh_from_db()
    assert (fire.acknowledged_by, fire.acknowledgement_note) == ("PE001", "Fire team on board")

    # another session acknowledges the other one: the open dashboard drops it without a reload
    assert api(admin).post(f"/api/realtime/system-events/{flood.pk}/acknowledge", {"note": "Pumps running"},
                           format="json").status_code == 200
    expect(page.locator("#critical-events li[data-event]")).to_have_count(0, timeout=15_000)
    assert "No open critical event" in page.inner_text("#critical-events")
    assert page.evaluate("window.__marker") == "same page"
    page.screenshot(path=str(artifacts / "acknowledge_dashboard.png"), full_page=True)
    assert dialogs == []
