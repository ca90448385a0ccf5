"""Building blocks of the read-only audit admins: capped counts, indexed search,
date drill-down by index probes, fixed-choice filters and the no-writes rule."""


import datetime as dt
from datetime import timedelta

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Max, Min, Q, QuerySet
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import capfirst

from audit.capture import registry
from core.numbers import ascii_digits

COUNT_CAP = 10_000  # changelists count at most this many rows (then "10000+" pages' worth)


class CappedCountPaginator(Paginator):
    """Counts at most :data:`COUNT_CAP` rows (``SELECT COUNT(*) FROM (... LIMIT
    cap)``, without the ordering): bounded work on tables of millions of rows. Beyond the cap the
    changelist shows the first cap rows' pages; filters reach the rest."""

    @cached_property
    def count(self):
        # no ORDER BY: the planner may count from any index (user_id, entity, failed...), not walk by time
        rows = self.object_list.order_by()
        parts = getattr(rows, "search_parts", None)
        if parts:
            # a search "a OR b" counted as one LIMITed scan is a sequential scan on PostgreSQL (no one
            # index serves an OR), and a UNION of the branches' ids reads every matching row for its id;
            # the branches made disjoint (a, b AND NOT a, ...) are counted one index each, the first
            # (the user's) from its index alone, and their sum is the number of matches
            found = 0
            for part in parts:
                found += part.order_by()[: COUNT_CAP - found].count()
                if found >= COUNT_CAP:
                    break
            return found
        return rows[:COUNT_CAP].count()

    def page(self, number):
        """A one-term search's page (``page_parts``, set by :class:`IndexedSearch`), read
        branch by branch: each branch's first rows in the page's order (one index each, in time
        order), their ``UNION`` in that order, the page's slice of it, then those rows. As one
        ``a OR b OR ...`` ordered by time, PostgreSQL walks the time index and filters every row
        newer than the page (no one index serves an OR in order). The page is the plain search's:
        each of its rows is among the first ``top`` rows of every branch it matches. The plain
        search's page on a database that cannot order and limit a ``UNION``'s parts, or for an
        ordering by an expression or a related model's column."""
        rows = self.object_list
        parts = getattr(rows, "page_parts", None)
        asked = rows.query.order_by or rows.model._meta.ordering
        # the columns of this table only: a UNION is ordered by the names it selects
        ordering = [("-" if o.startswith("-") else "") + self._column(rows.model, o.lstrip("-"))
                    for o in asked if isinstance(o, str) and "__" not in o and o != "?"]
        if (not parts or len(ordering) != len(asked)
                or not connections[rows.db].features.supports_slicing_ordering_in_compound):
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:  # as Paginator.page: the orphans join the last page
            top = self.count
        names = list(dict.fromkeys([self._column(rows.model, "pk"), *(o.lstrip("-") for o in ordering)]))
        firsts = [part.order_by(*ordering).values_list(*names)[:top] for part in parts]
        # UNION, not UNION ALL: a row two branches match is one row of the search
        found = firsts[0].union(*firsts[1:]).order_by(*ordering)[bottom:top]
        ids = [row[0] for row in found]
        by_id = {obj.pk: obj for obj in rows.filter(pk__in=ids)} if ids else {}
        return self._get_page([by_id[pk] for pk in ids if pk in by_id], number, self)

    @staticmethod
    def _column(model, name: str) -> str:
        return model._meta.pk.attname if name == "pk" else name


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

    @staticmethod
    def row_id_branches(term: str) -> list[Q]:
        """A term of ASCII digits (``#`` allowed before them) is also a row id."""
        digits = term.lstrip("#")
        return [Q(pk=int(digits))] if ascii_digits(digits) and len(term) < 19 else []

    def search_branches(self, term: str) -> list[Q]:
        return [Q(user_id=term), *self.row_id_branches(term)]

    def ordered_branches(self, term: str) -> list[Q]:
        """The matches of :meth:`search_branches`, as branches each of which one index returns
        in time order (an ``IN`` of several entity types is one branch per type), for the page's
        rows (:meth:`CappedCountPaginator.page`)."""
        return self.search_branches(term)

    def get_search_results(self, request, queryset, search_term):
        terms = [term[:64] for term in search_term.split()[:5]]
        unsearched = queryset
        for term in terms:
            condition = Q()
            for branch in self.search_branches(term):
                condition |= branch
            queryset = queryset.filter(condition)
        branches = self.search_branches(terms[0]) if len(terms) == 1 else []
        if len(branches) > 1 and isinstance(queryset, ProbedDatesQuerySet):
            # one term: the paginator counts its branches one index at a time (CappedCountPaginator),
            # each without the rows of the branches before it, so that no match is counted twice
            queryset.search_parts = [
                unsearched.filter(branch, *[~earlier for earlier in branches[:index]])
                for index, branch in enumerate(branches)
            ]
        if len(terms) == 1 and isinstance(queryset, ProbedDatesQuerySet):
            ordered = self.ordered_branches(terms[0])
            if len(ordered) > 1:
                queryset.page_parts = [unsearched.filter(branch) for branch in ordered]
        return queryset, False


