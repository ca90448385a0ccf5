"""Who may see and change an emergency.

Anyone logged in may report one. Managers (administrators and port
engineers) see every emergency and move it through its life cycle; staff see
the ones they reported or are assigned to, and the reporter may correct the
details while it is still ``reported``."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from core.permissions import is_manager

from .models import EmergencyStatus

TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    # action: (statuses it may start from, status it leads to)
    "acknowledge": ((EmergencyStatus.REPORTED,), EmergencyStatus.ACKNOWLEDGED),
    "dispatch": ((EmergencyStatus.ACKNOWLEDGED,), EmergencyStatus.DISPATCHED),
    "resolve": ((EmergencyStatus.ACKNOWLEDGED, EmergencyStatus.DISPATCHED), EmergencyStatus.RESOLVED),
    "close": ((EmergencyStatus.RESOLVED,), EmergencyStatus.CLOSED),
}
ASSIGNABLE_STATUSES = (EmergencyStatus.REPORTED, EmergencyStatus.ACKNOWLEDGED, EmergencyStatus.DISPATCHED)
MANAGER_EDITABLE_STATUSES = ASSIGNABLE_STATUSES + (EmergencyStatus.RESOLVED,)


def _logged_in(user) -> bool:
    return bool(user and user.is_authenticated)


def can_view_emergency(user, obj) -> bool:
    if not _logged_in(user):
        return False
    if is_manager(user):
        return True
    return obj.reported_by_id == user.pk or obj.assigned_to_id == user.pk


def can_report_emergency(user) -> bool:
    return _logged_in(user)


def can_edit_emergency(user, obj) -> bool:
    """Managers until it is closed; the reporter while it is still reported."""
    if not _logged_in(user):
        return False
    if is_manager(user):
        return obj.status in MANAGER_EDITABLE_STATUSES
    return obj.reported_by_id == user.pk and obj.status == EmergencyStatus.REPORTED


def can_handle_emergency(user) -> bool:
    """Acknowledge, dispatch, resolve, close and assign: managers only."""
    return is_manager(user)


class CanViewEmergency(BasePermission):
    message = "You may not see this emergency."

    def has_permission(self, request, view):
        return _logged_in(request.user)

    def has_object_permission(self, request, view, obj):
        return can_view_emergency(request.user, obj)


class CanHandleEmergency(BasePermission):
    message = "Only administrators and port engineers may handle emergencies."

    def has_permission(self, request, view):
        return can_handle_emergency(request.user)
