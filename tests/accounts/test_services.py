"""accounts.services and selectors, called directly (as the portal, admin and commands do)."""

import time
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from accounts import lockout, selectors, services
from accounts.models import User
from audit.context import get_context
from core.errors import DomainError, TransitionError
from core.signals import activity, domain_event
from tests.conftest import PASSWORD

NEW_PASSWORD = "Quay-Side-Lantern-77"

pytestmark = pytest.mark.django_db


@pytest.fixture
def signals_seen():
    """Every domain_event and activity sent, with the change reason in force."""
    seen = []

    def on_event(sender, **kw):
        seen.append(("event", kw, get_context().reason))

    def on_activity(sender, **kw):
        seen.append(("activity", kw, get_context().reason))

    domain_event.connect(on_event, dispatch_uid="t-svc-event")
    activity.connect(on_activity, dispatch_uid="t-svc-activity")
    yield seen
    domain_event.disconnect(dispatch_uid="t-svc-event")
    activity.disconnect(dispatch_uid="t-svc-activity")


@contextmanager
def freeze_later(**delta):
    """The lock-out's clock, moved forward by ``delta``."""
    later = time.time() + timedelta(**delta).total_seconds()
    with mock.patch("accounts.lockout.time.time", return_value=later):
        yield


def pending(user_id="ST060"):
    return services.register_user(user_id=user_id, password=NEW_PASSWORD, full_name="New One", email=f"{user_id.lower()}@example.com")


def test_register_creates_a_pending_staff_account_with_a_hashed_password():
    user = pending("st060")
    assert (user.user_id, user.role, user.approval_status) == ("ST060", "staff", "pending")
    assert user.password != NEW_PASSWORD and user.check_password(NEW_PASSWORD)
    assert list(selectors.pending_users()) == [user]


def test_approve_sends_user_approved_with_the_reason(engineer, signals_seen):
    user = pending()
    services.approve_user(user=user, actor=engineer, reason="Crew list checked")
    user.refresh_from_db()
    assert user.approval_status == "approved" and user.approved_by == engineer and user.approved_at
    events = [(kw, reason) for kind, kw, reason in signals_seen if kind == "event" and kw["event_type"] == "user_approved"]
    assert len(events) == 1
    kw, reason = events[0]
    assert kw["severity"] == "info" and kw["entity_id"] == "ST060" and reason == "Crew list checked"
    assert any(kind == "activity" and kw["activity"] == "Approved account ST060" for kind, kw, _ in signals_seen)
    assert not selectors.pending_users().exists()


@pytest.mark.parametrize("decide", [services.approve_user, services.reject_user])
def test_only_pending_accounts_are_decided_and_only_by_managers(decide, staff, engineer):
    user = pending()
    with pytest.raises(PermissionDenied):
        decide(user=user, actor=staff)
    assert User.objects.get(pk=user.pk).approval_status == "pending"
    decide(user=user, actor=engineer)
    for again in (services.approve_user, services.reject_user):
        with pytest.raises(TransitionError, match="only pending accounts"):
            again(user=User.objects.get(pk=user.pk), actor=engineer)
    with pytest.raises(TransitionError):
        services.approve_user(user=staff, actor=engineer)  # create_user accounts are approved already


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({"approval_status": "pending"}, "awaiting approval"),
        ({"approval_status": "rejected"}, "rejected"),
        ({"is_active": False}, "inactive"),
        ({"locked_until": "future"}, "locked"),
        ({"locked_until": "past"}, None),
        ({}, None),
    ],
)
def test_login_refusal_explains_every_refused_state(make_user, setup, expected):
    if setup.get("locked_until") == "future":
        setup = {"locked_until": timezone.now() + timedelta(minutes=10)}
    elif setup.get("locked_until") == "past":
        setup = {"locked_until": timezone.now() - timedelta(minutes=1)}
    make_user("ST070", **setup)
    refusal = services.login_refusal("st070")
    if expected is None:
        assert refusal is None
    else:
        assert expected in refusal


def test_login_refusal_says_nothing_about_unknown_ids():
    assert services.login_refusal("NOBODY") is None
    assert services.record_failed_login(user_id="NOBODY") is None


def test_lock_runs_out_and_a_fresh_series_starts(staff, settings, signals_seen):
    settings.ACCOUNTS_LOCKOUT_THRESHOLD = 2
    settings.ACCOUNTS_LOCKOUT_MINUTES = 5
    services.record_failed_login(user_id="ST001", ip="192.0.2.7")
    user = services.record_failed_login(user_id="st001", ip="192.0.2.7")
    until = lockout.locked_until("ST001", "192.0.2.7")
    assert until is not None and until - timezone.now() <= timedelta(minutes=5)
    assert lockout.locked_until("ST001", "192.0.2.8") is None  # another address is not locked
    assert not user.is_locked()  # only the ceiling locks the account itself
    with freeze_later(minutes=5, seconds=2):
        assert lockout.locked_until("ST001", "192.0.2.7") is None
        services.record_failed_login(user_id="ST001", ip="192.0.2.7")
        assert lockout.locked_until("ST001", "192.0.2.7") is None  # a fresh series: one failure so far
        services.record_failed_login(user_id="ST001", ip="192.0.2.7")
        assert lockout.locked_until("ST001", "192.0.2.7") is not None
    locks = [kw for kind, kw, _ in signals_seen if kind == "event" and kw["event_type"] == "account_locked"]
    assert [(kw["severity"], kw["event_data"]["scope"], kw["event_data"]["ip_address"]) for kw in locks] == [
        ("warning", "address", "192.0.2.7")
    ] * 2
    user.refresh_from_db()
    assert user.failed_login_count == 4
    services.record_successful_login(user=user, ip="192.0.2.7")
    user.refresh_from_db()
    assert user.failed_login_count == 0 and user.locked_until is None


