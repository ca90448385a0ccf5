"""Registration abuse (issue 11, item 10): a rate limit per client IP through
the shared cache, API and portal together; a second pending account with the
same e-mail refused; administrators warned of a pending id one character away
from an existing one."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts import selectors, services
from accounts.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "Harbour-Newcomer-88"
ATTACKER = "203.0.113.77"


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.ACCOUNTS_REGISTRATION_LIMIT = 3
    settings.ACCOUNTS_REGISTRATION_MINUTES = 60
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def api_register(n, ip=ATTACKER, **fields):
    body = {"user_id": f"NEW{n:03d}", "password": PASSWORD, "full_name": f"Newcomer {n}", "email": f"new{n}@example.com"}
    body.update(fields)
    return APIClient().post("/api/auth/register", body, format="json", REMOTE_ADDR=ip)


def portal_register(n, ip=ATTACKER, **fields):
    data = {"user_id": f"NEW{n:03d}", "full_name": f"Newcomer {n}", "email": f"new{n}@example.com",
            "password1": PASSWORD, "password2": PASSWORD}
    data.update(fields)
    return Client(REMOTE_ADDR=ip).post("/register/", data)


def test_registration_is_rate_limited_per_address_across_api_and_portal(db):
    assert api_register(1).status_code == 201
    assert portal_register(2).status_code == 302
    assert api_register(3, email="not-an-address").status_code == 400  # a refused attempt counts too
    limited = api_register(4)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert "Too many registrations from your address" in limited.json()["error"]["message"]
    assert 0 < int(limited["Retry-After"]) <= 3600
    page = portal_register(5)
    assert page.status_code == 429 and "Too many registrations from your address" in page.content.decode()
    assert not User.objects.filter(user_id__in=["NEW004", "NEW005"]).exists()
    # another address is not affected
    assert api_register(6, ip="198.51.100.5").status_code == 201


def test_a_second_pending_account_with_the_same_email_is_refused(db):
    assert api_register(1, email="Sam@Example.com").status_code == 201
    refused = api_register(2, email="sam@example.com")
    assert refused.status_code == 400
    assert refused.json()["error"]["fields"]["email"] == (
        "An account with this e-mail address is already awaiting approval; "
        "ask an administrator or port engineer to approve it."
    )
    page = portal_register(3, ip="198.51.100.5", email="SAM@example.com")
    assert page.status_code == 200 and "already awaiting approval" in page.content.decode()
    assert User.objects.filter(email__iexact="sam@example.com").count() == 1


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("PE001", "PE0O1", True),  # one changed
        ("PE001", "PE01", True),  # one removed
        ("PE001", "PE0011", True),  # one added
        ("pe001", "PE0O1", True),  # case ignored
        ("PE001", "PE001", False),  # the same id
        ("PE001", "PEOO1", False),  # two changed
        ("PE001", "PE00123", False),
    ],
)
def test_one_edit_apart(a, b, expected):
    assert selectors.one_edit_apart(a, b) is expected


def test_admins_see_a_warning_for_a_pending_lookalike_id(engineer, admin_user, portal):
    services.register_user(user_id="PE0O1", password=PASSWORD, full_name=engineer.full_name, email="pe0o1@example.net")
    services.register_user(user_id="ST123", password=PASSWORD, full_name="Someone Else", email="st123@example.net")
    client = portal(admin_user)
    listing = client.get("/admin/accounts/user/?approval_status__exact=pending").content.decode()
    assert "Looks like PE001" in listing
    assert listing.count("lookalike-warning") == 1
    pending = User.objects.get(user_id="PE0O1")
    page = client.get(f"/admin/accounts/user/{pending.pk}/change/").content.decode()
    assert "The user ID PE0O1 is one character away from the existing account PE001" in page
    assert "posing as them" in page
    other = User.objects.get(user_id="ST123")
    assert "one character away" not in client.get(f"/admin/accounts/user/{other.pk}/change/").content.decode()
    # an approved account is no longer flagged
    services.approve_user(user=pending, actor=admin_user)
    assert "Looks like" not in client.get("/admin/accounts/user/").content.decode()


def test_port_engineers_approving_in_the_portal_see_the_warning_too(engineer, portal):
    services.register_user(user_id="PE0O1", password=PASSWORD, full_name=engineer.full_name, email="pe0o1@example.net")
    page = portal(engineer).get("/users/PE0O1/").content.decode()
    assert "The user ID PE0O1 is one character away from the existing account PE001" in page
    assert "message-warning" in page
