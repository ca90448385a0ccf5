"""API tokens (issue 11, items 3 and 4): issued only by POST /api/auth/token,
each issue and revoke in audit_trail, never without expiry; a password change
or reset revokes the others, deactivation revokes all and reactivation brings
none back; the knox admin pages are gone."""

import json
from datetime import timedelta

import pytest
from django.core import checks
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts import tokens
from audit.models import AuditTrail
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Quay-Side-Lantern-77"
IP = "198.51.100.23"


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def issue(user_id="ST001", password=PASSWORD):
    response = APIClient().post(
        "/api/auth/token", {"user_id": user_id, "password": password}, format="json", REMOTE_ADDR=IP
    )
    assert response.status_code == 200, response.content
    return response.json()


def bearer(token):
    client = APIClient(REMOTE_ADDR=IP)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def answers(token) -> int:
    return bearer(token).get("/api/users/me/").status_code


def session(user_id="ST001", password=PASSWORD):
    client = Client()
    assert client.post("/login/", {"username": user_id, "password": password}).status_code == 302
    return client


def signed_in(client) -> bool:
    return client.get("/profile/").status_code == 200


def token_rows():
    return list(AuditTrail.objects.filter(entity_type="user", changes__has_key="api_token").order_by("id"))


def test_the_knox_admin_pages_are_gone(portal, admin_user):
    client = portal(admin_user)
    assert client.get("/admin/knox/authtoken/").status_code == 404
    assert client.get("/admin/knox/authtoken/add/").status_code == 404
    index = client.get("/admin/").content.decode()
    assert "Auth tokens" not in index and "/admin/knox/" not in index


def test_issue_and_revoke_are_recorded_with_who_for_whom_expiry_and_ip(staff):
    body = issue("st001")
    issued = AuthToken.objects.get(user=staff)
    assert issued.expiry is not None
    assert timedelta(hours=9, minutes=59) < issued.expiry - timezone.now() <= timedelta(hours=10)
    (row,) = token_rows()
    assert (row.action_type, row.entity_id, row.user_id, row.ip_address) == ("create", "ST001", "ST001", IP)
    new = row.changes["api_token"]["new"]
    assert new == {"token": tokens.fingerprint(issued), "expiry": body["expiry"]}
    assert row.changes["api_token"]["old"] is None
    assert bearer(body["token"]).delete("/api/auth/token").status_code == 204
    revoked = token_rows()[-1]
    assert (revoked.action_type, revoked.user_id, revoked.ip_address) == ("delete", "ST001", IP)
    assert revoked.changes["api_token"]["old"] == new and revoked.changes["api_token"]["new"] is None
    # neither the token nor its digest is anywhere in the trail
    text = json.dumps([[r.old_value, r.new_value, r.changes] for r in AuditTrail.objects.all()])
    assert body["token"] not in text and issued.digest not in text and body["token"][:15] not in text


def test_a_token_ttl_without_expiry_fails_the_system_check(settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": None}
    assert [e.id for e in checks.run_checks() if e.id.startswith("accounts.")] == ["accounts.E001"]


def test_an_api_password_change_keeps_only_the_token_in_use(staff):
    in_use, other = issue()["token"], issue()["token"]
    browser = session()
    response = bearer(in_use).post(
        "/api/users/me/password", {"old_password": PASSWORD, "new_password": NEW_PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    assert answers(in_use) == 200
    assert answers(other) == 401
    assert not signed_in(browser)
    assert [r.action_type for r in token_rows()] == ["create", "create", "delete"]
    assert token_rows()[-1].change_reason == "Password changed"


def test_an_api_password_change_over_a_session_keeps_that_session(staff):
    token = issue()["token"]
    browser = session()
    other_browser = session()
    api = APIClient()
    api.cookies = browser.cookies
    csrf = api.get("/api/users/me/")
    assert csrf.status_code == 200
    response = api.post(
        "/api/users/me/password", {"old_password": PASSWORD, "new_password": NEW_PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    browser.cookies = api.cookies
    assert signed_in(browser)
    assert not signed_in(other_browser)
    assert answers(token) == 401


def test_a_portal_password_change_revokes_tokens_and_other_sessions(staff):
    token = issue()["token"]
    mine, elsewhere = session(), session()
    response = mine.post(
        "/profile/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert signed_in(mine)
    assert not signed_in(elsewhere)
    assert answers(token) == 401


def test_an_administrators_reset_revokes_every_token_and_session(staff, admin_user, api):
    token = issue()["token"]
    browser = session()
    response = api(admin_user).post(
        "/api/users/ST001/reset-password/", {"new_password": NEW_PASSWORD, "change_reason": "Lost laptop"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert answers(token) == 401
    assert not signed_in(browser)
    row = token_rows()[-1]
    assert (row.action_type, row.user_id, row.change_reason) == ("delete", "ADM001", "Password reset")


def test_deactivation_deletes_tokens_and_sessions_and_reactivation_brings_none_back(staff, admin_user, api):
    token = issue()["token"]
    browser = session()
    admin = api(admin_user)
    off = admin.patch("/api/users/ST001/", {"is_active": False, "change_reason": "Left"}, format="json")
    assert off.status_code == 200, off.content
    assert not AuthToken.objects.filter(user=staff).exists()
    on = admin.patch("/api/users/ST001/", {"is_active": True, "change_reason": "Back"}, format="json")
    assert on.status_code == 200, on.content
    assert answers(token) == 401
    assert not signed_in(browser)
    assert token_rows()[-1].change_reason == "Account deactivated"
