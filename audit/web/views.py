"""Audit pages for people: the admin's audit-log page, the live dashboard,
each user's own activity and a manager's view of anyone's activity.

Reads go through :mod:`audit.selectors`; filters are validated by the
FilterSet shared with the API and the export (:class:`audit.api.filters.
AuditTrailFilter`), so a bad value is an error on the page, never a 500.
The audit log pages by keyset (``before=``/``after=`` cursors: one range read
of a page plus one row, whatever the depth) and counts its total up to
10,000 (SPEC's capped total); ``?page=`` still works, by offset. The
timelines page by ``?page=`` and fetch one row more than they show.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.timesince import timesince
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from audit import looks, selectors
from audit.api.filters import AuditTrailFilter
from audit.api.serializers import iso_ms
from audit.operations import events
from audit.web import presentation
from core.numbers import ascii_digits
from core.permissions import is_manager

logger = logging.getLogger(__name__)

AUDIT_LOG_PER_PAGE = 50
ACTIVITY_PER_PAGE = 50
MAX_PAGE = 100_000
FILTER_NAMES = ("hours", "from", "to", "user_id", "action_type", "entity_type", "entity_id", "status")
POLL_SECONDS = 5
#: the SSE stream the dashboard listens to (polling is the fallback); each
#: connection ends after STREAM_TIMEOUT seconds and the browser reconnects
STREAM_URL = "/api/realtime/stream"
STREAM_TIMEOUT = 60
FILTER_LABELS = {"hours": "Hours back", "from": "From (UTC)", "to": "To (UTC)", "user_id": "Person",
                 "action_type": "Action", "entity_type": "Kind of record", "entity_id": "Record code",
                 "status": "Status"}


def _refused() -> HttpResponse:
    """The page's answer to :class:`audit.looks.ReadNotRecorded`."""
    return HttpResponse(looks.REFUSED, status=503, content_type="text/plain; charset=utf-8")


