"""Account writes: registration, approval, passwords, roles, profile, lock-out.

Every write is keyword-only, atomic and accepts the change ``reason``. Role
rules are enforced here, so the API, the portal and the admin behave alike:
refusals are ``django.core.exceptions.PermissionDenied`` (403), bad input a
:class:`core.errors.DomainError` (400), an illegal approval move a
:class:`core.errors.TransitionError` (409). The writes on an existing account are declared
with ``core.actions.action``: a refusal is a ``failed`` audit_trail row of the account with the
error message; each says what it did in words itself (``_send_activity``), and nothing when it
changed nothing. No password, hash or token ever leaves this module in a signal, an exception
or a message.
"""

from __future__ import annotations

import re

from django.contrib.auth import password_validation
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from audit.context import acting, audit_context
from core.actions import action, record
from core.errors import DomainError, TransitionError
from core.lengths import max_length
from core.permissions import is_admin, is_manager
from core.signals import domain_event

from . import conf, lockout, tokens
from .models import ApprovalStatus, Role, User

PROFILE_FIELDS = ("full_name", "email", "phone", "department")
USER_ID_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,19}$")
RESERVED_USER_IDS = frozenset({"ME", "SYSTEM", "ANONYMOUS"})

_LIMITS = {name: max_length(User, name) for name in ("full_name", "phone", "department")}
_FIELD_WORDS = {"full_name": "full name", "email": "e-mail", "phone": "phone", "department": "department"}


# --- helpers -----------------------------------------------------------------


def _lock(user: User) -> User:
    """Re-read ``user`` under a row lock, so two concurrent moves serialize."""
    return User.objects.select_for_update().get(pk=user.pk)


def _require_manager(actor, what: str) -> None:
    if not is_manager(actor):
        raise PermissionDenied(f"Only administrators and port engineers may {what}.")


def _require_admin(actor, what: str) -> None:
    if not is_admin(actor):
        raise PermissionDenied(f"Only administrators may {what}.")


def _validate_password(password: str, *, user: User, field: str) -> None:
    if not isinstance(password, str) or not password:
        raise DomainError("A password is required.", field=field)
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        raise DomainError(" ".join(exc.messages), field=field) from None


def _clean_profile(fields: dict, *, instance: User | None = None) -> dict:
    unknown = sorted(set(fields) - set(PROFILE_FIELDS))
    if unknown:
        raise DomainError(f"These fields cannot be changed here: {', '.join(unknown)}.", field=unknown[0])
    cleaned = {}
    for name, value in fields.items():
        value = "" if value is None else str(value).strip()
        limit = _LIMITS.get(name)
        if limit and len(value) > limit:
            raise DomainError(f"At most {limit} characters.", field=name)
        if name == "email" and value:
            try:
                validate_email(value)
            except ValidationError:
                raise DomainError("Enter a valid email address.", field="email") from None
        cleaned[name] = value
    return cleaned


def _changed(user: User, values: dict) -> dict:
    return {k: v for k, v in values.items() if getattr(user, k) != v}


def _send_activity(text: str, reason: str = "") -> None:
    """The person's action in words (actor: the audit context's), its details the reason given;
    through core.actions.record, so the admin knows the service said what it did."""
    record(text, reason=reason)


def _role_label(role: str) -> str:
    return str(Role(role).label) if role in Role.values else role


def _send_event(event_type: str, user: User, data: dict, severity: str = "info", request=None) -> None:
    domain_event.send(
        sender=User,
        event_type=event_type,
        entity_type="user",
        entity_id=user.user_id,
        event_data=data,
        severity=severity,
        request=request,
    )


def normalize_user_id(user_id: str) -> str:
    return (user_id or "").strip().upper()


# --- registration and account creation ----------------------------------------


@transaction.atomic
def register_user(
    *,
    user_id: str,
    password: str,
    full_name: str,
    email: str,
    phone: str = "",
    department: str = "",
    reason: str = "",
) -> User:
    """Create a self-registered account, ``pending`` until a manager approves
    it. A second pending account with the same e-mail address is refused
    (the rate limit per client IP is the caller's: :func:`registration_refusal`)."""
    if email and User.objects.filter(email__iexact=str(email).strip(), approval_status=ApprovalStatus.PENDING).exists():
        raise DomainError(
            "An account with this e-mail address is already awaiting approval; "
            "ask an administrator or port engineer to approve it.",
            field="email",
            code="duplicate_pending",
        )
    with acting(normalize_user_id(user_id), reason or "Self-registration"):
        user = _build_user(
            user_id=user_id,
            password=password,
            full_name=full_name,
            email=email,
            phone=phone,
            department=department,
            role=Role.STAFF,
            approval_status=ApprovalStatus.PENDING,
        )
        user.save()
        _send_event("user_registered", user, {"user_id": user.user_id, "approval_status": user.approval_status})
        _send_activity(f"Registered account {user.user_id} (awaiting approval)", reason)
        return user


