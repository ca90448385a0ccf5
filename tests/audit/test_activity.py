"""Login, logout and failed-login activities through the admin, the portal
and the token endpoint, and refused Bearer tokens (audit.activity)."""

import pytest
from django.db import connection

from audit.models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory
from tests.conftest import PASSWORD

WRONG_PASSWORD = "Wrong-Secret-Horse-77"


def _everything_recorded() -> str:
    """Every text value of every audit table, to look for leaked secrets."""
    parts = []
    for model in (ActivityLog, AuditTrail, SystemEvent, UpdateHistory):
        for row in model.objects.values():
            parts.extend(str(v) for v in row.values())
    return "\n".join(parts)


def _activities(**filters):
    return list(ActivityLog.objects.filter(**filters).order_by("id"))


@pytest.fixture
def atomic_spy(monkeypatch):
    """Record whether each denial was written inside an open transaction."""
    from audit import activity

    seen = []
    original = activity.services.log_activity

    def spy(*args, **kwargs):
        seen.append(connection.in_atomic_block)
        return original(*args, **kwargs)

    monkeypatch.setattr(activity.services, "log_activity", spy)
    return seen


# --- admin ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_login_and_logout_are_recorded(client, admin_user):
    response = client.post("/admin/login/?next=/admin/", {"username": "ADM001", "password": PASSWORD},
                           HTTP_USER_AGENT="Firefox/128 test")
    assert response.status_code == 302
    (login,) = _activities(activity="Login")
    assert login.user_id == "ADM001"
    assert login.details == "via admin; user agent: Firefox/128 test"

    assert client.post("/admin/logout/").status_code in (200, 302)
    (logout,) = _activities(activity="Logout")
    assert (logout.user_id, logout.details.split(";")[0]) == ("ADM001", "via admin")


@pytest.mark.django_db(transaction=True)
def test_failed_admin_login_records_the_attempted_user_id_never_the_password(client, staff, atomic_spy):
    response = client.post("/admin/login/?next=/admin/", {"username": "st001", "password": WRONG_PASSWORD})
    assert response.status_code == 200  # the form again, with an error
    (row,) = _activities(activity="Failed login")
    assert row.user_id == "ST001"
    assert row.details.startswith("Attempted user ID: st001; via admin")
    assert atomic_spy == [False]  # written in autocommit: no request rollback can take it back
    assert WRONG_PASSWORD not in _everything_recorded()
    assert "*****" not in _everything_recorded()  # not even the cleansed placeholder


@pytest.mark.django_db
def test_failed_login_of_an_unknown_user_is_recorded(client):
    client.post("/admin/login/", {"username": "NOBODY9", "password": WRONG_PASSWORD})
    (row,) = _activities(activity="Failed login")
    assert row.user_id == "NOBODY9"
    assert "Attempted user ID: NOBODY9" in row.details
    assert WRONG_PASSWORD not in _everything_recorded()


@pytest.mark.django_db
def test_an_oversized_attempted_user_id_cannot_break_the_insert():
    from django.contrib.auth.signals import user_login_failed

    # The login forms refuse such input before authenticating; other callers
    # of authenticate() may not, and the signal carries whatever they passed.
    attempted = "X" * 300 + "\x00"
    user_login_failed.send(sender=None, credentials={"username": attempted, "password": "*" * 20}, request=None)
    (row,) = _activities(activity="Failed login")
    assert row.user_id == "X" * 20
    assert "\x00" not in row.details


