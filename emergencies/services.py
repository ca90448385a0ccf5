"""Emergency writes: report, edit, assign, and the life cycle
reported -> acknowledged -> dispatched -> resolved -> closed
(resolve also straight from acknowledged; close only from resolved).

Keyword-only, atomic, each accepting the change ``reason``. Role refusals are
``PermissionDenied`` (403), bad input ``DomainError`` (400), an illegal move
``TransitionError`` (409) that changes nothing."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.utils import timezone

from accounts.models import User
from audit.context import acting
from core.actions import action
from core.codes import next_code
from core.errors import DomainError, TransitionError
from core.lengths import max_length
from core.signals import domain_event

from .models import DESCRIPTION_MAX_LENGTH, Emergency, EmergencyStatus, EmergencyType, Severity
from .permissions import (
    ASSIGNABLE_STATUSES,
    TRANSITIONS,
    can_edit_emergency,
    can_handle_emergency,
    can_report_emergency,
)

EDITABLE_FIELDS = ("vessel", "emergency_type", "description", "location", "severity", "assigned_to")
_TIMESTAMP = {
    EmergencyStatus.ACKNOWLEDGED: "acknowledged_at",
    EmergencyStatus.DISPATCHED: "dispatched_at",
    EmergencyStatus.RESOLVED: "resolved_at",
    EmergencyStatus.CLOSED: "closed_at",
}
#: the text fields' limits: the model's, and the description's constant beside it
_LIMITS = {"vessel": max_length(Emergency, "vessel"), "location": max_length(Emergency, "location"),
           "description": DESCRIPTION_MAX_LENGTH}


def _event(event_type: str, emergency: Emergency, severity: str, **data) -> None:
    domain_event.send(
        sender=Emergency,
        event_type=event_type,
        entity_type="emergency",
        entity_id=emergency.code,
        event_data={
            "code": emergency.code,
            "vessel": emergency.vessel,
            "emergency_type": emergency.emergency_type,
            "severity": emergency.severity,
            "status": emergency.status,
            **data,
        },
        severity=severity,
        request=None,
    )


def _clean(fields: dict) -> dict:
    cleaned = {}
    for name, value in fields.items():
        if name == "assigned_to":
            cleaned[name] = value
            continue
        value = "" if value is None else str(value).strip()
        if name in ("vessel", "description") and not value:
            raise DomainError("This field is required.", field=name)
        if name == "emergency_type" and value not in EmergencyType.values:
            raise DomainError(f"Unknown emergency type {value!r}.", field=name)
        if name == "severity" and value not in Severity.values:
            raise DomainError(f"Unknown severity {value!r}; choose low, high or critical.", field=name)
        limit = _LIMITS.get(name)
        if limit and len(value) > limit:
            raise DomainError(f"At most {limit} characters.", field=name)
        cleaned[name] = value
    return cleaned


def _check_assignee(assignee) -> User | None:
    if assignee is None:
        return None
    if isinstance(assignee, str):
        found = User.objects.filter(user_id__iexact=assignee.strip()).first()
        if found is None:
            raise DomainError(f"Unknown user {assignee!r}.", field="assigned_to")
        assignee = found
    if not (assignee.is_active and assignee.is_approved):
        raise DomainError(f"{assignee.user_id} is not an active, approved account.", field="assigned_to")
    return assignee


def _lock(emergency: Emergency) -> Emergency:
    return Emergency.objects.select_for_update().get(pk=emergency.pk)


def _sync(src: Emergency, dst: Emergency) -> Emergency:
    if src is not dst:
        for field in src._meta.concrete_fields:
            setattr(dst, field.attname, getattr(src, field.attname))
    return dst


@action("Reported emergency {obj.code} ({obj.emergency_type}, {obj.severity})", refused="create")
def report_emergency(
    *,
    actor,
    vessel: str,
    emergency_type: str,
    description: str,
    location: str = "",
    severity: str = Severity.HIGH,
    assigned_to: User | None = None,
    reason: str = "",
) -> Emergency:
    """Anyone logged in reports an emergency; only managers may assign it at once.
    Sends ``emergency_created`` (critical for critical emergencies, else warning)."""
    if not can_report_emergency(actor):
        raise PermissionDenied("Log in to report an emergency.")
    if assigned_to is not None and not can_handle_emergency(actor):
        raise PermissionDenied("Only administrators and port engineers may assign emergencies.")
    values = _clean(
        {
            "vessel": vessel,
            "emergency_type": emergency_type,
            "description": description,
            "location": location,
            "severity": severity,
        }
    )
    assignee = _check_assignee(assigned_to)
    with acting(actor, reason):
        emergency = Emergency(code=next_code("EMG"), reported_by=actor, assigned_to=assignee, **values)
        emergency.save()
        _event(
            "emergency_created",
            emergency,
            "critical" if emergency.severity == Severity.CRITICAL else "warning",
            reported_by=actor.user_id,
            location=emergency.location,
        )
        return emergency


@action("Edited emergency {obj.code}", target="emergency", refused="update")
def update_emergency(*, emergency: Emergency, actor, reason: str = "", **fields) -> Emergency:
    """Correct the details: managers until closed, the reporter while still reported.
    ``assigned_to`` only by managers. Escalation to critical sends ``emergency_escalated``."""
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise DomainError(f"These fields cannot be changed: {', '.join(unknown)}.", field=unknown[0])
    values = _clean(fields)
    with acting(actor, reason):
        locked = _lock(emergency)
        if not can_edit_emergency(actor, locked):
            if can_handle_emergency(actor) or locked.reported_by_id == getattr(actor, "pk", None):
                raise TransitionError(f"Emergency {locked.code} is {locked.status} and can no longer be edited.")
            raise PermissionDenied("You may not edit this emergency.")
        if "assigned_to" in values:
            if not can_handle_emergency(actor):
                raise PermissionDenied("Only administrators and port engineers may assign emergencies.")
            values["assigned_to"] = _check_assignee(values["assigned_to"])
        changes = {k: v for k, v in values.items() if getattr(locked, k) != v}
        if not changes:
            return _sync(locked, emergency)
        old_severity = locked.severity
        for name, value in changes.items():
            setattr(locked, name, value)
        locked.save(update_fields=[*changes, "updated_at"])
        if "severity" in changes and locked.severity == Severity.CRITICAL and old_severity != Severity.CRITICAL:
            _event("emergency_escalated", locked, "critical", old_severity=old_severity, by=actor.user_id)
        return _sync(locked, emergency)


def _move(*, emergency: Emergency, actor, reason: str, action: str) -> Emergency:
    if not can_handle_emergency(actor):
        raise PermissionDenied("Only administrators and port engineers may handle emergencies.")
    sources, target = TRANSITIONS[action]
    with acting(actor, reason):
        locked = _lock(emergency)
        if locked.status not in sources:
            allowed = " or ".join(sources)
            raise TransitionError(
                f"Cannot {action} emergency {locked.code}: it is {locked.status}; only {allowed} emergencies can be {_past(action)}."
            )
        old = locked.status
        locked.status = target
        stamp = _TIMESTAMP[target]
        setattr(locked, stamp, timezone.now())
        locked.save(update_fields=["status", stamp, "updated_at"])
        _event(f"emergency_{target}", locked, "info", old_status=old, by=actor.user_id)
        return _sync(locked, emergency)


def _past(action: str) -> str:
    return {"acknowledge": "acknowledged", "dispatch": "dispatched", "resolve": "resolved", "close": "closed"}[action]


@action("Acknowledged emergency {obj.code}", target="emergency", refused="status_change")
def acknowledge_emergency(*, emergency: Emergency, actor, reason: str = "") -> Emergency:
    """reported -> acknowledged."""
    return _move(emergency=emergency, actor=actor, reason=reason, action="acknowledge")


@action("Dispatched help to emergency {obj.code}", target="emergency", refused="status_change")
def dispatch_emergency(*, emergency: Emergency, actor, reason: str = "") -> Emergency:
    """acknowledged -> dispatched."""
    return _move(emergency=emergency, actor=actor, reason=reason, action="dispatch")


@action("Resolved emergency {obj.code}", target="emergency", refused="status_change")
def resolve_emergency(*, emergency: Emergency, actor, reason: str = "") -> Emergency:
    """acknowledged or dispatched -> resolved."""
    return _move(emergency=emergency, actor=actor, reason=reason, action="resolve")


@action("Closed emergency {obj.code}", target="emergency", refused="status_change")
def close_emergency(*, emergency: Emergency, actor, reason: str = "") -> Emergency:
    """resolved -> closed."""
    return _move(emergency=emergency, actor=actor, reason=reason, action="close")


@action("Assigned emergency {obj.code} to {obj.assigned_to.user_id}", target="emergency", refused="assign")
def assign_emergency(*, emergency: Emergency, actor, assignee, reason: str = "") -> Emergency:
    """Managers assign an active emergency to an approved, active account."""
    if not can_handle_emergency(actor):
        raise PermissionDenied("Only administrators and port engineers may assign emergencies.")
    if assignee is None:
        raise DomainError("Choose whom to assign.", field="assigned_to")
    assignee = _check_assignee(assignee)
    with acting(actor, reason):
        locked = _lock(emergency)
        if locked.status not in ASSIGNABLE_STATUSES:
            raise TransitionError(f"Cannot assign emergency {locked.code}: it is {locked.status}.")
        if locked.assigned_to_id == assignee.pk:
            return _sync(locked, emergency)
        previous = locked.assigned_to.user_id if locked.assigned_to else None
        locked.assigned_to = assignee
        locked.save(update_fields=["assigned_to", "updated_at"])
        _event("emergency_assigned", locked, "info", assigned_to=assignee.user_id, previous=previous, by=actor.user_id)
        return _sync(locked, emergency)
