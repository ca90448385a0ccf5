"""A NUL byte in a lookup value is a clear 4xx, never a query PostgreSQL refuses
with a DataError (a 500) (issue 11.5)."""

import pytest

from audit.models import SystemEvent

NUL_ID = "a\x00b"


def _no_unhandled_error():
    assert not SystemEvent.objects.filter(event_type="unhandled_error").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/requests/%00/", "/users/%00/", "/emergencies/%00/", "/inventory/%00/",
                                  "/requests/MR%0001/edit/", "/users/PE%00/activity/", "/emergencies/E%001/edit/"])
def test_nul_in_a_portal_path_is_a_404(portal, admin_user, path):
    response = portal(admin_user).get(path)
    assert response.status_code == 404
    _no_unhandled_error()


@pytest.fixture
def emergency(admin_user):
    from emergencies import services

    return services.report_emergency(actor=admin_user, vessel="MV Nul", emergency_type="fire",
                                     severity="high", location="Berth 4", description="smoke")


def _assert_nul_refused(response):
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["fields"]["assigned_to"] == "A user id must not contain NUL characters."
    _no_unhandled_error()


@pytest.mark.django_db
def test_nul_in_assigned_to_on_request_create_and_assign(api, admin_user, make_request):
    client = api(admin_user)
    created = client.post("/api/maintenance-requests/", {"vessel": "MV Nul", "title": "Pump", "description": "d",
                                                         "assigned_to": NUL_ID}, format="json")
    _assert_nul_refused(created)
    obj = make_request(admin_user)
    assigned = client.post(f"/api/maintenance-requests/{obj.code}/assign/", {"assigned_to": NUL_ID,
                                                                             "change_reason": "r"}, format="json")
    _assert_nul_refused(assigned)


@pytest.mark.django_db
def test_nul_in_assigned_to_on_emergency_patch_and_assign(api, admin_user, emergency):
    client = api(admin_user)
    _assert_nul_refused(client.patch(f"/api/emergencies/{emergency.code}/", {"assigned_to": NUL_ID,
                                                                              "change_reason": "r"}, format="json"))
    _assert_nul_refused(client.post(f"/api/emergencies/{emergency.code}/assign/", {"assigned_to": NUL_ID,
                                                                                   "change_reason": "r"}, format="json"))
