"""Who may do what with maintenance requests and inventory.

One table drives the API, the portal, the admin and the services:

- ``ACTION_STATES``: the statuses an action can start from at all. Outside
  them nobody may do it: the services raise ``TransitionError`` (409).
- ``_ROLE_RULES``: who may do it from one of those statuses. A user the rule
  refuses gets ``PermissionDenied`` (403) from the services.

So "409" means "nobody could do that now", "403" means "someone could, not you".
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from core.permissions import is_manager

from .models import RequestStatus

OPEN_STATUSES = frozenset({RequestStatus.PENDING, RequestStatus.APPROVED, RequestStatus.IN_PROGRESS})
ALL_STATUSES = frozenset(RequestStatus.values)

# action -> statuses it may start from (anyone, before role checks)
ACTION_STATES: dict[str, frozenset[str]] = {
    "edit": OPEN_STATUSES,
    "approve": frozenset({RequestStatus.PENDING}),
    "reject": frozenset({RequestStatus.PENDING}),
    "assign": OPEN_STATUSES,
    "start": frozenset({RequestStatus.APPROVED}),
    "complete": frozenset({RequestStatus.IN_PROGRESS}),
    "cancel": OPEN_STATUSES,
    "comment": ALL_STATUSES,
    "upload": ALL_STATUSES,
}

REQUEST_ACTIONS = frozenset(ACTION_STATES)


def _is_requester(user, obj) -> bool:
    return bool(user and user.is_authenticated and obj.requested_by_id == user.pk)


def _is_assignee(user, obj) -> bool:
    return bool(user and user.is_authenticated and obj.assigned_to_id is not None and obj.assigned_to_id == user.pk)


def can_view_request(user, obj) -> bool:
    """Managers see every request; staff the ones they created or are assigned to."""
    return is_manager(user) or _is_requester(user, obj) or _is_assignee(user, obj)


_ROLE_RULES = {
    # the requester may edit while pending, managers until completion
    "edit": lambda u, o: is_manager(u) or (_is_requester(u, o) and o.status == RequestStatus.PENDING),
    "approve": lambda u, o: is_manager(u),
    "reject": lambda u, o: is_manager(u),
    "assign": lambda u, o: is_manager(u),
    "start": lambda u, o: is_manager(u) or _is_assignee(u, o),
    "complete": lambda u, o: is_manager(u) or _is_assignee(u, o),
    # the requester while pending or approved, managers before completion
    "cancel": lambda u, o: (
        is_manager(u) or (_is_requester(u, o) and o.status in (RequestStatus.PENDING, RequestStatus.APPROVED))
    ),
    "comment": can_view_request,
    "upload": can_view_request,
}


def state_allows(action: str, obj) -> bool:
    """Whether ``action`` can happen from ``obj``'s status at all."""
    return obj.status in ACTION_STATES[action]


def role_allows(action: str, user, obj) -> bool:
    """Whether ``user`` may do ``action`` on ``obj`` (given the state allows it)."""
    return bool(user and user.is_authenticated and _ROLE_RULES[action](user, obj))


def can_do(action: str, user, obj) -> bool:
    return state_allows(action, obj) and role_allows(action, user, obj)


def can_edit_request(user, obj) -> bool:
    """The requester while pending; managers until completion."""
    return can_do("edit", user, obj)


def can_manage_inventory(user) -> bool:
    """Everyone logged in reads the inventory; managers create, edit and adjust."""
    return is_manager(user)


# ---- DRF permission classes -------------------------------------------------


class CanViewRequest(BasePermission):
    """Logged-in users; object access only for requests they may see.

    The API selects requests through ``requests_visible_to`` so a request the
    user may not see is a 404 before this check; it is kept as a second lock."""

    message = "You may not see this maintenance request."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request, view, obj):
        return can_view_request(request.user, obj)


class InventoryPermission(BasePermission):
    """Read for every logged-in user; writes for administrators and port engineers."""

    message = "Only administrators and port engineers may change the inventory."

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            return True
        return can_manage_inventory(request.user)
