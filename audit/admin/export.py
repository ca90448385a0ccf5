"""CSV exports for every admin changelist: one mixin, :class:`CsvExportMixin`.

Each admin that mixes it in offers

- the action "Export selected … as CSV" (also with "select all", which
  Django turns into the whole filtered list), and
- a link on the changelist, "Export this list as CSV", to
  ``<changelist>/export-csv/?<the changelist's own query string>``: the whole
  list as filtered, searched and ordered on screen.

Both write the same file: a header row of labels (a field's
``verbose_name`` or a display method's description), then one row per
record with the values people see (choice labels, "Yes"/"No", related
objects by name, times in ISO 8601 UTC), every cell quoted and formula-like
text prefixed by :func:`audit.exports.table_chunks`, the project's one CSV
writer. Rows are read from the database in chunks and the file is streamed.

Each export is one ``activity_logs`` row written before the first byte:
which list, selected or filtered, the changelist's filters and search, and
the number of rows. If the row cannot be written, nothing is exported.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json

from django.contrib import admin
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import label_for_field, lookup_field
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.db import models
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.safestring import SafeData

from audit import exports

CHUNK_SIZE = 2000  # rows fetched from the database per round trip
# Changelist parameters that are not filters (paging, the popup and error markers).
NOT_FILTERS = ("p", "e", IS_POPUP_VAR, "_to_field")
# words of a field's verbose name written in capitals in a header
ABBREVIATIONS = {"id": "ID", "ip": "IP", "url": "URL", "csv": "CSV"}


class CsvExportMixin:
    """Mix into a ``ModelAdmin`` (before it in the bases) to export its
    changelist as CSV.

    ``csv_fields`` names the columns, as ``list_display`` does (model fields,
    admin methods, model methods or properties); by default the changelist's
    own ``list_display``. ``csv_activity`` is the activity logged for an
    export (default: "Exported <verbose name plural>")."""

    csv_fields: tuple[str, ...] | None = None
    csv_activity: str | None = None
    #: columns holding a person's code, with their header label: written "ST001 (Sam Staff)", the
    #: names of a chunk of rows looked up at once
    csv_people: dict[str, str] = {}

    # --- the columns -----------------------------------------------------------------

    def get_csv_fields(self, request) -> list[str]:
        fields = self.csv_fields or self.get_list_display(request)
        return [name for name in fields if name != "action_checkbox"]

    def csv_header(self, fields: list[str]) -> list[str]:
        return [self.csv_people.get(name) or _label(str(label_for_field(name, self.model, model_admin=self)))
                for name in fields]

    def csv_person(self, name: str, obj, names: dict[str, str]) -> str:
        """One person column of one record: "ST001 (Sam Staff)" (``names``: the chunk's people)."""
        code = getattr(obj, name, None)
        return exports.person_cell(code, names.get(str(code)) if code else None)

    def csv_cell(self, name: str, obj) -> object:
        """The value a person reads for one column of one record."""
        try:
            field, attr, value = lookup_field(name, obj, self)
        except (AttributeError, ObjectDoesNotExist):
            return ""
        if field is not None:
            if getattr(field, "flatchoices", None) and not field.is_relation:
                return dict(field.flatchoices).get(value, value)
            if isinstance(field, models.BooleanField):
                return _yes_no(value)
        elif getattr(attr, "boolean", False):
            return _yes_no(value)
        return _plain(value)

    def csv_rows(self, queryset, fields: list[str]):
        people = [name for name in fields if name in self.csv_people]
        chunk: list = []
        for obj in queryset.iterator(chunk_size=CHUNK_SIZE):
            chunk.append(obj)
            if len(chunk) >= CHUNK_SIZE:
                yield from self._csv_chunk(chunk, fields, people)
                chunk = []
        if chunk:
            yield from self._csv_chunk(chunk, fields, people)

    def _csv_chunk(self, chunk, fields, people):
        names = exports.person_names(getattr(obj, name, None) for obj in chunk for name in people) if people else {}
        for obj in chunk:
            yield [self.csv_person(name, obj, names) if name in self.csv_people else self.csv_cell(name, obj)
                   for name in fields]

    # --- the response ------------------------------------------------------------------

    def csv_response(self, request, queryset, *, scope: str):
        """Log the export, then stream ``queryset`` as CSV."""
        from audit.context import audit_context
        from audit.services import log_activity

        opts = self.model._meta
        fields = self.get_csv_fields(request)
        rows = queryset.count()
        details = {
            "format": "csv",
            "via": "admin",
            "list": f"{opts.app_label}.{opts.model_name}",
            "scope": scope,
            "filters": {key: request.GET.getlist(key)[-1] for key in sorted(request.GET) if key not in NOT_FILTERS},
            "rows": rows,
        }
        with audit_context(actor=request.user):
            log_activity(self.csv_activity or f"Exported {opts.verbose_name_plural}",
                         json.dumps(details, sort_keys=True))
        body = exports.table_chunks(self.csv_header(fields), self.csv_rows(queryset, fields))
        if isinstance(request, ASGIRequest):
            body = exports.aiterate(body)
        response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8")
        stamp = timezone.now().astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        name = str(opts.verbose_name_plural).replace(" ", "-")
        response["Content-Disposition"] = f'attachment; filename="{name}_{stamp}.csv"'
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    # --- the action ----------------------------------------------------------------------

    @admin.action(description="Export selected %(verbose_name_plural)s as CSV")
    def export_selected_csv(self, request, queryset):
        return self.csv_response(request, queryset, scope="selected")

    def get_actions(self, request):
        # added after the admin's own choice of actions (some admins allow no other)
        actions = super().get_actions(request)
        if IS_POPUP_VAR not in request.GET and self.has_view_permission(request):
            func, name, description = self.get_action("export_selected_csv")
            actions[name] = (func, name, description)
        return actions

    # --- the whole filtered list ---------------------------------------------------------

    def _csv_url_name(self) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_export_csv"

    def get_urls(self):
        export = path("export-csv/", self.admin_site.admin_view(self.export_csv_view), name=self._csv_url_name())
        return [export, *super().get_urls()]

    def export_csv_view(self, request):
        """The changelist as filtered, searched and ordered by its query string."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        from django.contrib.admin.options import IncorrectLookupParameters

        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponse("This list cannot be filtered that way: check the filters in the address.",
                                status=400, content_type="text/plain; charset=utf-8")
        return self.csv_response(request, changelist.queryset, scope="filtered")

    def changelist_view(self, request, extra_context=None):
        url = reverse(f"{self.admin_site.name}:{self._csv_url_name()}")
        query = request.GET.copy()
        for key in NOT_FILTERS:
            query.pop(key, None)
        if query:
            url += "?" + query.urlencode()
        extra_context = {**(extra_context or {}), "csv_export_url": url}
        return super().changelist_view(request, extra_context)


def _label(text: str) -> str:
    """A header label as a sentence: "ip address" -> "IP address", "user id" -> "User ID"."""
    words = [ABBREVIATIONS.get(word, word) for word in text.split(" ")]
    label = " ".join(words)
    return label[:1].upper() + label[1:]


def _yes_no(value) -> str:
    return "" if value is None else ("Yes" if value else "No")


def _plain(value) -> object:
    """A display value as a plain cell: HTML from a display method reduced
    to its text, related objects by their name, numbers and times as they
    are (``table_chunks`` writes times as ISO 8601 UTC)."""
    if isinstance(value, bool):
        return _yes_no(value)
    if value is None or isinstance(value, (str, int, float, decimal.Decimal, dt.datetime)):
        return strip_tags(value) if isinstance(value, SafeData) else value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return str(value)

