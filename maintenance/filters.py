"""Allow-listed filters for maintenance requests and inventory, shared by the
API and the portal lists. Every parameter is validated: a bad value is a 400,
never a silently ignored filter."""

from __future__ import annotations

import django_filters
from django.db.models import F, Q

from accounts.models import User
from core.lengths import max_length

from .models import Category, InventoryItem, MaintenanceRequest, Priority, RequestStatus

_YES_NO = [("true", "Yes"), ("false", "No")]


class MaintenanceRequestFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=RequestStatus.choices)
    priority = django_filters.MultipleChoiceFilter(choices=Priority.choices)
    category = django_filters.MultipleChoiceFilter(choices=Category.choices)
    vessel = django_filters.CharFilter(field_name="vessel", lookup_expr="icontains",
                                       max_length=max_length(MaintenanceRequest, "vessel"))
    requested_by = django_filters.CharFilter(field_name="requested_by__user_id", lookup_expr="iexact",
                                             max_length=max_length(User, "user_id"))
    assigned_to = django_filters.CharFilter(field_name="assigned_to__user_id", lookup_expr="iexact",
                                             max_length=max_length(User, "user_id"))
    created_after = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__gte", label="Created on or after (YYYY-MM-DD)"
    )
    created_before = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__lte", label="Created on or before (YYYY-MM-DD)"
    )
    search = django_filters.CharFilter(
        method="filter_search", max_length=200, label="Code, title, vessel or description"
    )
    ordering = django_filters.OrderingFilter(
        fields=(
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
            ("due_date", "due_date"),
            ("priority", "priority"),
            ("status", "status"),
        )
    )

    class Meta:
        model = MaintenanceRequest
        fields = [
            "status",
            "priority",
            "category",
            "vessel",
            "requested_by",
            "assigned_to",
            "created_after",
            "created_before",
            "search",
        ]

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(code__iexact=value)
            | Q(title__icontains=value)
            | Q(vessel__icontains=value)
            | Q(description__icontains=value)
        )


class InventoryItemFilter(django_filters.FilterSet):
    below_minimum = django_filters.ChoiceFilter(
        choices=_YES_NO, method="filter_below_minimum", label="Below minimum stock"
    )
    location = django_filters.CharFilter(field_name="location", lookup_expr="icontains",
                                         max_length=max_length(InventoryItem, "location"))
    search = django_filters.CharFilter(
        method="filter_search", max_length=200, label="Code, part number, name or location"
    )
    ordering = django_filters.OrderingFilter(
        fields=(
            ("created_at", "created_at"),
            ("part_number", "part_number"),
            ("name", "name"),
            ("quantity_on_hand", "quantity_on_hand"),
        )
    )

    class Meta:
        model = InventoryItem
        fields = ["below_minimum", "location", "search"]

    def filter_below_minimum(self, queryset, name, value):
        below = Q(quantity_on_hand__lt=F("minimum_stock"))
        return queryset.filter(below) if value == "true" else queryset.exclude(below)

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(code__iexact=value)
            | Q(part_number__icontains=value)
            | Q(name__icontains=value)
            | Q(location__icontains=value)
        )