class UserIdFilter(admin.SimpleListFilter):
    """Filter by actor: the accounts plus ``system`` and ``anonymous``
    (no DISTINCT over the audit table)."""

    title = "user"
    parameter_name = "user_id"

    def lookups(self, request, model_admin):
        from django.contrib.auth import get_user_model

        users = get_user_model().objects.order_by("user_id").values_list("user_id", "full_name")[:200]
        # "PE001 · Priya Eriksen", as the rows name their actors
        return [(uid, f"{uid} · {name.strip()}" if (name or "").strip() else uid) for uid, name in users] + [
            ("system", "system (no person: jobs and commands)"), ("anonymous", "anonymous (not signed in)")]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(user_id=value) if value else queryset


class EntityTypeFilter(admin.SimpleListFilter):
    """Filter by the tracked entity types (from the registry, not a DISTINCT)."""

    title = "entity type"
    parameter_name = "entity_type"
    field = "entity_type"

    def lookups(self, request, model_admin):
        # named as people call them ("Maintenance requests"), sorted by that name; the stored code is the value
        return sorted(((self.value_of(c), capfirst(c.model._meta.verbose_name_plural))
                       for c in registry.tracked_models()), key=lambda item: str(item[1]))

    @staticmethod
    def value_of(config) -> str:
        return config.entity_type

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class TableNameFilter(EntityTypeFilter):
    title = "record type"
    parameter_name = "table_name"
    field = "table_name"

    @staticmethod
    def value_of(config) -> str:
        return config.model._meta.db_table


class ProbedDatesQuerySet(QuerySet):
    """``datetimes(field, kind)`` for the admin's date hierarchy, by index
    probes instead of ``SELECT DISTINCT date_trunc(...)``: MIN and MAX of the
    field (two index ends), then one ``EXISTS`` per year / month / day
    between them (at most a few dozen range lookups on the ``-timestamp``
    indexes), so the drill-down costs the same on ten rows or ten million.
    Each probe is ``ORDER BY field LIMIT 1``: an unordered ``EXISTS`` lets
    PostgreSQL pick a sequential scan (its estimate assumes the matching rows
    are spread evenly), which on a table in time order reads every older row
    first.

    ``search_parts`` and ``page_parts`` (set by :class:`IndexedSearch` for a one-term
    search) travel with the clones, for :class:`CappedCountPaginator`."""

    search_parts: list | None = None
    page_parts: list | None = None

    def _clone(self):
        clone = super()._clone()
        clone.search_parts, clone.page_parts = self.search_parts, self.page_parts
        return clone

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None):
        bounds = self.aggregate(first=Min(field_name), last=Max(field_name))
        first, last = bounds["first"], bounds["last"]
        if first is None:
            return []
        found = []
        for start, end in _periods(first.astimezone(dt.UTC), last.astimezone(dt.UTC), kind):
            probe = self.filter(**{f"{field_name}__gte": start, f"{field_name}__lt": end}).order_by(field_name)
            if probe.values_list(field_name, flat=True)[:1]:
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


class TimeOrderedChangeList(ChangeList):
    """A changelist sorted by its :attr:`sortable_by` columns only, whatever ``?o=`` asks: Django
    offers and honours a sort by any column, which on an audit table is a sort of every row (an
    entity code's order over 5 million trail rows: 3 seconds)."""

    def get_ordering_field(self, field_name):
        return super().get_ordering_field(field_name) if field_name in self.sortable_by else None


class ReadOnlyAdmin(NoWrites, admin.ModelAdmin):
    """The audit tables' admin: read-only, bounded counts, the time column as the portal shows it,
    sorted by time only (either way; filters and the search narrow the rest)."""

    show_full_result_count = False
    # no "Show counts": a count per filter choice over the whole table (an audit table at 5 million
    # rows took minutes and held a database connection and a worker the while)
    show_facets = admin.ShowFacets.NEVER
    sortable_by = ("when",)
    paginator = CappedCountPaginator
    list_per_page = 100
    actions = None
    date_hierarchy = "timestamp"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return ProbedDatesQuerySet(model=qs.model, query=qs.query, using=qs._db)

    def get_changelist(self, request, **kwargs):
        return TimeOrderedChangeList

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(self.extra_readonly)

    @admin.display(description="time (UTC)", ordering="timestamp")
    def when(self, obj):
        return when_html(obj.timestamp)

    extra_readonly: tuple = ()


def when_html(value):
    """A time as the portal shows it (``templates/audit/_when.html``, :func:`audit.web.presentation.when`):
    "2026-12-02 05:44:13 UTC", the exact value with microseconds on hover."""
    from audit.web import presentation

    moment = presentation.when(value)
    if moment is None:
        return "—"
    return format_html('<time datetime="{}" title="{}">{}</time>', moment.iso, moment.exact, moment.text)
