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


def one_edit_apart(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by exactly one character changed,
    added or removed (``PE0O1`` and ``PE001``); case is ignored."""
    a, b = a.upper(), b.upper()
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    for i in range(len(long)):
        if long[:i] + long[i + 1 :] == short:
            return True
    return False


def lookalike_users(user: User) -> list[User]:
    """Other accounts whose user id is one character away from ``user``'s:
    a pending look-alike may be someone posing as a colleague."""
    from django.db.models.functions import Length

    n = len(user.user_id)
    candidates = (
        User.objects.exclude(pk=user.pk)
        .annotate(id_length=Length("user_id"))
        .filter(id_length__gte=n - 1, id_length__lte=n + 1)
        .order_by("user_id")
    )
    return [other for other in candidates if one_edit_apart(user.user_id, other.user_id)]
