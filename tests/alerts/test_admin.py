"""The alerts admin: rules edited by administrators (validated, captured), deliveries read-only and
shown on the event's page."""

import pytest

from alerts.models import AlertRule, Delivery
from audit.models import AuditTrail, SystemEvent
from audit.services import log_system_event

pytestmark = [pytest.mark.django_db, pytest.mark.tasks]

FORM = {"name": "Pollution: the harbour master", "description": "", "enabled": "on", "trigger": "event",
        "event_type": "emergency_created", "severity": "", "entity_type": "emergency", "threshold": "1",
        "window_minutes": "0", "group_by": "", "recipient_users": "pe001", "recipient_emails": "hm@example.com",
        "notify_urls": ""}


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_an_admin_adds_a_rule_and_the_change_is_captured(admin_client, engineer):
    response = admin_client.post("/admin/alerts/alertrule/add/", {**FORM, "recipient_roles": ["admin"]})
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = AlertRule.objects.get(name=FORM["name"])
    assert (rule.recipient_users, rule.recipient_roles, rule.email_list()) == (["PE001"], ["admin"],
                                                                               ["hm@example.com"])
    trail = AuditTrail.objects.get(entity_type="alert_rule", entity_id=str(rule.pk))
    assert (trail.action_type, trail.user_id) == ("create", "ADM001")


@pytest.mark.parametrize("changes, message", [
    ({"recipient_emails": "not-an-address"}, "Not an e-mail address: not-an-address"),
    ({"notify_urls": "nothing://at/all"}, "Line 1 is not a notification URL that Apprise knows"),
    ({"recipient_users": "NOBODY9"}, "No such user: NOBODY9."),
    ({"recipient_users": "", "recipient_emails": ""}, "Name at least one recipient"),
    ({"threshold": "3"}, "A threshold above 1 needs a window (minutes)."),
    ({"trigger": "failed_logins", "window_minutes": "10"}, "A failed-login rule counts per user or per IP address."),
])
def test_a_bad_rule_is_refused_with_a_sentence(admin_client, engineer, changes, message):
    response = admin_client.post("/admin/alerts/alertrule/add/", {**FORM, **changes})
    assert response.status_code == 200 and message in response.content.decode()
    assert not AlertRule.objects.filter(name=FORM["name"]).exists()


def test_deliveries_are_listed_and_shown_on_the_event_page(admin_client, django_capture_on_commit_callbacks):
    from core.background import run_pending

    with django_capture_on_commit_callbacks(execute=True):
        event = log_system_event("account_locked", "user", "ST009", {"user_id": "ST009"}, "warning")
    with django_capture_on_commit_callbacks(execute=True):
        run_pending()
    with django_capture_on_commit_callbacks(execute=True):
        run_pending()
    delivery = Delivery.objects.get(event=event)
    assert delivery.outcome == "sent"
    listing = admin_client.get("/admin/alerts/delivery/").content.decode()
    assert "adm001@example.com" in listing and "Sent" in listing and f"#{event.pk} account_locked" in listing
    page = admin_client.get(f"/admin/audit/systemevent/{event.pk}/change/").content.decode()
    assert "deliveries (who was notified)" in page.lower() and "adm001@example.com" in page
    assert admin_client.get(f"/admin/alerts/delivery/{delivery.pk}/delete/").status_code == 403
    assert SystemEvent.objects.filter(pk=event.pk, processed=True).exists()


def test_only_admins_see_rules_and_deliveries(client, engineer, staff):
    for user in (engineer, staff):
        client.force_login(user)
        for url in ("/admin/alerts/alertrule/", "/admin/alerts/delivery/"):
            assert client.get(url).status_code in (302, 403)
