"""Allow-listed filters for the user list (API and portal)."""

import django_filters

from .models import ApprovalStatus, Role, User


class UserFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices)
    approval_status = django_filters.ChoiceFilter(choices=ApprovalStatus.choices)
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = User
        fields = ["role", "approval_status", "is_active"]
