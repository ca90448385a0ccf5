"""The accounts API: registration, tokens, own profile and password, user administration."""

import json

import pytest
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import User
from core.signals import domain_event
from tests.conftest import PASSWORD

NEW_PASSWORD = "Quay-Side-Lantern-77"

pytestmark = pytest.mark.django_db


def assert_envelope(response, status, code=None, fields=()):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    for field in fields:
        assert field in body["error"].get("fields", {}), body
    return body


@pytest.fixture
def events():
    """Every domain_event sent during the test, as dicts."""
    seen = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    domain_event.connect(receiver, dispatch_uid="test-accounts-events")
    yield seen
    domain_event.disconnect(dispatch_uid="test-accounts-events")


def register(client, user_id="st050", password=NEW_PASSWORD, **extra):
    payload = {"user_id": user_id, "password": password, "full_name": "New Deckhand", "email": "new@example.com", **extra}
    return client.post("/api/auth/register", payload, format="json")


def get_token(client, user_id, password=PASSWORD, path="/api/auth/token"):
    return client.post(path, {"user_id": user_id, "password": password}, format="json")


def bearer(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# --- registration and approval ----------------------------------------------------


def test_registration_is_pending_until_a_port_engineer_approves_it(anon_api, api, engineer):
    response = register(anon_api)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user_id"] == "ST050"
    assert body["approval_status"] == "pending"
    assert body["role"] == "staff"
    assert "password" not in body and NEW_PASSWORD not in response.content.decode()

    refused = get_token(anon_api, "ST050", NEW_PASSWORD)
    error = assert_envelope(refused, 403, code="login_refused")
    assert "awaiting approval" in error["error"]["message"]
    assert not AuthToken.objects.filter(user__user_id="ST050").exists()

    approved = api(engineer).post("/api/users/ST050/approve/", {"change_reason": "Crew list checked"}, format="json")
    assert approved.status_code == 200, approved.content
    assert approved.json()["approval_status"] == "approved"
    assert approved.json()["approved_by"] == "PE001"

    granted = get_token(anon_api, "st050", NEW_PASSWORD)
    assert granted.status_code == 200, granted.content
    body = granted.json()
    assert body["success"] is True and body["expiry"].endswith("Z")
    assert body["user"]["user_id"] == "ST050"
    me = bearer(body["token"]).get("/api/users/me/")
    assert me.status_code == 200 and me.json()["user_id"] == "ST050"


def test_register_and_token_answer_with_and_without_trailing_slash(anon_api, staff):
    assert anon_api.post("/api/auth/register/", {"user_id": "ST051", "password": NEW_PASSWORD,
                                                 "full_name": "A", "email": "a@example.com"}, format="json").status_code == 201
    assert get_token(anon_api, "ST001", path="/api/auth/token/").status_code == 200
    assert get_token(anon_api, "ST001", path="/api/auth/token").status_code == 200


def test_register_refuses_duplicates_weak_passwords_and_missing_fields(anon_api, staff):
    assert_envelope(register(anon_api, user_id="st001"), 400, fields=["user_id"])
    assert_envelope(register(anon_api, password="password"), 400, fields=["password"])
    assert_envelope(register(anon_api, password="12345678901"), 400, fields=["password"])
    assert_envelope(register(anon_api, user_id="bad id!"), 400, fields=["user_id"])
    assert_envelope(register(anon_api, user_id="me"), 400, fields=["user_id"])
    missing = anon_api.post("/api/auth/register", {"user_id": "ST052", "password": NEW_PASSWORD}, format="json")
    assert_envelope(missing, 400, fields=["full_name", "email"])
    bad_email = register(anon_api, email="not-an-email")
    assert_envelope(bad_email, 400, fields=["email"])
    assert not User.objects.filter(user_id__in=["ST050", "ST052", "BAD ID!"]).exists()


def test_rejected_account_cannot_log_in(anon_api, api, engineer):
    register(anon_api)
    rejected = api(engineer).post("/api/users/ST050/reject/", {"change_reason": "Not crew"}, format="json")
    assert rejected.status_code == 200 and rejected.json()["approval_status"] == "rejected"
    error = assert_envelope(get_token(anon_api, "ST050", NEW_PASSWORD), 403)
    assert "rejected" in error["error"]["message"]
    # and a decided account cannot be decided again
    assert_envelope(api(engineer).post("/api/users/ST050/approve/"), 409, code="invalid_transition")
    assert User.objects.get(user_id="ST050").approval_status == "rejected"


def test_approve_and_reject_are_for_managers_only(anon_api, api, staff, admin_user):
    from audit.models import AuditTrail

    register(anon_api)
    refused = assert_envelope(api(staff).post("/api/users/ST050/approve/", {"change_reason": "Looks fine"},
                                              format="json"), 403)
    assert_envelope(api(staff).post("/api/users/ST050/reject/"), 403)
    assert_envelope(anon_api.post("/api/users/ST050/approve/"), 401)
    # each refused attempt on an existing account is a failed row of that account (SPEC: a write
    # refused by role is a record too), with the service's reason and the reason given
    failed = {t.action_type: t for t in AuditTrail.objects.filter(entity_id="ST050", status="failed")}
    assert set(failed) == {"approve", "reject"}
    assert (failed["approve"].user_id, failed["approve"].change_reason) == ("ST001", "Looks fine")
    assert failed["approve"].error_message == "Only administrators and port engineers may approve accounts."
    assert not failed["approve"].field_changes.exists()
    # an account that does not exist gets the same answer, and leaves no row
    unknown = assert_envelope(api(staff).post("/api/users/NOBODY/approve/"), 403)
    assert unknown["error"] == refused["error"]
    assert not AuditTrail.objects.filter(entity_id="NOBODY").exists()
    # a body that is not a reason changes neither answer: 403 for the non-manager (and the refusal
    # still recorded, without a reason), 400 for a manager
    bad = api(staff).post("/api/users/ST050/approve/", data="{not json", content_type="application/json")
    assert_envelope(bad, 403)
    plain = api(staff).post("/api/users/ST050/approve/", data="approve", content_type="text/plain")
    assert_envelope(plain, 403)  # not a 415: an existing account answers as an unknown one does
    assert AuditTrail.objects.filter(entity_id="ST050", status="failed", action_type="approve").count() == 3
    assert_envelope(api(admin_user).post("/api/users/ST050/approve/", data="{not json",
                                         content_type="application/json"), 400)
    assert User.objects.get(user_id="ST050").approval_status == "pending"
    assert api(admin_user).post("/api/users/ST050/approve/").status_code == 200
    assert_envelope(api(admin_user).post("/api/users/NOBODY/approve/"), 404, code="not_found")


# --- tokens ----------------------------------------------------------------------


def test_wrong_password_and_unknown_user_get_the_same_generic_answer(anon_api, staff):
    wrong = assert_envelope(get_token(anon_api, "ST001", "Wrong-Password-1"), 401, code="invalid_credentials")
    unknown = assert_envelope(get_token(anon_api, "NOBODY", "Wrong-Password-1"), 401, code="invalid_credentials")
    assert wrong["error"]["message"] == unknown["error"]["message"] == "Invalid user ID or password."
    assert "Wrong-Password-1" not in json.dumps(wrong)


def test_a_pending_account_with_a_wrong_password_learns_nothing(anon_api):
    register(anon_api)
    body = assert_envelope(get_token(anon_api, "ST050", "Wrong-Password-1"), 401)
    assert "approval" not in body["error"]["message"]


def test_login_sends_djangos_signals_without_the_password(anon_api, staff):
    sent = []

    def on_failed(sender, credentials, request=None, **kw):
        sent.append(("failed", dict(credentials)))

    def on_in(sender, user, request=None, **kw):
        sent.append(("in", user.user_id))

    def on_out(sender, user, request=None, **kw):
        sent.append(("out", user.user_id))

    user_login_failed.connect(on_failed, dispatch_uid="t-failed")
    user_logged_in.connect(on_in, dispatch_uid="t-in")
    user_logged_out.connect(on_out, dispatch_uid="t-out")
    try:
        get_token(anon_api, "ST001", "Wrong-Password-1")
        token = get_token(anon_api, "ST001").json()["token"]
        assert bearer(token).delete("/api/auth/token").status_code == 204
    finally:
        user_login_failed.disconnect(dispatch_uid="t-failed")
        user_logged_in.disconnect(dispatch_uid="t-in")
        user_logged_out.disconnect(dispatch_uid="t-out")
    assert [kind for kind, _ in sent] == ["failed", "in", "out"]
    assert sent[0][1]["user_id"] == "ST001"
    assert "Wrong-Password-1" not in json.dumps(sent[0][1])
    assert sent[1][1] == sent[2][1] == "ST001"
    assert User.objects.get(user_id="ST001").last_login is not None


@pytest.mark.parametrize("threshold", [3])
def test_lockout_after_threshold_sends_account_locked(anon_api, staff, events, settings, threshold):
    settings.ACCOUNTS_LOCKOUT_THRESHOLD = threshold
    for _ in range(threshold):
        assert_envelope(get_token(anon_api, "ST001", "Wrong-Password-1"), 401)
    locked = [e for e in events if e["event_type"] == "account_locked"]
    assert len(locked) == 1
    assert locked[0]["severity"] == "warning"
    assert locked[0]["entity_type"] == "user" and locked[0]["entity_id"] == "ST001"
    assert locked[0]["event_data"]["failed_attempts"] == threshold
    # even the right password is refused now, with a clear message
    body = assert_envelope(get_token(anon_api, "ST001"), 403)
    assert "locked" in body["error"]["message"]
    # one more failure does not lock again
    get_token(anon_api, "ST001", "Wrong-Password-1")
    assert len([e for e in events if e["event_type"] == "account_locked"]) == 1


def test_successful_login_resets_the_failure_count(anon_api, staff, events, settings):
    settings.ACCOUNTS_LOCKOUT_THRESHOLD = 3
    get_token(anon_api, "ST001", "Wrong-Password-1")
    get_token(anon_api, "ST001", "Wrong-Password-1")
    assert get_token(anon_api, "ST001").status_code == 200
    get_token(anon_api, "ST001", "Wrong-Password-1")
    get_token(anon_api, "ST001", "Wrong-Password-1")
    assert get_token(anon_api, "ST001").status_code == 200
    assert not [e for e in events if e["event_type"] == "account_locked"]


def test_revoked_token_is_useless(anon_api, staff):
    token = get_token(anon_api, "ST001").json()["token"]
    client = bearer(token)
    assert client.get("/api/users/me").status_code in (200, 301)  # APPEND_SLASH redirect is fine
    assert client.get("/api/users/me/").status_code == 200
    assert client.delete("/api/auth/token").status_code == 204
    assert_envelope(client.get("/api/users/me/"), 401, code="not_authenticated")
    assert_envelope(client.delete("/api/auth/token"), 401)


def test_revoking_one_token_keeps_the_others(anon_api, staff):
    first = bearer(get_token(anon_api, "ST001").json()["token"])
    second = bearer(get_token(anon_api, "ST001").json()["token"])
    assert first.delete("/api/auth/token/").status_code == 204
    assert second.get("/api/users/me/").status_code == 200


def test_token_endpoint_rejects_bad_input_in_the_envelope(anon_api, staff):
    malformed = anon_api.post("/api/auth/token", data="{not json", content_type="application/json")
    assert_envelope(malformed, 400)
    assert_envelope(anon_api.post("/api/auth/token", data="user_id=ST001", content_type="text/plain"), 415)
    assert_envelope(anon_api.post("/api/auth/token", {"user_id": "ST001"}, format="json"), 400, fields=["password"])
    assert_envelope(anon_api.post("/api/auth/token", {"user_id": ["ST001"], "password": 5}, format="json"), 400)
    assert_envelope(anon_api.post("/api/auth/token", data="[1, 2]", content_type="application/json"), 400)
    assert_envelope(anon_api.get("/api/auth/token"), 401)
    assert_envelope(anon_api.get("/api/auth/register"), 405)
    assert_envelope(anon_api.put("/api/auth/register", {}, format="json"), 405)


# --- own profile and password -----------------------------------------------------


def test_me_shows_and_edits_own_profile(api, staff):
    client = api(staff)
    response = client.patch("/api/users/me/", {"full_name": "Sam Deck", "phone": "+47 555", "change_reason": "Typo"},
                            format="json")
    assert response.status_code == 200, response.content
    staff.refresh_from_db()
    assert (staff.full_name, staff.phone) == ("Sam Deck", "+47 555")
    assert_envelope(client.patch("/api/users/me/", {"role": "admin"}, format="json"), 400, fields=["role"])
    assert_envelope(client.patch("/api/users/me/", {"email": "nope"}, format="json"), 400, fields=["email"])
    staff.refresh_from_db()
    assert staff.role == "staff"


@pytest.mark.parametrize("path", ["/api/users/me/password", "/api/users/me/password/"])
def test_password_change_checks_the_old_password_and_the_validators(anon_api, api, staff, path):
    client = api(staff)
    wrong = client.post(path, {"old_password": "Wrong-Password-1", "new_password": NEW_PASSWORD}, format="json")
    assert_envelope(wrong, 400, fields=["old_password"])
    weak = client.post(path, {"old_password": PASSWORD, "new_password": "password"}, format="json")
    body = assert_envelope(weak, 400, fields=["new_password"])
    assert "too common" in body["error"]["fields"]["new_password"]
    assert PASSWORD not in weak.content.decode()
    ok = client.post(path, {"old_password": PASSWORD, "new_password": NEW_PASSWORD, "change_reason": "Rotation"},
                     format="json")
    assert ok.status_code == 200 and ok.json()["success"] is True
    assert NEW_PASSWORD not in ok.content.decode()
    assert get_token(anon_api, "ST001", NEW_PASSWORD).status_code == 200
    assert get_token(anon_api, "ST001", PASSWORD).status_code == 401


def test_password_change_needs_a_login(anon_api):
    assert_envelope(anon_api.post("/api/users/me/password", {"old_password": "a", "new_password": "b"}, format="json"), 401)


# --- user administration ------------------------------------------------------------


def test_role_change_is_for_admins_only(api, engineer, staff, admin_user):
    refused = api(engineer).patch("/api/users/ST001/", {"role": "port_engineer"}, format="json")
    assert_envelope(refused, 403, code="permission_denied")
    staff.refresh_from_db()
    assert staff.role == "staff"
    done = api(admin_user).patch("/api/users/st001/", {"role": "port_engineer", "change_reason": "Promoted"},
                                 format="json")
    assert done.status_code == 200, done.content
    assert done.json()["role"] == "port_engineer"
    staff.refresh_from_db()
    assert staff.role == "port_engineer"
    assert_envelope(api(admin_user).patch("/api/users/ST001/", {"role": "captain"}, format="json"), 400, fields=["role"])


def test_admin_edits_profile_and_active_flag_but_not_approval_or_password(api, admin_user, staff):
    client = api(admin_user)
    response = client.patch("/api/users/ST001/", {"department": "Engine room", "is_active": False, "change_reason": "Left the company"}, format="json")
    assert response.status_code == 200, response.content
    staff.refresh_from_db()
    assert staff.department == "Engine room" and staff.is_active is False
    assert_envelope(client.patch("/api/users/ST001/", {"approval_status": "approved"}, format="json"), 400,
                    fields=["approval_status"])
    assert_envelope(client.patch("/api/users/ST001/", {"password": "x"}, format="json"), 400, fields=["password"])
    assert_envelope(client.patch("/api/users/ST001/", {"is_active": "perhaps"}, format="json"), 400,
                    fields=["is_active"])
    own = client.patch("/api/users/ADM001/", {"is_active": False}, format="json")
    assert_envelope(own, 400, fields=["is_active"])
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_a_failed_part_of_a_patch_changes_nothing(api, admin_user):
    response = api(admin_user).patch("/api/users/ADM001/", {"full_name": "Changed", "role": "staff"}, format="json")
    assert_envelope(response, 400, fields=["role"])  # the last administrator keeps the role
    admin_user.refresh_from_db()
    assert admin_user.full_name == "ADM001 Person" and admin_user.role == "admin"


def test_reset_password_by_admin_only(anon_api, api, admin_user, engineer, staff):
    old_token = get_token(anon_api, "ST001").json()["token"]
    assert_envelope(api(engineer).post("/api/users/ST001/reset-password/", {"new_password": NEW_PASSWORD},
                                       format="json"), 403)
    assert_envelope(api(admin_user).post("/api/users/ST001/reset-password/", {"new_password": "short"},
                                         format="json"), 400, fields=["new_password"])
    response = api(admin_user).post("/api/users/ST001/reset-password/",
                                    {"new_password": NEW_PASSWORD, "change_reason": "Forgot it"}, format="json")
    assert response.status_code == 200 and NEW_PASSWORD not in response.content.decode()
    assert get_token(anon_api, "ST001", NEW_PASSWORD).status_code == 200
    assert_envelope(bearer(old_token).get("/api/users/me/"), 401)


def test_user_list_is_for_managers_with_allow_listed_filters(anon_api, api, personas):
    register(anon_api)
    assert_envelope(api(personas["staff"]).get("/api/users/"), 403)
    assert_envelope(anon_api.get("/api/users/"), 401)
    client = api(personas["engineer"])
    body = client.get("/api/users/").json()
    assert body["success"] is True and body["total"] == 5
    assert body["results"][0]["user_id"] == "ST050"  # newest first
    assert {u["user_id"] for u in client.get("/api/users/?role=staff").json()["results"]} == {"ST001", "ST002", "ST050"}
    assert [u["user_id"] for u in client.get("/api/users/?approval_status=pending").json()["results"]] == ["ST050"]
    assert [u["user_id"] for u in client.get("/api/users/?search=pe001").json()["results"]] == ["PE001"]
    assert_envelope(client.get("/api/users/?role=captain"), 400, fields=["role"])
    assert_envelope(client.get("/api/users/?approval_status=maybe"), 400, fields=["approval_status"])
    assert_envelope(client.get("/api/users/?is_active=perhaps"), 400, fields=["is_active"])
    assert "password" not in client.get("/api/users/").content.decode()


def test_user_detail_visibility(anon_api, api, personas):
    assert api(personas["staff"]).get("/api/users/ST001/").status_code == 200
    assert_envelope(api(personas["staff"]).get("/api/users/ST002/"), 404)
    assert api(personas["engineer"]).get("/api/users/ST002/").json()["user_id"] == "ST002"
    assert_envelope(api(personas["engineer"]).get("/api/users/NOBODY/"), 404, code="not_found")
    assert_envelope(anon_api.get("/api/users/ST001/"), 401)
    assert_envelope(api(personas["staff"]).patch("/api/users/ST001/", {"full_name": "x"}, format="json"), 403)
    assert_envelope(api(personas["admin"]).put("/api/users/ST001/", {}, format="json"), 405)
    assert_envelope(api(personas["admin"]).delete("/api/users/ST001/"), 405)


# --- the role matrix -------------------------------------------------------------------

# (method, path, body) -> expected status for anonymous, staff ST001, other staff ST002, engineer, admin.
# ST002 acts on ST001 where "other staff" matters; ST050 is a pending registration.
USER_MATRIX = [
    ("get", "/api/users/", None, (401, 403, 403, 200, 200)),
    ("get", "/api/users/ST001/", None, (401, 200, 404, 200, 200)),
    ("patch", "/api/users/ST001/", {"department": "Deck"}, (401, 403, 403, 403, 200)),
    ("patch", "/api/users/ST001/", {"role": "port_engineer"}, (401, 403, 403, 403, 200)),
    ("patch", "/api/users/ST001/", {"is_active": False, "change_reason": "Left the company"}, (401, 403, 403, 403, 200)),
    ("post", "/api/users/ST050/approve/", {}, (401, 403, 403, 200, 200)),
    ("post", "/api/users/ST050/reject/", {}, (401, 403, 403, 200, 200)),
    ("post", "/api/users/ST001/reset-password/", {"new_password": NEW_PASSWORD}, (401, 403, 403, 403, 200)),
    ("get", "/api/users/me/", None, (401, 200, 200, 200, 200)),
    ("patch", "/api/users/me/", {"phone": "123"}, (401, 200, 200, 200, 200)),
    ("post", "/api/users/me/password", {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
     (401, 200, 200, 200, 200)),
    ("delete", "/api/auth/token", None, (401, 204, 204, 204, 204)),
]
WHO = ["anonymous", "staff", "other_staff", "engineer", "admin"]


@pytest.mark.parametrize(("method", "path", "body", "expected"), USER_MATRIX,
                         ids=[f"{m} {p} {sorted(b or {})}" for m, p, b, _ in USER_MATRIX])
@pytest.mark.parametrize("who", WHO)
def test_user_endpoint_role_matrix(anon_api, api, personas, method, path, body, expected, who):
    register(anon_api)
    client = anon_api if who == "anonymous" else api(personas[who])
    kwargs = {"format": "json"} if body is not None else {}
    response = getattr(client, method)(path, body, **kwargs) if body is not None else getattr(client, method)(path)
    status = expected[WHO.index(who)]
    assert response.status_code == status, response.content
    if status >= 400:
        assert response.json()["success"] is False


def test_a_stale_bearer_header_does_not_block_logging_in(staff):
    client = bearer("0" * 64)
    assert_envelope(client.get("/api/users/me/"), 401)
    response = get_token(client, "ST001")
    assert response.status_code == 200 and response.json()["token"]
