"""Emergency reads."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from core.permissions import is_manager

from .models import ACTIVE_STATUSES, Emergency
from .permissions import ASSIGNABLE_STATUSES, TRANSITIONS, can_edit_emergency, can_handle_emergency


def emergencies_visible_to(user) -> QuerySet[Emergency]:
    """Managers see every emergency; staff those they reported or are assigned to. Newest first."""
    qs = Emergency.objects.select_related("reported_by", "assigned_to").order_by("-created_at", "-id")
    if is_manager(user):
        return qs
    if user is None or not user.is_authenticated:
        return qs.none()
    return qs.filter(Q(reported_by=user) | Q(assigned_to=user))


def active_emergencies() -> QuerySet[Emergency]:
    return Emergency.objects.filter(status__in=ACTIVE_STATUSES)


def get_emergency_for(user, code: str) -> Emergency:
    """The emergency ``code`` if ``user`` may see it, else Http404 (no hint that it exists)."""
    emergency = emergencies_visible_to(user).filter(code__iexact=(code or "").strip()).first()
    if emergency is None:
        raise Http404("No such emergency.")
    return emergency


def allowed_emergency_actions(user, emergency: Emergency) -> set[str]:
    """Action names ``user`` may perform on ``emergency`` now: any of
    ``acknowledge``, ``dispatch``, ``resolve``, ``close``, ``assign``, ``edit``."""
    actions: set[str] = set()
    if can_edit_emergency(user, emergency):
        actions.add("edit")
    if not can_handle_emergency(user):
        return actions
    for name, (sources, _target) in TRANSITIONS.items():
        if emergency.status in sources:
            actions.add(name)
    if emergency.status in ASSIGNABLE_STATUSES:
        actions.add("assign")
    return actions
