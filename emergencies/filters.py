"""Allow-listed emergency filters, shared by the API and the portal list."""

import django_filters
from django.db.models import Q

from accounts.models import User
from core.filters import UTCIsoDateTimeFilter
from core.lengths import max_length

from .models import ACTIVE_STATUSES, Emergency, EmergencyStatus, EmergencyType, Severity


class EmergencyFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=EmergencyStatus.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    emergency_type = django_filters.ChoiceFilter(choices=EmergencyType.choices)
    vessel = django_filters.CharFilter(field_name="vessel", lookup_expr="icontains",
                                       max_length=max_length(Emergency, "vessel"))
    active = django_filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")], method="filter_active", label="Active (not resolved or closed)"
    )
    reported_by = django_filters.CharFilter(field_name="reported_by__user_id", lookup_expr="iexact",
                                            max_length=max_length(User, "user_id"))
    assigned_to = django_filters.CharFilter(field_name="assigned_to__user_id", lookup_expr="iexact",
                                            max_length=max_length(User, "user_id"))
    created_after = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Emergency
        fields = ["status", "severity", "emergency_type", "vessel", "active", "reported_by", "assigned_to"]

    def filter_active(self, queryset, name, value):
        if not value:
            return queryset
        condition = Q(status__in=ACTIVE_STATUSES)
        return queryset.filter(condition) if value == "true" else queryset.exclude(condition)
