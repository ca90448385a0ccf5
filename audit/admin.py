"""Read-only admin for the four audit tables: nothing can be added,
changed or deleted here (only the retention purge deletes).

Built for tables of millions of rows (see README, "The real-time API at
scale"): every query a changelist runs can use an index or is bounded.

- ``date_hierarchy`` on ``timestamp`` without Django's ``SELECT DISTINCT
  date_trunc(...)`` over the whole filtered table (a full scan at its top
  level): :class:`ProbedDatesQuerySet` answers the drill-down's
  ``datetimes()`` with MIN/MAX and one ``EXISTS`` probe per year, month or
  day in range, each an index range lookup. A fixed "time window" list
  filter (last hour, 24 hours, 7 days, 30 days) sits beside it.
- No list filter whose choices come from ``SELECT DISTINCT`` over the table
  (``method``, ``status_code`` on activity logs, ``event_type`` on system
  events were removed: no index serves them). The remaining filters have
  fixed choices (model choices, the registry's entity types, the accounts).
- Search is exact (case-sensitive) on indexed columns only, each term OR-ed
  over branches that each use an index (a BitmapOr, never a scan): see
  :class:`IndexedSearch`. No ``icontains`` over text columns.
- Counts are capped (:class:`CappedCountPaginator`) and the full-table
  count is off (``show_full_result_count = False``).
"""

import datetime as dt
import json
from datetime import timedelta

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Max, Min, Q, QuerySet
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
    cap)``, without the ordering): bounded work on tables of millions of rows. Beyond the cap the
    changelist shows the first cap rows' pages; filters reach the rest."""

    @cached_property
    def count(self):
        # no ORDER BY: the planner may count from any index (user_id, entity, failed...), not walk by time
        return self.object_list.order_by()[:COUNT_CAP].count()


class TimeWindowFilter(admin.SimpleListFilter):
    """The last hour / 24 hours / 7 days / 30 days, on the ``-timestamp``
    index (replaces ``date_hierarchy``, whose DISTINCT date_trunc scans)."""

    title = "time window"
    parameter_name = "window"
    WINDOWS = {"1h": ("Last hour", timedelta(hours=1)), "24h": ("Last 24 hours", timedelta(hours=24)),
               "7d": ("Last 7 days", timedelta(days=7)), "30d": ("Last 30 days", timedelta(days=30))}

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.WINDOWS.items()]

    def queryset(self, request, queryset):
        window = self.WINDOWS.get(self.value() or "")
        return queryset.filter(timestamp__gte=timezone.now() - window[1]) if window else queryset


class IndexedSearch:
    """Admin search that an index answers: each whitespace-separated term
    must match one of :meth:`search_branches` exactly (OR); the terms are
    AND-ed. Django's ``=field`` would be ``UPPER(field) = UPPER(term)`` on
    PostgreSQL, which no plain index serves, hence this override."""

    search_help_text = ""

    def search_branches(self, term: str) -> list[Q]:
        branches = [Q(user_id=term)]
        if term.lstrip("#").isdigit() and len(term) < 19:
            branches.append(Q(pk=int(term.lstrip("#"))))
        return branches

    def get_search_results(self, request, queryset, search_term):
        for term in search_term.split()[:5]:
            term = term[:64]
            condition = Q()
            for branch in self.search_branches(term):
                condition |= branch
            queryset = queryset.filter(condition)
        return queryset, False


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


class ProbedDatesQuerySet(QuerySet):
    """``datetimes(field, kind)`` for the admin's date hierarchy, by index
    probes instead of ``SELECT DISTINCT date_trunc(...)``: MIN and MAX of the
    field (two index ends), then one ``EXISTS`` per year / month / day
    between them (at most a few dozen range lookups on the ``-timestamp``
    indexes), so the drill-down costs the same on ten rows or ten million."""

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None):
        bounds = self.aggregate(first=Min(field_name), last=Max(field_name))
        first, last = bounds["first"], bounds["last"]
        if first is None:
            return []
        found = []
        for start, end in _periods(first.astimezone(dt.UTC), last.astimezone(dt.UTC), kind):
            if self.filter(**{f"{field_name}__gte": start, f"{field_name}__lt": end}).exists():
                found.append(start)
        return found if order == "ASC" else found[::-1]


