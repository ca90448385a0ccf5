"""Allow-listed filters for the user list (API and portal)."""

import django_filters

from .models import ApprovalStatus, Role, User


class UserFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices)
    approval_status = django_filters.ChoiceFilter(choices=ApprovalStatus.choices)
    # strict: anything but true/false is a 400, never silently ignored
    is_active = django_filters.ChoiceFilter(choices=[("true", "true"), ("false", "false")], method="filter_is_active")

    class Meta:
        model = User
        fields = ["role", "approval_status", "is_active"]

    def filter_is_active(self, queryset, name, value):
        return queryset.filter(is_active=value == "true") if value else queryset
