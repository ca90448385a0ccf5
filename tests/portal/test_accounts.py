"""Login, logout, registration, home, profile and user administration in the portal."""

import pytest
from django.test import Client

from accounts.models import User
from tests.conftest import PASSWORD


def _html(response):
    return response.content.decode()


def _login(user_id, password):
    client = Client()
    return client, client.post("/login/", {"username": user_id, "password": password})


def test_login_page_renders_with_csrf_and_django_field_names(client, db):
    html = _html(client.get("/login/"))
    assert 'name="username"' in html
    assert 'name="password"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_login_redirects_to_next_and_shows_user_id_and_role(staff):
    client, response = _login("st001", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/"
    html = _html(client.get("/"))
    assert "ST001" in html
    assert "Staff" in html
    assert 'action="/logout/"' in html
    client2 = Client()
    response = client2.post("/login/?next=/requests/", {"username": "ST001", "password": PASSWORD})
    assert response["Location"] == "/requests/"


def test_login_refuses_external_next(staff):
    response = Client().post("/login/?next=https://evil.example/", {"username": "ST001", "password": PASSWORD})
    assert response["Location"] == "/"


def test_pending_account_is_told_it_awaits_approval(world):
    client, response = _login("ST009", "Newbie-Pass-2025")
    assert response.status_code == 200
    assert "awaiting approval" in _html(response)
    assert "_auth_user_id" not in client.session


def test_rejected_account_is_told_it_was_rejected(world, as_):
    as_("engineer").post("/users/ST009/reject/", {"reason": "Unknown person"})
    client, response = _login("ST009", "Newbie-Pass-2025")
    assert response.status_code == 200
    assert "registration was rejected" in _html(response)
    assert "_auth_user_id" not in client.session


def test_pending_account_with_wrong_password_gets_the_generic_message(world):
    _, response = _login("ST009", "wrong-password")
    html = _html(response)
    assert "The user ID or password is incorrect." in html
    assert "awaiting approval" not in html


def test_failed_logins_are_counted_and_lock_the_account(staff, settings):
    settings.ACCOUNTS_LOCKOUT_THRESHOLD = 3
    for _ in range(3):
        _, response = _login("ST001", "wrong-password")
        assert "The user ID or password is incorrect." in _html(response)
    staff.refresh_from_db()
    assert staff.failed_login_count == 3
    client, response = _login("ST001", PASSWORD)
    assert response.status_code == 200
    assert "temporarily locked" in _html(response)
    assert "_auth_user_id" not in client.session


def test_successful_login_resets_the_failure_count(staff):
    _login("ST001", "wrong-password")
    staff.refresh_from_db()
    assert staff.failed_login_count == 1
    _login("ST001", PASSWORD)
    staff.refresh_from_db()
    assert staff.failed_login_count == 0


def test_logout_is_a_post_and_ends_the_session(portal, staff):
    client = portal(staff)
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_registration_creates_a_pending_account(client, db):
    response = client.post(
        "/register/",
        {"user_id": "st777", "full_name": "Rae Rigger", "email": "rae@example.com", "phone": "", "department": "Deck",
         "password1": "Rigging-Pass-2025", "password2": "Rigging-Pass-2025"},
        follow=True,
    )
    user = User.objects.get(user_id="ST777")
    assert user.approval_status == "pending"
    assert user.department == "Deck"
    assert response.redirect_chain == [("/login/", 302)]
    assert "administrator" in _html(response) and "pending approval" in _html(response)


def test_a_password_with_spaces_is_kept_as_typed_at_registration_and_change(client, as_, world):
    """The portal's password boxes are not stripped, as the login form's is not."""
    client.post("/register/", {"user_id": "ST776", "full_name": "Rae Rigger", "email": "rae6@example.com",
                               "password1": " Rigging-Pass-2025 ", "password2": " Rigging-Pass-2025 "})
    assert User.objects.get(user_id="ST776").check_password(" Rigging-Pass-2025 ")
    staff = as_("staff")
    ok = staff.post("/profile/password/", {"old_password": PASSWORD, "new_password1": "  Fresh-Pass-2026",
                                          "new_password2": "  Fresh-Pass-2026"})
    assert ok.status_code == 302
    assert User.objects.get(user_id="ST001").check_password("  Fresh-Pass-2026")


@pytest.mark.parametrize(
    "data,field_error",
    [
        ({"password1": "short", "password2": "short"}, "too short"),
        ({"password2": "Different-Pass-2025"}, "The two passwords differ."),
        ({"user_id": "ST001"}, "already exists"),
    ],
)
def test_registration_errors_are_shown_on_the_form(data, field_error, client, staff):
    base = {"user_id": "ST778", "full_name": "Rae", "email": "rae@example.com", "password1": "Rigging-Pass-2025",
            "password2": "Rigging-Pass-2025"}
    response = client.post("/register/", {**base, **data})
    assert response.status_code == 200
    assert field_error in _html(response)
    assert not User.objects.filter(user_id="ST778").exists()


def test_staff_home_shows_own_open_work(as_, world):
    html = _html(as_("staff").get("/"))
    assert world["request"].code in html
    assert world["emergency"].code in html
    assert "accounts awaiting approval" not in html
    assert 'href="/users/"' not in html
    other = _html(as_("other_staff").get("/"))
    assert world["request"].code not in other


@pytest.mark.parametrize("role", ["engineer", "admin"])
def test_manager_home_shows_approvals_emergencies_and_low_stock(role, as_, world):
    html = _html(as_(role).get("/"))
    for text in ("Requests awaiting approval", "Accounts awaiting approval", "Active emergencies", "Low stock",
                 world["request"].code, "ST009", world["emergency"].code, world["item"].code):
        assert text in html, text


def test_profile_update_and_password_change(as_, world):
    client = as_("staff")
    response = client.post("/profile/", {"full_name": "Sam Stoker", "email": "sam@example.com", "phone": "+47 555",
                                         "department": "Engine", "reason": "Moved to the engine crew"})
    assert response.status_code == 302
    staff = User.objects.get(user_id="ST001")
    assert (staff.full_name, staff.department) == ("Sam Stoker", "Engine")
    bad = client.post("/profile/password/", {"old_password": "nope", "new_password1": "Fresh-Pass-2026",
                                            "new_password2": "Fresh-Pass-2026"})
    assert "The current password is incorrect." in _html(bad)
    ok = client.post("/profile/password/", {"old_password": PASSWORD, "new_password1": "Fresh-Pass-2026",
                                           "new_password2": "Fresh-Pass-2026"})
    assert ok.status_code == 302
    assert client.get("/").status_code == 200  # still logged in
    assert User.objects.get(user_id="ST001").check_password("Fresh-Pass-2026")


def test_user_list_filters_and_search(as_, world):
    client = as_("engineer")
    pending = _html(client.get("/users/?approval_status=pending"))
    assert 'href="/users/ST009/"' in pending and 'href="/users/ST001/"' not in pending
    admins = _html(client.get("/users/?role=admin"))
    assert 'href="/users/ADM001/"' in admins and 'href="/users/PE001/"' not in admins
    found = _html(client.get("/users/?q=nina"))
    assert 'href="/users/ST009/"' in found and 'href="/users/ST002/"' not in found
    assert client.get("/users/?role=king").status_code == 200


def test_user_detail_buttons_by_role(as_, world):
    engineer = _html(as_("engineer").get("/users/ST009/"))
    assert 'action="/users/ST009/approve/"' in engineer
    assert 'action="/users/ST009/reject/"' in engineer
    assert 'action="/users/ST009/role/"' not in engineer
    assert 'action="/users/ST009/password/"' not in engineer
    admin = _html(as_("admin").get("/users/ST009/"))
    for path in ("approve", "reject", "role", "password", "active"):
        assert f'action="/users/ST009/{path}/"' in admin
    approved = _html(as_("admin").get("/users/ST001/"))
    assert 'action="/users/ST001/approve/"' not in approved


def test_manager_approves_an_account_which_can_then_log_in(as_, world):
    response = as_("engineer").post("/users/ST009/approve/", {"reason": "Known deckhand"}, follow=True)
    assert "Account ST009 was approved." in _html(response)
    world["pending"].refresh_from_db()
    assert world["pending"].approval_status == "approved"
    _, login = _login("ST009", "Newbie-Pass-2025")
    assert login.status_code == 302
    again = as_("engineer").post("/users/ST009/approve/", {}, follow=True)
    assert "only pending accounts can be approved" in _html(again)


def test_admin_changes_role_and_resets_password(as_, world):
    client = as_("admin")
    client.post("/users/ST001/role/", {"role": "port_engineer", "reason": "Promoted"})
    client.post("/users/ST001/password/", {"new_password": "Reset-Pass-2026", "reason": "Forgot it"})
    staff = User.objects.get(user_id="ST001")
    assert staff.role == "port_engineer"
    assert staff.check_password("Reset-Pass-2026")
    weak = client.post("/users/ST001/password/", {"new_password": "123"}, follow=True)
    assert weak.status_code == 200
    assert "too short" in _html(weak)