def test_change_password_rules(staff):
    with pytest.raises(DomainError) as wrong:
        services.change_password(user=staff, old_password="nope", new_password=NEW_PASSWORD)
    assert wrong.value.field == "old_password"
    with pytest.raises(DomainError) as weak:
        services.change_password(user=staff, old_password=PASSWORD, new_password="ST001")
    assert weak.value.field == "new_password"
    with pytest.raises(DomainError) as same:
        services.change_password(user=staff, old_password=PASSWORD, new_password=PASSWORD)
    assert same.value.field == "new_password"
    services.change_password(user=staff, old_password=PASSWORD, new_password=NEW_PASSWORD)
    assert User.objects.get(pk=staff.pk).check_password(NEW_PASSWORD)


def test_no_signal_or_error_ever_carries_a_password(staff, admin_user, signals_seen):
    user = pending()
    services.approve_user(user=user, actor=admin_user)
    services.change_password(user=staff, old_password=PASSWORD, new_password=NEW_PASSWORD)
    services.reset_password(user=user, actor=admin_user, new_password="Another-Harbour-Key-9")
    try:
        services.change_password(user=staff, old_password="Typed-Secret-55", new_password="Typed-Secret-66")
    except DomainError as exc:
        assert "Typed-Secret" not in str(exc)
    text = repr(signals_seen)
    for secret in (PASSWORD, NEW_PASSWORD, "Another-Harbour-Key-9", "Typed-Secret"):
        assert secret not in text
    assert User.objects.get(pk=staff.pk).password not in text
    kinds = [kw.get("activity") for kind, kw, _ in signals_seen if kind == "activity"]
    assert {f"Registered account {user.user_id} (awaiting approval)", f"Approved account {user.user_id}",
            "Changed their password", f"Reset the password of {user.user_id}"} <= set(kinds)


def test_reset_password_lifts_the_lock_and_is_for_admins(staff, engineer, admin_user):
    User.objects.filter(pk=staff.pk).update(locked_until=timezone.now() + timedelta(minutes=9), failed_login_count=9)
    with pytest.raises(PermissionDenied):
        services.reset_password(user=staff, actor=engineer, new_password=NEW_PASSWORD)
    services.reset_password(user=staff, actor=admin_user, new_password=NEW_PASSWORD, reason="Locked out")
    staff.refresh_from_db()
    assert staff.check_password(NEW_PASSWORD) and not staff.is_locked() and staff.failed_login_count == 0


def test_change_role_rules(staff, engineer, admin_user):
    with pytest.raises(PermissionDenied):
        services.change_role(user=staff, actor=engineer, role="admin")
    with pytest.raises(DomainError) as unknown:
        services.change_role(user=staff, actor=admin_user, role="captain")
    assert unknown.value.field == "role"
    with pytest.raises(DomainError, match="administrator must remain"):
        services.change_role(user=admin_user, actor=admin_user, role="staff")
    services.change_role(user=staff, actor=admin_user, role="port_engineer", reason="Promotion")
    assert User.objects.get(pk=staff.pk).role == "port_engineer"


def test_update_profile_by_self_or_admin_only(staff, other_staff, engineer, admin_user):
    services.update_profile(user=staff, actor=staff, full_name="Self Edit")
    services.update_profile(user=staff, actor=admin_user, department="Deck")
    for actor in (other_staff, engineer):
        with pytest.raises(PermissionDenied):
            services.update_profile(user=staff, actor=actor, full_name="Intruder")
    with pytest.raises(DomainError) as bad:
        services.update_profile(user=staff, actor=staff, role="admin")
    assert bad.value.field == "role"
    staff.refresh_from_db()
    assert (staff.full_name, staff.department, staff.role) == ("Self Edit", "Deck", "staff")


def test_set_active_rules(staff, engineer, admin_user):
    with pytest.raises(PermissionDenied):
        services.set_active(user=staff, actor=engineer, active=False)
    with pytest.raises(DomainError, match="your own"):
        services.set_active(user=admin_user, actor=admin_user, active=False)
    services.set_active(user=staff, actor=admin_user, active=False, reason="Left the company")
    assert User.objects.get(pk=staff.pk).is_active is False
    assert "inactive" in services.login_refusal("ST001")


def test_users_visible_to(personas):
    assert set(selectors.users_visible_to(personas["engineer"])) == set(personas.values())
    assert list(selectors.users_visible_to(personas["staff"])) == [personas["staff"]]