def _manager_or_refuse(request):
    """Anonymous -> the login page; logged in but not a manager -> 403."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not is_manager(request.user):
        raise PermissionDenied("Only administrators and port engineers may read audit data.")
    return None


def _page_number(value) -> int:
    if value is None:
        return 1
    text = str(value).strip()
    if not ascii_digits(text) or not 1 <= int(text) <= MAX_PAGE:
        raise ValueError(f"page must be a whole number from 1 to {MAX_PAGE}.")
    return int(text)


def _form_filters(data: QueryDict) -> QueryDict:
    """The filters of ``data`` that have a value. The page's form submits
    every control, so an empty one means "no filter" here (the API, which
    no form fills in, refuses a present-but-empty parameter)."""
    query = QueryDict(mutable=True)
    for name in FILTER_NAMES:
        value = data.get(name)
        if value is not None and value.strip():
            query[name] = value
    return query


# --- /admin/audit-log ------------------------------------------------------------


#: the presets beside from/to: (hours, label)
PRESETS = (("1", "1 h"), ("24", "24 h"), ("168", "7 d"), ("720", "30 d"))
#: people offered by the user picker (a datalist: the browser matches ids and names as one types)
USER_PICKER_LIMIT = 2000


def _user_choices() -> list[tuple[str, str]]:
    from django.contrib.auth import get_user_model

    rows = get_user_model().objects.order_by("user_id").values_list("user_id", "full_name")[:USER_PICKER_LIMIT]
    return [(uid, f"{uid} · {name}" if name else uid) for uid, name in rows]


def _cursor_param(request, name: str) -> str | None:
    value = request.GET.get(name)
    if value is None or not value.strip():
        return None
    selectors.decode_cursor(value)  # ValueError on a forged or mangled cursor
    return value.strip()


def _count_text(n: int, exact: bool) -> str:
    return f"{n:,}" if exact else f"more than {n:,}"


@never_cache
def audit_log(request):
    """The audit trail for people: filters (presets, from/to, a user picker) kept in the URL, one
    sentence per record with its fields in a native <details>, "1–50 of 1,234", and keyset
    "Newer"/"Older" links (``after=``/``before=`` cursors; ``?page=`` still works)."""
    refusal = _manager_or_refuse(request)
    if refusal is not None:
        return refusal
    params = _form_filters(request.GET)
    filterset = AuditTrailFilter(data=params)
    for name, label in FILTER_LABELS.items():
        filterset.form.fields[name].label = label
    errors: list[str] = []
    before = after = None
    page = None
    try:
        before, after = _cursor_param(request, "before"), _cursor_param(request, "after")
        if request.GET.get("page") is not None:
            page = _page_number(request.GET.get("page"))
    except ValueError as exc:
        errors.append(str(exc))
    if not filterset.is_valid():
        for messages_ in filterset.errors.values():
            errors.extend(str(m) for m in messages_)
    filters = params.urlencode()
    context = {
        "title": "Audit log",
        "form": filterset.form,
        "errors": errors,
        "rows": [],
        "filters": filters,
        "users": _user_choices(),
        "action_choices": [c for c in filterset.form.fields["action_type"].choices if c[0]],
        "entity_choices": [(v, presentation.entity_label(v).capitalize()) for v, _ in
                           filterset.form.fields["entity_type"].choices if v],
        "status_choices": [c for c in filterset.form.fields["status"].choices if c[0]],
        "values": {name: params.get(name, "") for name in FILTER_NAMES},
        "per_page": AUDIT_LOG_PER_PAGE,
    }
    if errors:
        return render(request, "audit/audit_log.html", context, status=400)
    qs = filterset.qs
    total, relation = selectors.capped_total(qs)
    exact = relation == "eq"
    if page is not None and before is None and after is None:
        trail, has_older = selectors.page_of(qs, page=page, per_page=AUDIT_LOG_PER_PAGE)
        has_newer = page > 1
        first = (page - 1) * AUDIT_LOG_PER_PAGE + 1
        first_exact = True
    else:
        trail, has_newer, has_older = selectors.keyset_page(qs, per_page=AUDIT_LOG_PER_PAGE, before=before,
                                                            after=after)
        first, first_exact = (1, True)
        if trail and has_newer:
            newer, newer_relation = selectors.newer_than_count(qs, trail[0])
            first, first_exact = newer + 1, newer_relation == "eq"
    try:
        read = {**filterset.describe()}
        for name, value in (("page", page), ("before", before), ("after", after)):
            if value is not None:
                read[name] = value
        looks.record_read(request, "Viewed audit log", read)
    except looks.ReadNotRecorded:
        return _refused()
    texts = presentation.change_texts(trail)
    rows = [
        {
            "obj": row,
            "text": text,
            "entity_url": presentation.entity_url(row.entity_type, row.entity_id),
            "history_query": urlencode({"entity_type": row.entity_type, "entity_id": row.entity_id,
                                        "hours": "8760"}),
            "user_url": presentation.user_timeline_url(row.user_id),
        }
        for row, text in zip(trail, texts, strict=True)
    ]
    hours_now = params.get("hours", "24") if not (params.get("from") or params.get("to")) else None
    presets = []
    for hours, label in PRESETS:
        query = params.copy()
        for name in ("hours", "from", "to"):
            query.pop(name, None)
        query["hours"] = hours
        presets.append({"label": label, "url": "?" + query.urlencode(), "active": hours_now == hours})

    def link(**cursor) -> str:
        query = params.copy()
        query.update(cursor)
        return "?" + query.urlencode()

    last = first + len(trail) - 1
    if trail:
        position = (f"{first:,}–{last:,}" if first_exact else f"{len(trail)} records after the first {first - 1:,}")
        summary = f"{position} of {_count_text(total, exact)}"
    else:
        summary = f"No record of {_count_text(total, exact)}" if total else "No record"
    context.update({
        "rows": rows,
        "summary": summary,
        "total": total,
        "total_exact": exact,
        "presets": presets,
        "newer_url": link(after=selectors.encode_cursor(trail[0])) if trail and has_newer else None,
        "older_url": link(before=selectors.encode_cursor(trail[-1])) if trail and has_older else None,
        "prev_page_url": link(page=str(page - 1)) if page and page > 1 else None,
        "next_page_url": link(page=str(page + 1)) if page and has_older else None,
        "export_url": "/api/realtime/export-audit" + (f"?{filters}" if filters else ""),
    })
    return render(request, "audit/audit_log.html", context)


# --- /dashboard/ -----------------------------------------------------------------

#: (metric, what the tile says it counts, the sentence under it, the list behind it: a URL or an
#: admin URL name, admin-only)
METRICS = (
    ("active_users_1h", "People active, 1 h", "distinct people who did something in the last hour",
     ("admin", "admin:audit_activitylog_changelist", "window=1h")),
    ("recent_activities_1h", "Activities, 1 h", "activity records written in the last hour",
     ("admin", "admin:audit_activitylog_changelist", "window=1h")),
    ("recent_errors_1h", "Error and critical events, 1 h", "system events of severity error or critical, last hour",
     ("admin", "admin:audit_systemevent_changelist", "window=1h&severity__in=error%2Ccritical")),
    ("online_users_15m", "Online now, 15 min", "active in the last 15 minutes and not logged out",
     ("admin", "admin:audit_activitylog_changelist", "window=1h")),
    ("pending_maintenance", "Requests awaiting approval", "maintenance requests with status pending",
     ("portal", "request_list", "status=pending")),
    ("active_emergencies", "Open emergencies", "reported, acknowledged or dispatched (not resolved or closed)",
     ("portal", "emergency_list", "active=on")),
)


def _tiles(request, metrics: dict) -> list[dict]:
    """The counters as tiles, each linking to the list it counts (admin lists only for those who may use them)."""
    may_admin = admin.site.has_permission(request)
    tiles = []
    for key, label, help_, (where, name, query) in METRICS:
        url = None
        if where == "portal" or may_admin:
            try:
                url = f"{reverse(name)}?{query}"
            except NoReverseMatch:
                url = None
        tiles.append({"key": key, "label": label, "help": help_, "value": metrics[key], "url": url})
    return tiles


def _open_emergencies(now) -> list[dict]:
    """The emergencies not resolved or closed, oldest first, each with its age."""
    from emergencies.models import ACTIVE_STATUSES, Emergency

    rows = Emergency.objects.filter(status__in=ACTIVE_STATUSES).order_by("created_at")[:10]
    return [{"code": e.code, "url": reverse("emergency_detail", args=[e.code]),
             "sentence": f"{e.get_severity_display()} {e.get_emergency_type_display().lower()} on {e.vessel}"
                         f" · {e.get_status_display().lower()}",
             "age": timesince(e.created_at, now, depth=2), "when": presentation.when(e.created_at)}
            for e in rows]


def _charts(now):
    per_minute = presentation.bar_chart(
        selectors.activity_per_minute(hours=1, now=now),
        title="Activities per minute, last hour (UTC)", unit="activities", label_format="%H:%M",
    )
    per_hour = presentation.bar_chart(
        selectors.errors_per_hour(hours=24, now=now),
        title="Error and critical events per hour, last 24 hours (UTC)", unit="error and critical events",
        label_format="%H:00", axis_every=4,
    )
    return per_minute, per_hour


@require_POST
def acknowledge_event(request, event_id: int):
    """The dashboard's and home page's "Acknowledge" button (a form; the script posts the
    same to the API). Back to the page it came from, with a message."""
    refusal = _manager_or_refuse(request)
    if refusal is not None:
        return refusal
    note = (request.POST.get("note") or "")[:events.NOTE_MAX]
    try:
        event = events.acknowledge_event(event_id=event_id, actor=request.user, note=note)
    except events.EventNotFound:
        raise Http404("No system event has this id.") from None
    except events.AlreadyAcknowledged as exc:
        messages.warning(request, str(exc))
    else:
        messages.success(request, f"You acknowledged {presentation.event_label(event.event_type).lower()} "
                                  f"#{event.pk}{' for ' + event.entity_id if event.entity_id else ''}.")
    back = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("audit_dashboard")
    return redirect(back)


@never_cache
def dashboard(request):
    refusal = _manager_or_refuse(request)
    if refusal is not None:
        return refusal
    now = timezone.now()
    metrics = selectors.dashboard_metrics(now=now)
    latest = list(selectors.latest_activities(limit=10))
    per_minute, per_hour = _charts(now)
    try:  # the opening of the look; its refreshes carry the look token and are not recorded again
        looks.record_read(request, "Viewed audit dashboard", {"page": "dashboard"})
    except looks.ReadNotRecorded:
        return _refused()
    look = looks.issue(user=request.user, page="dashboard")
    context = {
        "now": now,
        "tiles": _tiles(request, metrics),
        "latest": presentation.activity_texts(latest),
        "emergencies": _open_emergencies(now),
        "critical": presentation.critical_events(now),
        "charts": [("activity", per_minute), ("errors", per_hour)],
        "poll_seconds": POLL_SECONDS,
        "stream_url": f"{STREAM_URL}?{urlencode({'timeout': STREAM_TIMEOUT, looks.PARAM: look})}" if STREAM_URL else "",
        "api_url": f"/api/realtime/dashboard?{urlencode({looks.PARAM: look})}",
        "data_url": f"{reverse('audit_dashboard_data')}?{urlencode({looks.PARAM: look})}",
    }
    return render(request, "audit/dashboard.html", context)


@never_cache
def dashboard_data(request):
    """What the dashboard's script polls besides ``/api/realtime/dashboard``:
    the chart series and the open critical events. Not recorded: it is only
    ever a refresh of a dashboard whose opening was recorded."""
    if not request.user.is_authenticated:
        return JsonResponse({"success": False, "error": {"code": "not_authenticated",
                                                         "message": "Log in first."}}, status=401)
    if not is_manager(request.user):
        return JsonResponse({"success": False, "error": {"code": "permission_denied",
                                                         "message": "Only administrators and port engineers may read audit data."}},
                            status=403)
    now = timezone.now()
    per_minute, per_hour = _charts(now)
    return JsonResponse({
        "success": True,
        "timestamp": iso_ms(now),
        "charts": {"activity": presentation.chart_json(per_minute), "errors": presentation.chart_json(per_hour)},
        "critical_events": presentation.critical_events(now),
        "latest_activities": [
            {"timestamp": iso_ms(a["obj"].timestamp), "time": a["when"].text, "exact": a["when"].exact,
             "sentence": a["sentence"]}
            for a in presentation.activity_texts(selectors.latest_activities(limit=10))
        ],
        "open_emergencies": [{k: v for k, v in e.items() if k != "when"} | {"time": e["when"].text}
                             for e in _open_emergencies(now)],
    })


# --- activity timelines -------------------------------------------------------------


def _timeline(request, user_id: str, *, own: bool):
    errors: list[str] = []
    hours_param = request.GET.get("hours")
    hours = 24.0
    page = 1
    if hours_param is not None and hours_param.strip():
        try:
            hours = selectors.validate_hours(hours_param)
        except ValueError as exc:
            errors.append(str(exc))
    try:
        page = _page_number(request.GET.get("page"))
    except ValueError as exc:
        errors.append(str(exc))
    rows, has_next = [], False
    if not errors:
        rows, has_next = selectors.page_of(
            selectors.activities_since(hours=hours, user_id=user_id), page=page, per_page=ACTIVITY_PER_PAGE
        )
        if not own:
            try:
                looks.record_read(request, "Viewed user activity", {"user_id": user_id, "hours": hours, "page": page})
            except looks.ReadNotRecorded:
                return _refused()
    context = {
        "subject_id": user_id,
        "subject": presentation.person(user_id),
        "own": own,
        "rows": presentation.activity_texts(rows),
        "errors": errors,
        "hours": hours_param if hours_param is not None else "24",
        "page": page,
        "has_next": has_next,
        "has_previous": page > 1 and not errors,
        "hour_choices": (("1", "Last hour"), ("24", "Last 24 hours"), ("168", "Last 7 days"), ("720", "Last 30 days"),
                         ("8760", "Last year")),
    }
    return render(request, "audit/activity.html", context, status=400 if errors else 200)


@login_required
@never_cache
def my_activity(request):
    return _timeline(request, request.user.user_id, own=True)


@never_cache
def user_activity(request, user_id: str):
    if request.user.is_authenticated and request.user.user_id == user_id:
        return _timeline(request, user_id, own=True)
    refusal = _manager_or_refuse(request)
    if refusal is not None:
        return refusal
    if len(user_id) > 20 or "\x00" in user_id:
        raise PermissionDenied("Not a user id.")
    return _timeline(request, user_id, own=False)
