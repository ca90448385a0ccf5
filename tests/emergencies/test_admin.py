"""The emergency admin reports, edits and moves emergencies through the services."""

import pytest
from django.test import Client

from core.signals import domain_event
from emergencies import services
from emergencies.models import Emergency

pytestmark = pytest.mark.django_db

FIELDS = {"vessel": "MV Admin", "emergency_type": "collision", "description": "Hit the pier"}


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def test_add_form_reports_through_the_service(admin_client, admin_user):
    seen = []
    domain_event.connect(lambda sender, **kw: seen.append(kw), dispatch_uid="t-emg-admin", weak=False)
    try:
        response = admin_client.post(
            "/admin/emergencies/emergency/add/",
            {**FIELDS, "severity": "critical", "location": "", "assigned_to": "", "change_reason": "Radio call"},
        )
    finally:
        domain_event.disconnect(dispatch_uid="t-emg-admin")
    assert response.status_code == 302, response.content.decode()[:2000]
    emergency = Emergency.objects.get()
    assert (emergency.code, emergency.reported_by, emergency.status) == ("EMG001", admin_user, "reported")
    assert [(e["event_type"], e["severity"]) for e in seen] == [("emergency_created", "critical")]


def test_change_form_edits_through_the_service(admin_client, staff, other_staff):
    emergency = services.report_emergency(actor=staff, **FIELDS)
    response = admin_client.post(
        f"/admin/emergencies/emergency/{emergency.pk}/change/",
        {**FIELDS, "severity": "low", "location": "Pier 2", "assigned_to": other_staff.pk, "change_reason": "Update"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    emergency.refresh_from_db()
    assert (emergency.severity, emergency.location, emergency.assigned_to) == ("low", "Pier 2", other_staff)


def test_actions_move_what_they_can_and_report_the_rest(admin_client, staff, engineer):
    fresh = services.report_emergency(actor=staff, **FIELDS)
    done = services.report_emergency(actor=staff, **FIELDS)
    services.acknowledge_emergency(emergency=done, actor=engineer)
    response = admin_client.post(
        "/admin/emergencies/emergency/",
        {"action": "acknowledge_selected", "_selected_action": [fresh.pk, done.pk]},
        follow=True,
    )
    html = response.content.decode()
    assert "Acknowledged: EMG001." in html and "Cannot acknowledge emergency EMG002" in html
    assert Emergency.objects.get(pk=fresh.pk).status == "acknowledged"
    for action, status in (("dispatch_selected", "dispatched"), ("resolve_selected", "resolved"),
                           ("close_selected", "closed")):
        admin_client.post("/admin/emergencies/emergency/", {"action": action, "_selected_action": [fresh.pk]})
        assert Emergency.objects.get(pk=fresh.pk).status == status


def test_changelist_filters_search_and_history(admin_client, staff):
    emergency = services.report_emergency(actor=staff, **FIELDS, severity="critical")
    assert "EMG001" in admin_client.get("/admin/emergencies/emergency/?severity__exact=critical").content.decode()
    assert "EMG001" not in admin_client.get("/admin/emergencies/emergency/?status__exact=closed").content.decode()
    assert "EMG001" in admin_client.get("/admin/emergencies/emergency/?q=pier").content.decode()
    assert admin_client.get(f"/admin/emergencies/emergency/{emergency.pk}/history/").status_code == 200
    assert admin_client.get(f"/admin/emergencies/emergency/{emergency.pk}/delete/").status_code == 403