def _periods(first, last, kind):
    """[start, end) of each year, month or day from ``first`` to ``last`` (UTC)."""
    if kind == "year":
        for year in range(first.year, last.year + 1):
            yield dt.datetime(year, 1, 1, tzinfo=dt.UTC), dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
    elif kind == "month":
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            nxt = (year + month // 12, month % 12 + 1)
            yield dt.datetime(year, month, 1, tzinfo=dt.UTC), dt.datetime(*nxt, 1, tzinfo=dt.UTC)
            year, month = nxt
    else:  # day
        day = dt.datetime(first.year, first.month, first.day, tzinfo=dt.UTC)
        while day <= last:
            yield day, day + timedelta(days=1)
            day += timedelta(days=1)


class NoWrites:
    """Admin mixin: nothing can be added, changed or deleted (audit records
    are read-only; only the retention purge deletes)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(NoWrites, admin.ModelAdmin):
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100
    actions = None
    date_hierarchy = "timestamp"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return ProbedDatesQuerySet(model=qs.model, query=qs.query, using=qs._db)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(self.extra_readonly)

    extra_readonly: tuple = ()


@admin.register(ActivityLog)
class ActivityLogAdmin(IndexedSearch, ReadOnlyAdmin):
    """Search: a user_id or a row id (``activity_user_ts_idx``, primary key).
    No method/status_code filters: no index serves them and their choices
    were a DISTINCT over the table."""

    list_display = ("timestamp", "user_id", "activity", "ip_address", "status_code")
    list_filter = (TimeWindowFilter, UserIdFilter)
    search_fields = ("=user_id", "=id")
    search_help_text = "Exact user_id (ST001) or row id."


class FieldChangeInline(NoWrites, admin.TabularInline):
    model = UpdateHistory
    fk_name = "audit"
    fields = ("field_name", "old_value", "new_value")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(AuditTrail)
class AuditTrailAdmin(IndexedSearch, ReadOnlyAdmin):
    """Search: a user_id, an entity code or a row id. An entity code is
    looked up as ``entity_type IN (the registry's types) AND entity_id =
    code`` so that ``trail_entity_ts_idx`` (entity_type first) serves it.
    Filters: time window, action type (``trail_action_ts_idx``), entity
    type, status (fixed choices; a rare status is bounded best with a time
    window), user (``trail_user_ts_idx``)."""

    list_display = ("timestamp", "user_id", "action_type", "entity_type", "entity_id", "status", "ip_address")
    list_filter = (TimeWindowFilter, "action_type", EntityTypeFilter, "status", UserIdFilter)
    search_fields = ("=user_id", "=entity_id", "=id")
    search_help_text = "Exact user_id (ST001), entity code (MR001) or row id."
    inlines = [FieldChangeInline]

    def search_branches(self, term):
        types = [c.entity_type for c in registry.tracked_models()]
        return [*super().search_branches(term), Q(entity_type__in=types, entity_id=term)]
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
    """No search (no index on event_type, entity_id or event_data) and no
    event_type filter (its choices were a DISTINCT over the table): filter
    by time window, severity (``event_severity_ts_idx``), entity type or
    processed."""

    list_display = ("timestamp", "severity", "event_type", "entity_type", "entity_id", "processed")
    list_filter = (TimeWindowFilter, "severity", EntityTypeFilter, "processed")


@admin.register(UpdateHistory)
class UpdateHistoryAdmin(IndexedSearch, ReadOnlyAdmin):
    """Search: a record's code (``table_name IN (the tracked tables) AND
    record_id = code``, on ``history_record_ts_idx``) or a row id. Filters:
    time window, table, user."""

    list_display = ("timestamp", "table_name", "record_id", "field_name", "user_id", "trail_link")
    list_filter = (TimeWindowFilter, TableNameFilter, UserIdFilter)
    search_fields = ("=record_id", "=id")
    search_help_text = "Exact record code (MR001) or row id."

    def search_branches(self, term):
        tables = [c.model._meta.db_table for c in registry.tracked_models()]
        branches = [Q(table_name__in=tables, record_id=term)]
        if term.lstrip("#").isdigit() and len(term) < 19:
            branches.append(Q(pk=int(term.lstrip("#"))))
        return branches
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
class AuditSealAdmin(NoWrites, admin.ModelAdmin):
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
