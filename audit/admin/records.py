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



from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from audit import exports
from audit.admin.base import (
    EntityTypeFilter,
    IndexedSearch,
    ReadOnlyAdmin,
    TableNameFilter,
    TimeOrderedChangeList,
    TimeWindowFilter,
    UserIdFilter,
)
from audit.admin.export import CsvExportMixin
from audit.capture import registry
from audit.models import ActivityLog, AuditStatus, AuditTrail, RecordSource, SystemEvent, UpdateHistory
from audit.operations import events
from audit.web import presentation
from core.permissions import is_manager


class WordsChangeList(TimeOrderedChangeList):
    """A changelist (sorted by time only) whose page of rows is put in words once for the whole page
    (``model_admin.put_in_words(rows)``: one lookup of the people on it, never one per row)."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        self.model_admin.put_in_words(self.result_list)


class InWords:
    """Admin mixin: the changelist's rows carry their text in words (``obj.words``), computed per
    page by :meth:`words` (a list of texts in the order of the rows)."""

    def get_changelist(self, request, **kwargs):
        return WordsChangeList

    def words(self, rows) -> list:
        raise NotImplementedError

    def put_in_words(self, rows) -> None:
        for obj, text in zip(rows, self.words(rows), strict=True):
            obj.words = text

    def words_of(self, obj):
        text = getattr(obj, "words", None)
        if text is None:  # outside a changelist page (the change page, one row): its own lookup
            self.put_in_words([obj])
            text = obj.words
        return text


@admin.register(ActivityLog)
class ActivityLogAdmin(CsvExportMixin, IndexedSearch, ReadOnlyAdmin):
    """Search: a user_id or a row id (``activity_user_ts_idx``, primary key).
    No method/status_code filters: no index serves them and their choices
    were a DISTINCT over the table."""

    list_display = ("when", "user_id", "activity", "ip_address", "status_code")
    list_filter = (TimeWindowFilter, UserIdFilter)
    search_fields = ("=user_id", "=id")
    search_help_text = "Exact user_id (ST001) or row id."
    csv_fields = ("id", "timestamp", "user_id", "activity", "details", "ip_address", "method", "path", "status_code",
                  "user_agent", "request_id")
    csv_people = {"user_id": "User"}


@admin.register(AuditTrail)
class AuditTrailAdmin(InWords, CsvExportMixin, IndexedSearch, ReadOnlyAdmin):
    """Search: a user_id, an entity code or a row id. An entity code is
    looked up as ``entity_type IN (the registry's types) AND entity_id =
    code`` so that ``trail_entity_ts_idx`` (entity_type first) serves it.
    Filters: time window, action type (``trail_action_ts_idx``), entity
    type, status (fixed choices; a rare status is bounded best with a time
    window), user (``trail_user_ts_idx``)."""

    # the entity by its code (its type on hover), the change itself in one column, the status only when
    # it is not "completed" and the source only when "manual" (inside that column): IP and old -> new
    # fit at 1366 px
    list_display = ("when", "who", "action_type", "entity", "change_summary", "ip_address")
    list_filter = (TimeWindowFilter, "action_type", EntityTypeFilter, "status", "source", UserIdFilter)
    search_fields = ("=user_id", "=entity_id", "=id")
    search_help_text = "Exact user_id (ST001), entity code (MR001) or row id."

    def search_branches(self, term):
        types = [c.entity_type for c in registry.tracked_models()]
        return [*super().search_branches(term), Q(entity_type__in=types, entity_id=term)]

    def ordered_branches(self, term):
        # trail_entity_ts_idx returns one entity's rows in time order, not an IN of types' merged
        types = sorted({c.entity_type for c in registry.tracked_models()})
        return [*super().search_branches(term), *(Q(entity_type=t, entity_id=term) for t in types)]

    extra_readonly = ("in_words", "before_after", "field_history")
    # shown field by field in "Before / after" (and linked row by row in "Field history"): the raw JSON
    # columns and an inline of the update_history rows would repeat it (they stay in the exports)
    repeated_on_change_page = ("old_value", "new_value", "changes")
    # the API export's columns (audit.exports.COLUMNS), labelled
    csv_fields = exports.COLUMNS
    csv_activity = "Exported audit trail"
    csv_people = {"user_id": "User"}

    def csv_person(self, name, obj, names):
        # the actor as named when the change was written, else as named now
        captured = exports.captured_name(obj.user_id, obj.user_display) if name == "user_id" else None
        return exports.person_cell(obj.user_id, captured) if captured else super().csv_person(name, obj, names)

    class Media:
        css = {"all": ["audit/audit-admin.css", "audit/timeline.css"]}

    def get_fields(self, request, obj=None):
        # the record in words first, as the portal's pages show it; the raw columns follow, less those
        # that repeat "Before / after"
        fields = [f for f in super().get_fields(request, obj)
                  if f != "in_words" and f not in self.repeated_on_change_page]
        return ["in_words", *fields]

    def words(self, rows):
        return presentation.change_texts(rows)

    @admin.display(description="In words")
    def in_words(self, obj):
        return render_to_string("audit/_change.html", {"c": self.words_of(obj), "open": True, "show_ip": True})

    @admin.display(description="who", ordering="user_id")
    def who(self, obj):
        # the actor as captured when the change was written, the stored code on hover
        return format_html('<span title="{}">{}</span>', obj.user_id, self.words_of(obj).actor)

    @admin.display(description="entity", ordering="entity_id")
    def entity(self, obj):
        return format_html('<span title="{}">{}</span>', obj.entity_type, obj.entity_id)

    @admin.display(description="change (before → after)")
    def change_summary(self, obj):
        text = change_summary(self.words_of(obj))
        if obj.source == RecordSource.MANUAL:
            text = format_html('<strong class="audit-source">{}</strong> {}', "manual entry:", text)
        if obj.status == AuditStatus.COMPLETED:
            return text
        return format_html('<strong class="audit-status audit-status-{}">{}</strong> {}', obj.status,
                           obj.get_status_display(), obj.error_message or text)

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


class AcknowledgedFilter(admin.SimpleListFilter):
    title = "acknowledged"
    parameter_name = "acknowledged"

    def lookups(self, request, model_admin):
        return [("yes", "Acknowledged"), ("no", "Not acknowledged")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(acknowledged_at__isnull=self.value() == "no")
        return queryset


class AcknowledgeActionForm(ActionForm):
    note = forms.CharField(required=False, label="Note (to acknowledge)", max_length=events.NOTE_MAX)


@admin.register(SystemEvent)
class SystemEventAdmin(CsvExportMixin, ReadOnlyAdmin):
    """No search (no index on event_type, entity_id or event_data) and no
    event_type filter (its choices were a DISTINCT over the table): filter
    by time window, severity (``event_severity_ts_idx``), entity type or
    processed."""

    list_display = ("when", "severity", "event_type", "entity_type", "entity_id", "processed",
                    "acknowledged")
    list_filter = (TimeWindowFilter, "severity", EntityTypeFilter, "processed", AcknowledgedFilter)
    action_form = AcknowledgeActionForm
    actions = ["acknowledge_events"]
    csv_fields = ("id", "timestamp", "severity", "event_type", "entity_type", "entity_id", "event_data", "processed",
                  "processed_at", "acknowledged_at", "acknowledged_by", "acknowledgement_note", "request_id")
    csv_people = {"acknowledged_by": "Acknowledged by"}

    def get_actions(self, request):
        # only acknowledging and the CSV export: nothing here may change or delete a row otherwise
        actions = super().get_actions(request)
        return {name: action for name, action in actions.items()
                if name in ("acknowledge_events", "export_selected_csv")}

    @admin.display(description="acknowledged", boolean=True)
    def acknowledged(self, obj):
        return obj.acknowledged_at is not None

    @admin.action(permissions=["view"], description="Acknowledge the selected events (with the note below)")
    def acknowledge_events(self, request, queryset):
        if not is_manager(request.user):
            self.message_user(request, "Only administrators and port engineers may acknowledge events.",
                              messages.ERROR)
            return
        note = (request.POST.get("note") or "").strip()
        done, before = [], []
        for pk in queryset.order_by("id").values_list("id", flat=True):
            try:
                events.acknowledge_event(event_id=pk, actor=request.user, note=note)
            except events.AlreadyAcknowledged:
                before.append(pk)
            except events.EventNotFound:
                continue
            else:
                done.append(pk)
        if done:
            self.message_user(request, f"Acknowledged {len(done)} event(s): " + ", ".join(f"#{pk}" for pk in done) + ".")
        if before:
            self.message_user(request, "Already acknowledged, left as they were: "
                              + ", ".join(f"#{pk}" for pk in before) + ".", messages.WARNING)


@admin.register(UpdateHistory)
class UpdateHistoryAdmin(InWords, CsvExportMixin, IndexedSearch, ReadOnlyAdmin):
    """Search: a record's code (``table_name IN (the tracked tables) AND
    record_id = code``, on ``history_record_ts_idx``) or a row id. Filters:
    time window, table, user."""

    # the table is named by the record's code (MR001): old and new values and the IP of the change fit at 1366 px
    list_display = ("when", "record_id", "field", "old_text", "new_text", "user_id", "trail_ip", "trail_link")
    list_filter = (TimeWindowFilter, TableNameFilter, UserIdFilter)
    search_fields = ("=record_id", "=id")
    search_help_text = "Exact record code (MR001) or row id."
    csv_fields = ("id", "timestamp", "table_name", "record_id", "field_name", "old_value", "new_value", "user_id",
                  "change_reason", "trail_link")
    csv_people = {"user_id": "User"}

    def csv_person(self, name, obj, names):
        # the actor as named when the change was written (its trail row comes with it), else as named now
        trail = obj._state.fields_cache.get("audit") if obj.audit_id else None
        captured = exports.captured_name(obj.user_id, trail.user_display) if trail is not None else None
        return exports.person_cell(obj.user_id, captured) if captured else super().csv_person(name, obj, names)

    def search_branches(self, term):
        tables = [c.model._meta.db_table for c in registry.tracked_models()]
        return [Q(table_name__in=tables, record_id=term), *self.row_id_branches(term)]

    def ordered_branches(self, term):
        # history_record_ts_idx returns one record's rows in time order, not an IN of tables' merged
        tables = sorted({c.model._meta.db_table for c in registry.tracked_models()})
        return [*(Q(table_name=t, record_id=term) for t in tables), *self.row_id_branches(term)]

    list_select_related = ("audit",)
    extra_readonly = ("trail_link",)

    def words(self, rows):
        return presentation.field_history_texts(rows)

    @admin.display(description="field", ordering="field_name")
    def field(self, obj):
        # the field's label, its column name on hover
        return format_html('<span title="{}">{}</span>', obj.field_name, self.words_of(obj).label)

    @admin.display(description="before", ordering="old_value")
    def old_text(self, obj):
        return value_cell(self.words_of(obj).old)

    @admin.display(description="after", ordering="new_value")
    def new_text(self, obj):
        return value_cell(self.words_of(obj).new)

    @admin.display(description="IP address")
    def trail_ip(self, obj):
        return (obj.audit.ip_address if obj.audit_id and obj.audit else None) or "—"

    @admin.display(description="Audit trail row")
    def trail_link(self, obj):
        if obj.audit_id is None:
            return "—"
        url = reverse("admin:audit_audittrail_change", args=[obj.audit_id])
        return format_html('<a href="{}">#{}</a>', url, obj.audit_id)


SUMMARY_FIELDS = 3  # changed fields named in a changelist row; the change page shows them all
VALUE_CHARS = 60  # characters of a value in a changelist cell (the full value on hover and on the change page)


def _short(value) -> str:
    if value is None:
        return "empty"
    text = str(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def change_summary(text: presentation.ChangeText) -> str:
    """One line for a changelist from the row in words (:func:`audit.web.presentation.change_text`):
    "Title: Pump → Pump 2; Priority: Low → High (+2 more)", "Created with 8 fields" or
    "Deleted with 8 fields"."""
    if text.summary:
        return text.summary
    if not text.fields:
        return "—"
    line = "; ".join(f"{f.label}: {_short(f.old)} → {_short(f.new)}" for f in text.fields[:SUMMARY_FIELDS])
    more = len(text.fields) - SUMMARY_FIELDS
    return line + (f" (+{more} more)" if more > 0 else "")


def value_cell(value):
    """A recorded value in a changelist cell, cut to :data:`VALUE_CHARS` with
    the whole value on hover (escaped by format_html)."""
    if value is None:
        return format_html('<em class="null">{}</em>', "empty")
    return format_html('<span class="audit-cell-value" title="{}">{}</span>', value, _short(value))
