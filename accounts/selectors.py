"""Account reads."""

from __future__ import annotations

from django.db.models import QuerySet

from core.permissions import is_manager

from .models import ApprovalStatus, User


def users_visible_to(user) -> QuerySet[User]:
    """Managers see every account; anyone else only their own."""
    qs = User.objects.select_related("approved_by").order_by("-date_joined", "-id")
    if is_manager(user):
        return qs
    if user is not None and user.is_authenticated:
        return qs.filter(pk=user.pk)
    return qs.none()


def pending_users() -> QuerySet[User]:
    """The approval queue, oldest registration first."""
    return User.objects.filter(approval_status=ApprovalStatus.PENDING).order_by("date_joined", "id")


def get_user_by_user_id(user_id: str) -> User | None:
    return User.objects.filter(user_id__iexact=(user_id or "").strip()).first()
