"""Role checks shared by the API and the portal."""

from rest_framework.permissions import BasePermission


def is_manager(user) -> bool:
    """Admins and port engineers: approve work, handle emergencies, read all audit data."""
    return bool(user and user.is_authenticated and user.can_manage)


def is_admin(user) -> bool:
    return bool(user and user.is_authenticated and user.is_admin)


class IsManager(BasePermission):
    message = "Only administrators and port engineers may do this."

    def has_permission(self, request, view):
        return is_manager(request.user)


class IsAdminRole(BasePermission):
    message = "Only administrators may do this."

    def has_permission(self, request, view):
        return is_admin(request.user)