def registration_refusal(*, ip: str | None) -> tuple[str, int] | None:
    """Count a registration attempt from ``ip``; when the address has made too
    many, the sentence to show and the seconds until it may try again."""
    wait = lockout.registration_attempt(ip)
    if wait is None:
        return None
    minutes = max(1, (wait + 59) // 60)
    return (
        f"Too many registrations from your address. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        wait,
    )


@transaction.atomic
def create_user(
    *,
    actor,
    user_id: str,
    password: str,
    role: str = Role.STAFF,
    full_name: str = "",
    email: str = "",
    phone: str = "",
    department: str = "",
    reason: str = "",
) -> User:
    """An administrator creates an account; it is approved at once."""
    _require_admin(actor, "create accounts")
    if role not in Role.values:
        raise DomainError(f"Unknown role {role!r}.", field="role")
    with acting(actor, reason):
        user = _build_user(
            user_id=user_id,
            password=password,
            full_name=full_name,
            email=email,
            phone=phone,
            department=department,
            role=role,
            approval_status=ApprovalStatus.APPROVED,
        )
        user.approved_by = actor
        user.approved_at = timezone.now()
        user.save()
        _send_activity(f"Created account {user.user_id} ({_role_label(role)})", reason)
        return user


def check_new_user(
    *, user_id: str, password: str, full_name: str = "", email: str = "", phone: str = "", department: str = ""
) -> None:
    """Validate a new account's fields as register_user/create_user would,
    saving nothing (forms call it to show errors beside their fields)."""
    _build_user(
        user_id=user_id,
        password=password,
        full_name=full_name,
        email=email,
        phone=phone,
        department=department,
        role=Role.STAFF,
        approval_status=ApprovalStatus.PENDING,
    )


def _build_user(*, user_id, password, full_name, email, phone, department, role, approval_status) -> User:
    user_id = normalize_user_id(user_id)
    if not USER_ID_RE.match(user_id):
        raise DomainError(
            "A user ID has 2 to 20 letters, digits, '_' or '-', starting with a letter or digit.",
            field="user_id",
        )
    if user_id in RESERVED_USER_IDS:
        raise DomainError("This user ID is reserved.", field="user_id")
    if User.objects.filter(user_id__iexact=user_id).exists():
        raise DomainError("A user with this user ID already exists.", field="user_id", code="duplicate")
    profile = _clean_profile({"full_name": full_name, "email": email, "phone": phone, "department": department})
    user = User(user_id=user_id, role=role, approval_status=approval_status, **profile)
    _validate_password(password, user=user, field="password")
    user.set_password(password)
    return user


# --- approval -------------------------------------------------------------------


def _decide(*, user: User, actor, reason: str, to: str, verb: str) -> User:
    _require_manager(actor, f"{verb} accounts")
    past = "approved" if to == ApprovalStatus.APPROVED else "rejected"
    with acting(actor, reason):
        locked = _lock(user)
        if locked.approval_status != ApprovalStatus.PENDING:
            raise TransitionError(
                f"Cannot {verb} account {locked.user_id}: it is {locked.approval_status}; "
                f"only pending accounts can be {past}."
            )
        locked.approval_status = to
        locked.approved_by = actor
        locked.approved_at = timezone.now()
        locked.save(update_fields=["approval_status", "approved_by", "approved_at"])
        _copy(locked, user, ["approval_status", "approved_by", "approved_at"])
        _send_event(f"user_{past}", locked, {"user_id": locked.user_id, "by": actor.user_id, "reason": reason})
        _send_activity(f"{past.capitalize()} account {locked.user_id}", reason)
        return user


def _copy(src: User, dst: User, names) -> None:
    if src is not dst:
        for name in names:
            setattr(dst, name, getattr(src, name))


@action(None, target="user", refused="approve")
def approve_user(*, user: User, actor, reason: str = "") -> User:
    """pending -> approved (managers only)."""
    return _decide(user=user, actor=actor, reason=reason, to=ApprovalStatus.APPROVED, verb="approve")


@action(None, target="user", refused="reject")
def reject_user(*, user: User, actor, reason: str = "") -> User:
    """pending -> rejected (managers only)."""
    return _decide(user=user, actor=actor, reason=reason, to=ApprovalStatus.REJECTED, verb="reject")


# --- passwords ------------------------------------------------------------------


@transaction.atomic
def change_password(
    *, user: User, old_password: str, new_password: str, reason: str = "", keep_token=None
) -> User:
    """The user changes their own password, proving the old one first. Their
    other API tokens are revoked (``keep_token``, the one in use, stays); their
    other browser sessions end because Django checks each session against the
    password hash (the portal and the API keep the one in use with
    ``update_session_auth_hash``)."""
    with acting(user, reason):
        locked = _lock(user)
        if not isinstance(old_password, str) or not locked.check_password(old_password):
            raise DomainError("The current password is incorrect.", field="old_password")
        if old_password == new_password:
            raise DomainError("The new password must differ from the current one.", field="new_password")
        _validate_password(new_password, user=locked, field="new_password")
        locked.set_password(new_password)
        locked.save(update_fields=["password"])
        _copy(locked, user, ["password"])
        tokens.revoke_tokens(user=locked, keep=keep_token, reason="Password changed")
        _send_activity("Changed their password", reason)
        return user


@action(None, target="user", refused="password_reset")
def reset_password(*, user: User, actor, new_password: str, reason: str = "") -> User:
    """An administrator sets a new password; the lock-out is lifted and all
    the user's API tokens are revoked (whoever held them no longer should);
    their sessions end with the old password hash."""
    _require_admin(actor, "reset passwords")
    with acting(actor, reason):
        locked = _lock(user)
        _validate_password(new_password, user=locked, field="new_password")
        locked.set_password(new_password)
        locked.failed_login_count = 0
        locked.locked_until = None
        locked.save(update_fields=["password", "failed_login_count", "locked_until"])
        _copy(locked, user, ["password", "failed_login_count", "locked_until"])
        lockout.clear(locked.user_id)
        tokens.revoke_tokens(user=locked, actor=actor, reason="Password reset")
        _send_activity(f"Reset the password of {locked.user_id}", reason)
        return user


# --- role, profile, active flag ------------------------------------------------------


@action(None, target="user", refused="role_change")
def change_role(*, user: User, actor, role: str, reason: str = "") -> User:
    """Administrators only. The last active administrator keeps the role."""
    _require_admin(actor, "change roles")
    if role not in Role.values:
        raise DomainError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.", field="role")
    with acting(actor, reason):
        locked = _lock(user)
        old = locked.role
        if old == role:
            return user
        _raise_first(account_change_problems(user=locked, actor=actor, role=role))
        locked.role = role
        locked.save(update_fields=["role"])
        _copy(locked, user, ["role"])
        _send_event("role_changed", locked, {"user_id": locked.user_id, "old": old, "new": role, "by": actor.user_id})
        _send_activity(f"Changed the role of {locked.user_id} from {_role_label(old)} to {_role_label(role)}", reason)
        return user


def _other_active_admins(user: User):
    return User.objects.filter(role=Role.ADMIN, is_active=True).exclude(pk=user.pk)


def account_change_problems(
    *, user: User, actor, role: str | None = None, active: bool | None = None
) -> dict[str, str]:
    """What would refuse a role or active-flag change, by field (empty: none).
    change_role and set_active enforce it; admin forms show it beside the field."""
    problems: dict[str, str] = {}
    losing_admin = (
        user.role == Role.ADMIN and user.is_active and ((role is not None and role != Role.ADMIN) or active is False)
    )
    if losing_admin and not _other_active_admins(user).exists():
        problems["role" if role is not None and role != Role.ADMIN else "is_active"] = (
            "At least one active administrator must remain."
        )
    if active is False and user.is_active and actor is not None and user.pk == getattr(actor, "pk", None):
        problems["is_active"] = "You cannot deactivate your own account."
    return problems


DEACTIVATION_REASON_REQUIRED = "A reason is required to deactivate an account; it is kept in the audit trail."


def deactivation_needs_reason(*, user: User, active: bool | None, reason: str | None) -> bool:
    """Deactivating an active account is refused without a reason (SPEC "Four eyes": cancel, reject
    and deactivate each say why); the portal, the admin and the API all ask through set_active."""
    return active is False and user.is_active and not (reason or "").strip()


def _raise_first(problems: dict[str, str]) -> None:
    for field, message in problems.items():
        raise DomainError(message, field=field)


@action(None, target="user", refused="update")
def update_profile(*, user: User, actor, reason: str = "", **fields) -> User:
    """Change profile fields (full_name, email, phone, department): the user
    themself or an administrator."""
    if not (actor and actor.is_authenticated and (actor.pk == user.pk or is_admin(actor))):
        raise PermissionDenied("Only administrators may edit another user's profile.")
    cleaned = _clean_profile(fields)
    with acting(actor, reason):
        locked = _lock(user)
        changes = _changed(locked, cleaned)
        if not changes:
            return user
        for name, value in changes.items():
            setattr(locked, name, value)
        locked.save(update_fields=list(changes))
        _copy(locked, user, list(changes))
        whose = "their profile" if actor.pk == locked.pk else f"the profile of {locked.user_id}"
        _send_activity(f"Updated {whose} ({', '.join(_FIELD_WORDS[name] for name in sorted(changes))})", reason)
        return user


@action(None, target="user", refused="update")
def set_active(*, user: User, actor, active: bool, reason: str = "") -> User:
    """Administrators (de)activate accounts; nobody deactivates themself.
    Deactivation deletes the account's tokens and sessions, so a later
    reactivation brings none of them back."""
    _require_admin(actor, "activate or deactivate accounts")
    if not isinstance(active, bool):
        raise DomainError("Must be true or false.", field="is_active")
    with acting(actor, reason):
        locked = _lock(user)
        if locked.is_active == active:
            return user
        _raise_first(account_change_problems(user=locked, actor=actor, active=active))
        if deactivation_needs_reason(user=locked, active=active, reason=reason):
            raise DomainError(DEACTIVATION_REASON_REQUIRED, field="change_reason")
        locked.is_active = active
        locked.save(update_fields=["is_active"])
        _copy(locked, user, ["is_active"])
        if not active:
            tokens.revoke_tokens(user=locked, actor=actor, reason="Account deactivated")
            tokens.end_sessions(user=locked)
        word = "activated" if active else "deactivated"
        _send_event(f"user_{word}", locked, {"user_id": locked.user_id, "by": actor.user_id})
        _send_activity(f"{word.capitalize()} account {locked.user_id}", reason)
        return user


# --- login ------------------------------------------------------------------------------


def lockout_message(until) -> str:
    minutes = max(1, int((until - timezone.now()).total_seconds() // 60) + 1)
    return (
        "This user ID is temporarily locked after too many failed login attempts. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''} or ask an administrator to reset your password."
    )


def login_refusal(user_id: str) -> str | None:
    """Why the account ``user_id`` may not log in, or None when it may (and
    for unknown ids: the caller shows its generic "invalid credentials").
    The per-address lock-out is the backend's to tell (accounts.lockout)."""
    user = User.objects.filter(user_id__iexact=normalize_user_id(user_id)).first()
    if user is None:
        return None
    if user.approval_status == ApprovalStatus.PENDING:
        return "Your account is awaiting approval by an administrator or port engineer."
    if user.approval_status == ApprovalStatus.REJECTED:
        return "Your account registration was rejected. Contact an administrator."
    if not user.is_active:
        return "Your account is inactive. Contact an administrator."
    if user.is_locked():
        return lockout_message(user.locked_until)
    return None


@transaction.atomic
def record_failed_login(*, user_id: str, ip: str | None = None, request=None) -> User | None:
    """Count one failed login of ``user_id`` from ``ip`` in the lock-out
    (accounts.lockout) and in ``failed_login_count``; when it starts a lock,
    domain_event ``account_locked`` (warning) says so, and a lock for every
    address sets ``locked_until``. Unknown ids are counted too; returns None for them."""
    user_id = normalize_user_id(user_id)
    started = lockout.record_failure(user_id, ip)
    user = User.objects.select_for_update().filter(user_id__iexact=user_id).first()
    if user is None:
        return None
    update = ["failed_login_count"]
    user.failed_login_count += 1
    if started is not None and started.scope == "everywhere":
        user.locked_until = started.until
        update.append("locked_until")
    with audit_context(reason="Failed login"):
        user.save(update_fields=update)
    if started is not None:
        _send_event(
            "account_locked",
            user,
            {
                "user_id": user.user_id,
                "failed_attempts": started.failures,
                "scope": started.scope,
                "ip_address": ip if started.scope == "address" else None,
                "locked_until": started.until.isoformat(),
                "minutes": conf.lockout_minutes(),
            },
            severity="warning",
            request=request,
        )
    return user


@transaction.atomic
def record_successful_login(*, user: User, ip: str | None = None) -> User:
    """A successful login ends this address's series of failures."""
    lockout.record_success(user.user_id, ip)
    if user.failed_login_count or (user.locked_until and not user.is_locked()):
        user.failed_login_count = 0
        user.locked_until = None
        with acting(user):
            user.save(update_fields=["failed_login_count", "locked_until"])
    return user