# --- token endpoint ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_token_login_and_revoke_are_recorded(staff):
    from rest_framework.test import APIClient

    client = APIClient(HTTP_USER_AGENT="marine-cli/1.0")
    response = client.post("/api/auth/token", {"user_id": "ST001", "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    (login,) = _activities(activity="Login")
    assert (login.user_id, login.details) == ("ST001", "via API; user agent: marine-cli/1.0")

    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert client.delete("/api/auth/token").status_code == 204
    (logout,) = _activities(activity="Logout")
    assert (logout.user_id, logout.details) == ("ST001", "via API; user agent: marine-cli/1.0")
    assert response.json()["token"] not in _everything_recorded()


@pytest.mark.django_db(transaction=True)
def test_failed_token_login_is_recorded_outside_any_transaction(anon_api, staff, atomic_spy):
    response = anon_api.post("/api/auth/token", {"user_id": "ST001", "password": WRONG_PASSWORD}, format="json")
    assert response.status_code == 401
    (row,) = _activities(activity="Failed login")
    assert row.user_id == "ST001"
    assert row.details.startswith("Attempted user ID: ST001; via API")
    assert atomic_spy == [False]
    assert WRONG_PASSWORD not in _everything_recorded()


@pytest.mark.django_db
def test_repeated_failed_token_logins_lock_the_account_with_a_warning_event(anon_api, staff, settings):
    settings.ACCOUNTS_LOCKOUT_THRESHOLD = 3
    for _ in range(3):
        anon_api.post("/api/auth/token", {"user_id": "ST001", "password": WRONG_PASSWORD}, format="json")
    assert len(_activities(activity="Failed login", user_id="ST001")) == 3
    event = SystemEvent.objects.get(event_type="account_locked")
    assert (event.severity, event.entity_type, event.entity_id) == ("warning", "user", "ST001")
    assert WRONG_PASSWORD not in _everything_recorded()


@pytest.mark.django_db(transaction=True)
def test_an_invalid_bearer_token_is_recorded_as_a_failed_login_without_the_token(anon_api, atomic_spy):
    bogus = "f" * 64
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {bogus}")
    response = anon_api.get("/api/users/me/")
    assert response.status_code == 401
    (row,) = _activities(activity="Failed login")
    assert (row.user_id, row.details) == ("anonymous", "invalid bearer token")
    assert atomic_spy == [False]
    assert bogus not in _everything_recorded()
    assert bogus[:8] not in _everything_recorded()


# --- portal ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_portal_login_logout_and_failed_login_are_recorded(client, staff):
    response = client.post("/login/", {"username": "ST001", "password": WRONG_PASSWORD})
    assert response.status_code == 200
    (failed,) = _activities(activity="Failed login")
    assert failed.user_id == "ST001"
    assert failed.details.startswith("Attempted user ID: ST001; via portal")

    response = client.post("/login/", {"username": "ST001", "password": PASSWORD})
    assert response.status_code == 302
    (login,) = _activities(activity="Login")
    assert (login.user_id, login.details.split(";")[0]) == ("ST001", "via portal")

    client.post("/logout/")
    (logout,) = _activities(activity="Logout")
    assert (logout.user_id, logout.details.split(";")[0]) == ("ST001", "via portal")
    assert WRONG_PASSWORD not in _everything_recorded()


@pytest.mark.django_db(transaction=True)
def test_failed_portal_login_is_recorded_outside_any_transaction(client, staff, atomic_spy):
    client.post("/login/", {"username": "ST001", "password": WRONG_PASSWORD})
    assert len(_activities(activity="Failed login", user_id="ST001")) == 1
    assert atomic_spy == [False]


# --- fail open ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_failing_denial_record_is_counted_and_the_denial_stands(client, staff, monkeypatch, capsys):
    from audit import activity

    def broken(*args, **kwargs):
        raise RuntimeError("database is gone")

    monkeypatch.setattr(activity.services, "log_activity", broken)
    before = activity.FAILURES["failed login"]
    response = client.post("/admin/login/", {"username": "ST001", "password": WRONG_PASSWORD})
    assert response.status_code == 200  # the login is refused as usual
    assert activity.FAILURES["failed login"] == before + 1
    assert "audit: could not record failed login: RuntimeError" in capsys.readouterr().err


# --- fail closed ------------------------------------------------------------------------------------


@pytest.fixture
def broken_login_record(monkeypatch):
    """The audit write of a successful login fails."""
    from audit import activity

    original = activity.services.log_activity

    def log_activity(activity_text, details=""):
        if activity_text == "Login":
            raise RuntimeError("audit insert failed")
        return original(activity_text, details)

    monkeypatch.setattr(activity.services, "log_activity", log_activity)


@pytest.mark.django_db
def test_no_token_is_issued_when_the_login_cannot_be_recorded(staff, broken_login_record):
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    client = APIClient(raise_request_exception=False)
    response = client.post("/api/auth/token", {"user_id": "ST001", "password": PASSWORD}, format="json")
    assert response.status_code == 500
    assert b'"token"' not in response.content
    assert AuthToken.objects.count() == 0


@pytest.mark.django_db
def test_no_admin_session_is_issued_when_the_login_cannot_be_recorded(admin_user, broken_login_record):
    from django.test import Client

    client = Client(raise_request_exception=False)
    response = client.post("/admin/login/?next=/admin/", {"username": "ADM001", "password": PASSWORD})
    assert response.status_code == 500
    assert client.get("/admin/").status_code == 302  # still anonymous: back to the login page
    assert not _activities(activity="Login")
