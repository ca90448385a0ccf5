"""Deactivating an account asks why, everywhere (issue 12.7, SPEC "Four eyes"): the portal asks for
a reason and a confirmation, the admin's change form and the API require the change reason, and the
reason is kept on the audit row of the change. Reactivating needs neither."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from accounts.models import User
from audit.models import AuditTrail

from .test_admin import change_data

REASON = "Left the company on 30 November"


@pytest.fixture
def admin_web(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def trail_of(user):
    return AuditTrail.objects.filter(entity_type="user", entity_id=user.user_id, action_type="update")


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"active": "false", "confirm": "on"}, "A reason is required to deactivate an account."),
        ({"active": "false", "reason": REASON}, "Tick the box to confirm the deactivation."),
        ({"active": "false", "reason": "   ", "confirm": "on"}, "A reason is required to deactivate an account."),
    ],
)
def test_portal_refuses_deactivation_without_reason_or_confirmation(admin_web, staff, data, expected):
    response = admin_web.post(f"/users/{staff.user_id}/active/", data)
    assert response.status_code == 302
    assert expected in messages_of(response)
    staff.refresh_from_db()
    assert staff.is_active is True
    assert not trail_of(staff).exists()


def test_portal_deactivation_with_reason_and_confirmation_is_recorded_with_its_reason(admin_web, staff):
    response = admin_web.post(f"/users/{staff.user_id}/active/", {"active": "false", "reason": REASON, "confirm": "on"})
    assert response.status_code == 302
    assert f"{staff.user_id} is now inactive." in messages_of(response)
    staff.refresh_from_db()
    assert staff.is_active is False
    row = trail_of(staff).get()
    assert (row.user_id, row.change_reason, row.changes["is_active"]) == ("ADM001", REASON, {"old": True, "new": False})


def test_portal_user_page_shows_the_confirmation_box(admin_web, staff):
    page = admin_web.get(f"/users/{staff.user_id}/").content.decode()
    assert "Yes, deactivate this account" in page
    assert "Required to deactivate" in page


def test_reactivation_needs_no_reason(admin_web, staff):
    User.objects.filter(pk=staff.pk).update(is_active=False)
    response = admin_web.post(f"/users/{staff.user_id}/active/", {"active": "true"})
    assert f"{staff.user_id} is now active." in messages_of(response)
    staff.refresh_from_db()
    assert staff.is_active is True


def test_admin_change_form_requires_a_reason_to_deactivate(admin_web, staff):
    url = f"/admin/accounts/user/{staff.pk}/change/"
    refused = admin_web.post(url, change_data(staff, is_active=""))
    assert refused.status_code == 200
    assert "A reason is required to deactivate an account" in refused.content.decode()
    staff.refresh_from_db()
    assert staff.is_active is True
    done = admin_web.post(url, change_data(staff, is_active="", change_reason=REASON))
    assert done.status_code == 302
    staff.refresh_from_db()
    assert staff.is_active is False
    assert trail_of(staff).get().change_reason == REASON


def test_api_requires_change_reason_to_deactivate(api, admin_user, staff):
    client = api(admin_user)
    refused = client.patch(f"/api/users/{staff.user_id}/", {"is_active": False}, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["fields"] == {"change_reason": (
        "A reason is required to deactivate an account; it is kept in the audit trail.")}
    staff.refresh_from_db()
    assert staff.is_active is True
    done = client.patch(f"/api/users/{staff.user_id}/", {"is_active": False, "change_reason": REASON}, format="json")
    assert done.status_code == 200 and done.json()["is_active"] is False
    assert trail_of(staff).get().change_reason == REASON
