"""The one lock-out (accounts.lockout) through every login path: the portal
form, /admin/login/ and POST /api/auth/token count together, in any letter
case, per (user id, client IP) with a ceiling per user id; a lock refuses new
logins only, and the token endpoint does the same hasher work for unknown and
existing ids (issue 11, items 1, 2 and 7)."""

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from audit.models import SystemEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

WRONG = "Not-The-Password-1"
ATTACKER = "203.0.113.66"
VICTIM = "198.51.100.10"


@pytest.fixture(autouse=True)
def _small_limits(settings):
    settings.ACCOUNTS_LOCKOUT_THRESHOLD = 5
    settings.ACCOUNTS_LOCKOUT_CEILING = 12
    settings.ACCOUNTS_LOCKOUT_MINUTES = 15
    settings.PASSWORD_HASHERS = ["tests.accounts.hashers.CountingMD5Hasher"]


def portal_login(user_id, password, ip):
    client = Client(REMOTE_ADDR=ip)
    response = client.post("/login/", {"username": user_id, "password": password})
    return client, response


def admin_login(user_id, password, ip):
    client = Client(REMOTE_ADDR=ip)
    response = client.post("/admin/login/?next=/admin/", {"username": user_id, "password": password})
    return client, response


def token_login(user_id, password, ip, **extra):
    return APIClient().post(
        "/api/auth/token", {"user_id": user_id, "password": password}, format="json", REMOTE_ADDR=ip, **extra
    )


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def data(event) -> dict:
    return event.event_data if isinstance(event.event_data, dict) else json.loads(event.event_data)


def locks():
    return list(SystemEvent.objects.filter(event_type="account_locked").order_by("id"))


def test_wrong_admin_logins_are_counted_and_lock_the_admin_page(admin_user):
    for user_id in ["adm001", "ADM001", "Adm001", "aDm001", "ADM001"]:
        _, response = admin_login(user_id, WRONG, ATTACKER)
        assert response.status_code == 200 and "Please enter the correct" in response.content.decode()
    admin_user.refresh_from_db()
    assert admin_user.failed_login_count == 5
    client, response = admin_login("ADM001", PASSWORD, ATTACKER)
    assert response.status_code == 200 and not logged_in(client)
    # the lock is per address: the administrator at their own desk still gets in
    client, response = admin_login("adm001", PASSWORD, VICTIM)
    assert response.status_code == 302 and logged_in(client)
    (event,) = locks()
    assert event.entity_id == "ADM001" and event.severity == "warning"
    assert data(event)["scope"] == "address" and data(event)["ip_address"] == ATTACKER


def test_portal_admin_and_token_failures_count_together_in_any_case(staff):
    portal_login("st001", WRONG, ATTACKER)
    portal_login("St001", WRONG, ATTACKER)
    admin_login("ST001", WRONG, ATTACKER)
    admin_login("sT001", WRONG, ATTACKER)
    assert token_login("st001", WRONG, ATTACKER).status_code == 401
    staff.refresh_from_db()
    assert staff.failed_login_count == 5
    # now every path refuses the right password from that address, and says why where it can
    refused = token_login("ST001", PASSWORD, ATTACKER)
    assert refused.status_code == 403
    assert "temporarily locked" in refused.json()["error"]["message"]
    client, response = portal_login("st001", PASSWORD, ATTACKER)
    assert not logged_in(client) and "temporarily locked" in response.content.decode()
    client, _ = admin_login("ST001", PASSWORD, ATTACKER)
    assert not logged_in(client)
    assert len(locks()) == 1


def test_a_lockout_never_ends_existing_sessions_or_tokens(staff, settings):
    session, _ = portal_login("ST001", PASSWORD, VICTIM)
    token = token_login("ST001", PASSWORD, VICTIM).json()["token"]
    api = APIClient(REMOTE_ADDR=VICTIM)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    # someone who knows only the user id tries from twelve addresses: the ceiling locks the id everywhere
    for n in range(12):
        assert token_login("ST001", WRONG, f"203.0.113.{n + 1}").status_code == 401
    staff.refresh_from_db()
    assert staff.is_locked()
    assert [data(e)["scope"] for e in locks()] == ["everywhere"]
    assert token_login("ST001", PASSWORD, VICTIM).status_code == 403  # no new login anywhere
    # but the victim's open session and token keep working
    assert session.get("/").status_code == 200
    assert session.get("/profile/").status_code == 200
    assert api.get("/api/users/me/").status_code == 200


def test_unknown_ids_are_locked_like_known_ones(db):
    for _ in range(5):
        assert token_login("NOBODY9", WRONG, ATTACKER).status_code == 401
    refused = token_login("nobody9", WRONG, ATTACKER)
    assert refused.status_code == 403 and "temporarily locked" in refused.json()["error"]["message"]


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_does_not_reset_the_count(staff, settings):
    settings.AUDIT_TRUSTED_PROXIES = ["10.0.0.1"]
    for n in range(5):
        token_login("ST001", WRONG, ATTACKER, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert token_login("ST001", PASSWORD, ATTACKER, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 403
    # behind the trusted proxy, the forwarded client is the one counted
    for _ in range(5):
        token_login("ST001", WRONG, "10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.50")
    assert token_login("ST001", PASSWORD, "10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.50").status_code == 403
    assert token_login("ST001", PASSWORD, "10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.51").status_code == 200


def test_a_right_password_ends_the_series_of_its_address(staff):
    for _ in range(4):
        token_login("ST001", WRONG, VICTIM)
    assert token_login("ST001", PASSWORD, VICTIM).status_code == 200
    for _ in range(4):
        token_login("ST001", WRONG, VICTIM)
    assert token_login("ST001", PASSWORD, VICTIM).status_code == 200
    assert not locks()


def test_an_administrators_password_reset_lifts_the_lock(staff, admin_user, api):
    for _ in range(5):
        token_login("ST001", WRONG, ATTACKER)
    assert token_login("ST001", PASSWORD, ATTACKER).status_code == 403
    new = "Fresh-Harbour-Key-42"
    response = api(admin_user).post(
        "/api/users/ST001/reset-password/", {"new_password": new, "change_reason": "Locked out"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert token_login("ST001", new, ATTACKER).status_code == 200


@pytest.mark.parametrize("password", [WRONG, PASSWORD])
def test_the_token_endpoint_hashes_once_for_unknown_and_existing_ids(staff, make_user, password):
    from tests.accounts.hashers import CountingMD5Hasher

    make_user("ST077", approval_status="pending")
    work = {}
    for user_id in ["ST001", "st001", "NOBODY9", "ST077"]:
        CountingMD5Hasher.computed.clear()
        token_login(user_id, password, VICTIM)
        work[user_id] = len(CountingMD5Hasher.computed)
    assert work == {"ST001": 1, "st001": 1, "NOBODY9": 1, "ST077": 1}


def test_a_locked_id_costs_the_same_hash_and_never_says_whether_the_password_was_right(staff):
    from tests.accounts.hashers import CountingMD5Hasher

    for _ in range(5):
        token_login("ST001", WRONG, ATTACKER)
    answers = []
    for password in (WRONG, PASSWORD):
        CountingMD5Hasher.computed.clear()
        response = token_login("ST001", password, ATTACKER)
        answers.append((response.status_code, response.json()["error"]["message"], len(CountingMD5Hasher.computed)))
    assert answers[0] == answers[1]
    assert answers[0][0] == 403 and answers[0][2] == 1
    assert User.objects.get(user_id="ST001").failed_login_count == 5  # refused attempts are not counted again
