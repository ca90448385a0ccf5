"""Read-only admin for the four audit tables: nothing can be added,
changed or deleted here (only the retention purge deletes)."""

import json

from django.contrib import admin
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join

from . import exports, presentation, registry
from .models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory

COUNT_CAP = 10_000  # changelists count at most this many rows (then "10000+" pages' worth)


class CappedCountPaginator(Paginator):
    """Counts at most :data:`COUNT_CAP` rows (``SELECT COUNT(*) FROM (... LIMIT
    cap)``): bounded work on tables of millions of rows. Beyond the cap the
    changelist shows the first cap rows' pages; filters reach the rest."""

    @cached_property
    def count(self):
        return self.object_list[:COUNT_CAP].count()


class UserIdFilter(admin.SimpleListFilter):
    """Filter by actor: the accounts plus ``system`` and ``anonymous``
    (no DISTINCT over the audit table)."""

    title = "user"
    parameter_name = "user_id"

    def lookups(self, request, model_admin):
        from django.contrib.auth import get_user_model

        ids = get_user_model().objects.order_by("user_id").values_list("user_id", flat=True)[:200]
        return [(uid, uid) for uid in ids] + [("system", "system"), ("anonymous", "anonymous")]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(user_id=value) if value else queryset


class EntityTypeFilter(admin.SimpleListFilter):
    """Filter by the tracked entity types (from the registry, not a DISTINCT)."""

    title = "entity type"
    parameter_name = "entity_type"
    field = "entity_type"

    def lookups(self, request, model_admin):
        return sorted((c.entity_type, c.entity_type) for c in registry.tracked_models())

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class TableNameFilter(EntityTypeFilter):
    title = "table"
    parameter_name = "table_name"
    field = "table_name"

    def lookups(self, request, model_admin):
        return sorted((c.model._meta.db_table, c.model._meta.db_table) for c in registry.tracked_models())


