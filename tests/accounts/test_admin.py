"""The user admin works through accounts.services."""

import pytest
from django.test import Client

from accounts import services
from accounts.models import User

NEW_PASSWORD = "Quay-Side-Lantern-77"

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def pending(user_id):
    return services.register_user(user_id=user_id, password=NEW_PASSWORD, full_name=f"{user_id} New", email=f"{user_id.lower()}@example.com")


def test_changelist_shows_the_columns_and_filters(admin_client, personas):
    pending("ST080")
    response = admin_client.get("/admin/accounts/user/?approval_status__exact=pending")
    assert response.status_code == 200
    html = response.content.decode()
    assert "ST080" in html and "ST001 Person" not in html
    for column in ("column-user_id", "column-full_name", "column-role", "column-approval_status", "column-is_active",
                   "column-date_joined"):
        assert column in html
    assert admin_client.get("/admin/accounts/user/?q=PE001").content.decode().count("PE001 Person") >= 1
    # the columns' headings in words (the look-alike column was headed "Password")
    header = html.split('class="column-lookalike"')[1].split("</th>")[0]
    assert "Look-alike" in header and "Password" not in header


def test_approve_action_approves_pending_and_skips_the_rest(admin_client, admin_user, staff):
    a, b = pending("ST081"), pending("ST082")
    response = admin_client.post(
        "/admin/accounts/user/",
        {"action": "approve_selected", "_selected_action": [a.pk, staff.pk]},
        follow=True,
    )
    assert response.status_code == 200
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.approval_status == "approved" and a.approved_by == admin_user
    assert b.approval_status == "pending"
    assert "Skipped (not pending): ST001" in response.content.decode()
    # the skipped account's refused approval is recorded as a failed attempt (an illegal transition)
    from audit.models import AuditTrail

    failed = AuditTrail.objects.get(entity_id="ST001", status="failed")
    assert (failed.action_type, failed.user_id) == ("approve", "ADM001")
    assert "only pending accounts can be approved" in failed.error_message


def test_reject_action(admin_client):
    a = pending("ST083")
    admin_client.post("/admin/accounts/user/", {"action": "reject_selected", "_selected_action": [a.pk]})
    assert User.objects.get(pk=a.pk).approval_status == "rejected"


def test_engineers_and_staff_have_no_admin(engineer, staff):
    for user in (engineer, staff):
        client = Client()
        client.force_login(user)
        assert client.get("/admin/accounts/user/").status_code == 302  # to the admin login


def test_add_form_creates_an_approved_account_with_a_hashed_password(admin_client, admin_user):
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "user_id": "pe009",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "full_name": "Nine Engineer",
            "email": "nine@example.com",
            "phone": "",
            "department": "",
            "role": "port_engineer",
            "change_reason": "New hire",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(user_id="PE009")
    assert user.role == "port_engineer" and user.approval_status == "approved" and user.approved_by == admin_user
    assert user.check_password(NEW_PASSWORD) and user.password != NEW_PASSWORD


def test_add_form_shows_validation_errors(admin_client, staff):
    base = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "full_name": "X", "email": "", "phone": "",
            "department": "", "role": "staff"}
    duplicate = admin_client.post("/admin/accounts/user/add/", {**base, "user_id": "st001"})
    assert duplicate.status_code == 200 and "already exists" in duplicate.content.decode()
    weak = admin_client.post("/admin/accounts/user/add/", {**base, "user_id": "ST090", "password1": "password",
                                                            "password2": "password"})
    assert weak.status_code == 200 and "too common" in weak.content.decode()
    assert not User.objects.filter(user_id="ST090").exists()
    differ = admin_client.post("/admin/accounts/user/add/", {**base, "user_id": "ST091", "password2": "Other-Pass-2026"})
    assert differ.status_code == 200 and "The two passwords differ." in differ.content.decode()  # as in the portal
    assert not User.objects.filter(user_id="ST091").exists()


def change_data(user, **changes):
    data = {
        "full_name": user.full_name,
        "email": user.email,
        "phone": user.phone,
        "department": user.department,
        "role": user.role,
        "is_active": "on" if user.is_active else "",
        "change_reason": "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if not (k == "is_active" and v == "")}


def test_change_form_edits_profile_and_role_through_the_services(admin_client, staff):
    response = admin_client.post(
        f"/admin/accounts/user/{staff.pk}/change/",
        change_data(staff, full_name="Renamed", role="port_engineer", change_reason="Promotion"),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    staff.refresh_from_db()
    assert (staff.full_name, staff.role) == ("Renamed", "port_engineer")
    history = admin_client.get(f"/admin/accounts/user/{staff.pk}/history/")
    assert history.status_code == 200


def test_change_form_refuses_to_remove_the_last_admin(admin_client, admin_user):
    response = admin_client.post(f"/admin/accounts/user/{admin_user.pk}/change/", change_data(admin_user, role="staff"))
    assert response.status_code == 200
    assert "administrator must remain" in response.content.decode()
    admin_user.refresh_from_db()
    assert admin_user.role == "admin"


def test_reset_password_page(admin_client, staff):
    url = f"/admin/accounts/user/{staff.pk}/password/"
    assert admin_client.get(url).status_code == 200
    weak = admin_client.post(url, {"new_password1": "password", "new_password2": "password"})
    assert weak.status_code == 200 and "too common" in weak.content.decode()
    assert not User.objects.get(pk=staff.pk).check_password("password")
    done = admin_client.post(url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD, "change_reason": "x"})
    assert done.status_code == 302
    assert User.objects.get(pk=staff.pk).check_password(NEW_PASSWORD)
    redirect = admin_client.post("/admin/accounts/user/", {"action": "reset_password_action",
                                                           "_selected_action": [staff.pk]})
    assert redirect.status_code == 302 and redirect.url.endswith(url)


def test_accounts_cannot_be_deleted_in_the_admin(admin_client, staff):
    assert admin_client.get(f"/admin/accounts/user/{staff.pk}/delete/").status_code == 403
