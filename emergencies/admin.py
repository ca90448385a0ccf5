"""Emergency administration: the form and the actions call emergencies.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from audit.admin.export import CsvExportMixin
from audit.admin.revert import RevertHistoryAdmin
from core.admin_base import RecordedAdmin, reason_field
from core.errors import DomainError

from . import services
from .models import Emergency
from .permissions import can_edit_emergency


class EmergencyAdminForm(forms.ModelForm):
    change_reason = reason_field()

    class Meta:
        model = Emergency
        fields = ["vessel", "emergency_type", "severity", "location", "description", "assigned_to"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "assigned_to" in self.fields:
            self.fields["assigned_to"].queryset = services.User.objects.filter(
                is_active=True, approval_status="approved"
            ).order_by("user_id")


@admin.register(Emergency)
class EmergencyAdmin(RecordedAdmin, CsvExportMixin, RevertHistoryAdmin):
    """A revert restores the details through ``services.update_emergency`` (so only while
    the emergency may be edited); the status and its stamps move only through the actions,
    so a version with another status is not restored."""

    form = EmergencyAdminForm
    revert_status_field = "status"
    list_display = (
        "code",
        "vessel",
        "emergency_type",
        "severity",
        "status",
        "reported_by",
        "assigned_to",
        "created_at",
    )
    list_filter = ("status", "severity", "emergency_type", "created_at")
    search_fields = ("code", "vessel", "description", "location", "reported_by__user_id", "assigned_to__user_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_select_related = ("reported_by", "assigned_to")
    readonly_fields = (
        "code",
        "status",
        "reported_by",
        "acknowledged_at",
        "dispatched_at",
        "resolved_at",
        "closed_at",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("code", "status", "vessel", "emergency_type", "severity", "location", "description")}),
        ("Handling", {"fields": ("reported_by", "assigned_to")}),
        (
            "Timeline",
            {"fields": ("created_at", "acknowledged_at", "dispatched_at", "resolved_at", "closed_at", "updated_at")},
        ),
        ("Change reason", {"fields": ("change_reason",)}),
    )
    add_fieldsets = (
        (None, {"fields": ("vessel", "emergency_type", "severity", "location", "description", "assigned_to")}),
        ("Change reason", {"fields": ("change_reason",)}),
    )
    actions = ["acknowledge_selected", "dispatch_selected", "resolve_selected", "close_selected"]
    csv_fields = ("code", "vessel", "emergency_type", "severity", "status", "location", "description", "reported_by",
                  "assigned_to", "created_at", "acknowledged_at", "dispatched_at", "resolved_at", "closed_at")

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def has_delete_permission(self, request, obj=None):
        # Emergencies are closed, never deleted: the record must stay.
        return False

    def revert_refusal(self, request, current, version):
        refusal = super().revert_refusal(request, current, version)
        if refusal is None and version is not None and not can_edit_emergency(request.user, current):
            refusal = (f"{current.code} is {current.get_status_display().lower()} and can no longer be edited "
                       "by you, so it cannot be reverted either.")
        return refusal

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        reason = data.get("change_reason", "")
        if not change:
            created = services.report_emergency(
                actor=request.user,
                vessel=data["vessel"],
                emergency_type=data["emergency_type"],
                description=data["description"],
                location=data.get("location", ""),
                severity=data.get("severity") or "high",
                assigned_to=data.get("assigned_to"),
                reason=reason,
            )
            for field in created._meta.concrete_fields:
                setattr(obj, field.attname, getattr(created, field.attname))
            obj._state.adding = False
            obj._state.db = created._state.db
            return
        # compared with the stored row, not the form's initial values (the revert page's
        # initial values are the old version's)
        current = Emergency.objects.get(pk=obj.pk)
        fields = {name: data[name] for name in services.EDITABLE_FIELDS
                  if name in data and getattr(current, name) != data[name]}
        if fields:
            services.update_emergency(emergency=current, actor=request.user, reason=reason, **fields)

    def _run(self, request, queryset, service, verb):
        done, reason = [], self.action_reason(request)
        for emergency in queryset.order_by("created_at", "id"):
            try:
                service(emergency=emergency, actor=request.user, reason=reason)
                done.append(emergency.code)
            except (DomainError, PermissionDenied) as exc:
                self.message_user(request, f"{emergency.code}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}.", messages.SUCCESS)

    @admin.action(description="Acknowledge selected emergencies")
    def acknowledge_selected(self, request, queryset):
        self._run(request, queryset, services.acknowledge_emergency, "Acknowledged")

    @admin.action(description="Dispatch selected emergencies")
    def dispatch_selected(self, request, queryset):
        self._run(request, queryset, services.dispatch_emergency, "Dispatched")

    @admin.action(description="Resolve selected emergencies")
    def resolve_selected(self, request, queryset):
        self._run(request, queryset, services.resolve_emergency, "Resolved")

    @admin.action(description="Close selected emergencies")
    def close_selected(self, request, queryset):
        self._run(request, queryset, services.close_emergency, "Closed")
