"""Who may read which audit data (SPEC "The API").

- administrators and port engineers: everything;
- a user: their own activity timeline;
- staff: the entity history of maintenance requests they created or are
  assigned to.

Each answer is the same whether or not the asked-for user or entity exists,
so a refusal (403) never reveals existence.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from core.permissions import IsManager, is_manager


class CanReadAllAuditData(IsManager):
    message = "Only administrators and port engineers may read audit data."


def can_view_user_activity(user, user_id: str) -> bool:
    """Managers see everyone's timeline; a user sees their own."""
    if not (user and user.is_authenticated):
        return False
    return is_manager(user) or getattr(user, "user_id", None) == user_id


def can_view_entity_history(user, entity_type: str, entity_id: str) -> bool:
    """Managers see every entity's history; staff only that of the
    maintenance requests they created or are assigned to."""
    if not (user and user.is_authenticated):
        return False
    if is_manager(user):
        return True
    if entity_type != "maintenance_request" or not entity_id or len(entity_id) > 64 or "\x00" in entity_id:
        return False
    from maintenance.selectors import requests_visible_to

    return requests_visible_to(user).filter(code=entity_id).exists()


class CanViewUserActivity(BasePermission):
    message = "You may read only your own activity."

    def has_permission(self, request, view):
        return can_view_user_activity(request.user, view.kwargs.get("user_id", ""))


class CanViewEntityHistory(BasePermission):
    message = "You may read the history only of maintenance requests you created or are assigned to."

    def has_permission(self, request, view):
        return can_view_entity_history(request.user, view.kwargs.get("entity_type", ""), view.kwargs.get("entity_id", ""))
