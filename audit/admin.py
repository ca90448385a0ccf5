"""Read-only admin for the four audit tables: nothing can be added,
changed or deleted here (only the retention purge deletes)."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from .models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory


class ReadOnlyAdmin(admin.ModelAdmin):
    show_full_result_count = False
    date_hierarchy = "timestamp"
    list_per_page = 100
    actions = None

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(self.extra_readonly)

    extra_readonly: tuple = ()


@admin.register(ActivityLog)
class ActivityLogAdmin(ReadOnlyAdmin):
    list_display = ("timestamp", "user_id", "activity", "ip_address", "status_code")
    list_filter = ("method", "status_code")
    search_fields = ("=user_id", "activity", "details", "=ip_address", "=request_id")


class FieldChangeInline(admin.TabularInline):
    model = UpdateHistory
    fk_name = "audit"
    fields = ("field_name", "old_value", "new_value")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditTrail)
class AuditTrailAdmin(ReadOnlyAdmin):
    list_display = ("timestamp", "user_id", "action_type", "entity_type", "entity_id", "status", "ip_address")
    list_filter = ("action_type", "status", "entity_type")
    search_fields = ("=user_id", "=entity_id", "change_reason", "=request_id", "=ip_address")
    inlines = [FieldChangeInline]
    extra_readonly = ("field_history",)

    @admin.display(description="Field history")
    def field_history(self, obj):
        rows = obj.field_changes.order_by("id").values_list("id", "field_name")
        if not rows:
            return "—"
        return format_html_join(
            ", ", '<a href="{}">{}</a>',
            ((reverse("admin:audit_updatehistory_change", args=[pk]), name) for pk, name in rows),
        )


@admin.register(SystemEvent)
class SystemEventAdmin(ReadOnlyAdmin):
    list_display = ("timestamp", "severity", "event_type", "entity_type", "entity_id", "processed")
    list_filter = ("severity", "event_type", "processed")
    search_fields = ("event_type", "=entity_id", "event_data", "=request_id")


@admin.register(UpdateHistory)
class UpdateHistoryAdmin(ReadOnlyAdmin):
    list_display = ("timestamp", "table_name", "record_id", "field_name", "user_id", "trail_link")
    list_filter = ("table_name",)
    search_fields = ("=record_id", "field_name", "=user_id", "change_reason")
    list_select_related = ("audit",)
    extra_readonly = ("trail_link",)

    @admin.display(description="Audit trail row")
    def trail_link(self, obj):
        if obj.audit_id is None:
            return "—"
        url = reverse("admin:audit_audittrail_change", args=[obj.audit_id])
        return format_html('<a href="{}">#{}</a>', url, obj.audit_id)