class ReadOnlyAdmin(admin.ModelAdmin):
    show_full_result_count = False
    paginator = CappedCountPaginator
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
    list_filter = (UserIdFilter, "method", "status_code")
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
    list_filter = ("action_type", EntityTypeFilter, "status", UserIdFilter)
    search_fields = ("=user_id", "=entity_id", "change_reason", "=request_id", "=ip_address")
    inlines = [FieldChangeInline]
    extra_readonly = ("before_after", "field_history")
    actions = ["export_csv"]

    class Media:
        css = {"all": ["audit/audit-admin.css"]}

    def get_actions(self, request):
        # only the export: nothing here may change or delete a row
        actions = super().get_actions(request)
        return {name: action for name, action in actions.items() if name == "export_csv"}

    @admin.action(permissions=["view"], description="Export the selected records as CSV")
    def export_csv(self, request, queryset):
        """The same safe CSV as ``/api/realtime/export-audit`` (every cell
        quoted, formula-like text prefixed), recorded before the first byte."""
        from .context import audit_context
        from .services import log_activity

        queryset = queryset.order_by("-timestamp", "-id")
        with audit_context(actor=request.user):
            log_activity("Exported audit trail", json.dumps({"format": "csv", "via": "admin"}, sort_keys=True))
        now = timezone.now()
        response = StreamingHttpResponse(exports.csv_chunks(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{exports.export_filename(start=now, end=now)}"'
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @admin.display(description="Before / after")
    def before_after(self, obj):
        rows = presentation.field_rows(obj)
        if not rows:
            return "—"

        def cell(value):
            return format_html('<em class="null">empty</em>') if value is None else format_html("{}", value)

        body = format_html_join(
            "", '<tr class="{}"><th scope="row">{}</th><td class="before">{}</td><td class="after">{}</td></tr>',
            (("changed" if r.changed else "unchanged", r.name, cell(r.old), cell(r.new)) for r in rows),
        )
        return format_html(
            '<table class="audit-diff"><thead><tr><th scope="col">Field</th><th scope="col">Before</th>'
            '<th scope="col">After</th></tr></thead><tbody>{}</tbody></table>',
            body,
        )

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
    list_filter = ("severity", "event_type", EntityTypeFilter, "processed")
    search_fields = ("event_type", "=entity_id", "event_data", "=request_id")


@admin.register(UpdateHistory)
class UpdateHistoryAdmin(ReadOnlyAdmin):
    list_display = ("timestamp", "table_name", "record_id", "field_name", "user_id", "trail_link")
    list_filter = (TableNameFilter, UserIdFilter)
    search_fields = ("=record_id", "field_name", "=user_id", "change_reason")
    list_select_related = ("audit",)
    extra_readonly = ("trail_link",)

    @admin.display(description="Audit trail row")
    def trail_link(self, obj):
        if obj.audit_id is None:
            return "—"
        url = reverse("admin:audit_audittrail_change", args=[obj.audit_id])
        return format_html('<a href="{}">#{}</a>', url, obj.audit_id)


# -- seals and legal holds (audit.integrity, audit.retention) -------------------------------------

from django import forms  # noqa: E402
from django.contrib import messages  # noqa: E402
from django.contrib.admin.helpers import ActionForm  # noqa: E402

from . import retention  # noqa: E402
from .models import AuditSeal, LegalHold  # noqa: E402


@admin.register(AuditSeal)
class AuditSealAdmin(admin.ModelAdmin):
    """The seal chain, read-only (written by seal_audit and purge_audit only)."""

    list_display = ("seq", "kind", "created_at", "row_count", "short_hash")
    list_filter = ("kind",)
    readonly_fields = ("seq", "kind", "created_at", "horizon", "ranges", "row_count", "rows_digest", "prev_hash",
                       "hash", "details")
    exclude = ("row_hashes",)
    show_full_result_count = False
    actions = None

    @admin.display(description="hash")
    def short_hash(self, obj):
        return obj.hash[:16] + "…"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LegalHoldForm(forms.ModelForm):
    class Meta:
        model = LegalHold
        fields = ("entity_type", "entity_id", "user_id", "starts_at", "ends_at", "reason")


    def clean(self):
        data = super().clean()
        if bool(data.get("entity_type")) != bool(data.get("entity_id")):
            raise forms.ValidationError("An entity hold needs both the entity type and the entity id.")
        if not any(data.get(k) for k in ("entity_type", "user_id", "starts_at", "ends_at")):
            raise forms.ValidationError("Say what to hold: an entity, a user or a time range.")
        if data.get("starts_at") and data.get("ends_at") and data["starts_at"] > data["ends_at"]:
            raise forms.ValidationError("The hold's start is after its end.")
        return data


class LiftActionForm(ActionForm):
    lift_reason = forms.CharField(required=False, label="Reason (to lift)")


@admin.register(LegalHold)
class LegalHoldAdmin(admin.ModelAdmin):
    """Admins place holds (through retention.place_hold, recorded) and lift
    them with a reason (the "lift" action); holds are never edited or deleted."""

    list_display = ("id", "__str__", "reason", "placed_by", "placed_at", "lifted_by", "lifted_at")
    list_filter = (("lifted_at", admin.EmptyFieldListFilter),)
    form = LegalHoldForm
    action_form = LiftActionForm
    actions = ["lift_holds"]

    def _admin(self, request):
        return getattr(request.user, "is_admin", False) or request.user.is_superuser

    def has_module_permission(self, request):
        return self._admin(request)

    def has_view_permission(self, request, obj=None):
        return self._admin(request)

    def has_add_permission(self, request, obj=None):
        return self._admin(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        hold = retention.place_hold(actor=request.user, reason=data["reason"], entity_type=data["entity_type"],
                                    entity_id=data["entity_id"], user_id=data["user_id"],
                                    starts_at=data["starts_at"], ends_at=data["ends_at"])
        obj.pk = hold.pk

    @admin.action(description="Lift the selected holds (reason required)", permissions=["add"])
    def lift_holds(self, request, queryset):
        reason = (request.POST.get("lift_reason") or "").strip()
        if not reason:
            self.message_user(request, "Give a reason to lift a hold: nothing was lifted.", messages.ERROR)
            return
        lifted = 0
        for hold in queryset.filter(lifted_at__isnull=True):
            retention.lift_hold(hold=hold, actor=request.user, reason=reason)
            lifted += 1
        self.message_user(request, f"Lifted {lifted} hold(s).")
