"""The real-time audit API: ``/api/realtime/...`` (SPEC "The API").

Each view validates its parameters with a FilterSet of :mod:`audit.api.filters`
(a bad one is a 400 in the error envelope naming it), reads through
:mod:`audit.selectors`, records the read in ``activity_logs`` and answers.
The read is recorded before the first byte is sent; if it cannot be
recorded the read is refused (503), as RELIABILITY asks. A refused read
(403) is recorded too, on a best-effort basis.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import timedelta

from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import exports, looks, selectors, services
from audit.api.filters import (
    AuditTrailFilter,
    AuditTrailQuery,
    EntityHistoryQuery,
    SystemEventsQuery,
    UserActivityQuery,
    entity_type_choices,
)
from audit.api.permissions import CanReadAllAuditData, CanViewEntityHistory, CanViewUserActivity
from audit.api.rendering import BOOL, INT, TEXT, TIME, JSONRows, SplicingJSONRenderer, columns, json_rows
from audit.api.serializers import (
    AcknowledgeRequestSerializer,
    AcknowledgeResponseSerializer,
    AuditTrailResponseSerializer,
    DashboardResponseSerializer,
    EntityHistoryResponseSerializer,
    SystemEventsResponseSerializer,
    UserActivityResponseSerializer,
    hours_number,
)
from audit.context import audit_context
from audit.models import ActionType, AuditStatus, RecordSource
from audit.operations import events
from core.fields import iso_ms
from core.numbers import ascii_digits
from marine_center.api import ErrorEnvelopeSerializer

#: the columns of a system event in the API and the stream
EVENT_FIELDS = ("id", "timestamp", "event_type", "entity_type", "entity_id", "event_data", "severity", "processed",
                "processed_at", "acknowledged_at", "acknowledged_by", "acknowledgement_note")


#: the rows of the four lists as the database writes them (audit.api.rendering), keys in the documented order
EVENT_ROW = columns(("id", INT), ("timestamp", TIME), ("event_type", TEXT), ("entity_type", TEXT),
                    ("entity_id", TEXT), ("event_data", TEXT), ("severity", TEXT), ("processed", BOOL),
                    ("processed_at", TIME), ("acknowledged_at", TIME), ("acknowledged_by", TEXT),
                    ("acknowledgement_note", TEXT))
ACTIVITY_ROW = columns(("id", INT), ("activity", TEXT), ("details", TEXT), ("timestamp", TIME), ("ip_address", TEXT))
CHANGE_ROW = columns(("timestamp", TIME), ("action_type", TEXT, "audit__action_type", ActionType.UPDATE.value),
                     ("field_name", TEXT), ("old_value", TEXT), ("new_value", TEXT), ("user_id", TEXT),
                     ("change_reason", TEXT), ("source", TEXT, "audit__source", RecordSource.CAPTURED.value))
TRAIL_ROW = columns(("id", INT), ("timestamp", TIME), *((name, TEXT) for name in (
    "user_id", "action_type", "entity_type", "entity_id", "old_value", "new_value", "ip_address", "status",
    "error_message", "source")))


def event_row(row: dict) -> dict:
    """A system event's ``values()`` row with its timestamps as ISO 8601 UTC with milliseconds."""
    for name in ("timestamp", "processed_at", "acknowledged_at"):
        row[name] = iso_ms(row[name]) if row[name] is not None else None
    return row

logger = logging.getLogger(__name__)


class AuditUnavailable(exceptions.APIException):
    """The API's answer to :class:`audit.looks.ReadNotRecorded`."""

    status_code = 503
    default_detail = looks.REFUSED
    default_code = "audit_unavailable"



def _with_exact(details: dict, params: dict) -> dict:
    """The read's details, noting ``exact_total`` when it was asked for."""
    return {**details, "exact_total": True} if params.get("exact_total") else details


def _merged(query_params, **path) -> dict:
    """Query parameters plus the path's (the path wins)."""
    data = {key: query_params.get(key) for key in query_params}
    data.update(path)
    return data


# --- OpenAPI -----------------------------------------------------------------------

_ERROR = ErrorEnvelopeSerializer
_ERRORS = {
    400: OpenApiResponse(_ERROR, description="A bad parameter; `error.fields` names it."),
    401: OpenApiResponse(_ERROR, description="No credentials."),
    403: OpenApiResponse(_ERROR, description="Not allowed to read this audit data."),
    503: OpenApiResponse(_ERROR, description="The read could not be recorded in the audit log and was refused."),
}


def _hours(default) -> OpenApiParameter:
    return OpenApiParameter(
        "hours",
        {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 8760, "default": default},
        description="Hours back from now: greater than 0, at most 8760, decimals allowed (0.5 is half an hour).",
    )


def _limit(default) -> OpenApiParameter:
    return OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": 1000, "default": default},
        description="At most this many records (1 to 1000); `total` counts the matches (capped, see exact_total).",
    )


_EXACT_TOTAL = OpenApiParameter(
    "exact_total", {"type": "string", "enum": ["1", "0"]},
    description="1: `total` is the exact number of matches, at its cost. Otherwise `total` is exact up to 10000; "
    "above that it is 10000 with `total_relation` \"gte\".",
)


def _text_param(name: str, max_length: int, description: str, location=OpenApiParameter.QUERY) -> OpenApiParameter:
    return OpenApiParameter(
        name, {"type": "string", "maxLength": max_length}, location=location, description=description
    )


def _enum_param(name: str, values, description: str, location=OpenApiParameter.QUERY) -> OpenApiParameter:
    return OpenApiParameter(name, {"type": "string", "enum": list(values)}, location=location, description=description)


def look_param() -> OpenApiParameter:
    return _text_param(looks.PARAM, 300, "The look token of the dashboard page this refresh belongs to: a refresh "
                       "of a look already recorded writes no new activity row (SPEC: once per look).")


def _trail_filters() -> list[OpenApiParameter]:
    return [
        _hours(24),
        _text_param("user_id", 20, "Actor's user_id (exact)."),
        _enum_param("action_type", ActionType.values, "Action type (exact)."),
        _enum_param("entity_type", [v for v, _ in entity_type_choices()], "Entity type (exact)."),
        _text_param("entity_id", 64, "Entity code such as MR001 (exact)."),
        _enum_param("status", AuditStatus.values, "Status of the change (exact)."),
    ]


# --- views -----------------------------------------------------------------------


class _AuditReadView(APIView):
    permission_classes = [IsAuthenticated, CanReadAllAuditData]
    renderer_classes = [SplicingJSONRenderer]  # JSONRenderer, taking the lists' rows as the database wrote them
    http_method_names = ["get", "head", "options"]

    def permission_denied(self, request, message=None, code=None):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            try:  # best effort: the denial stands whatever happens here
                with audit_context(actor=user):
                    services.log_activity("Denied audit read", json.dumps({"path": request.path}, sort_keys=True))
            except Exception:  # noqa: BLE001 - counted on stderr, the 403 stands
                print(f"audit: denied read of {request.path} not recorded", file=sys.stderr)
        super().permission_denied(request, message=message, code=code)

    def handle_exception(self, exc):
        if isinstance(exc, looks.ReadNotRecorded):
            exc = AuditUnavailable()
        return super().handle_exception(exc)


class UserActivityView(_AuditReadView):
    """The activity timeline of one user, newest first."""

    permission_classes = [IsAuthenticated, CanViewUserActivity]

    @extend_schema(
        operation_id="realtime_user_activity",
        tags=["realtime audit"],
        parameters=[
            _text_param("user_id", 20, "The user's user_id (PE001).", location=OpenApiParameter.PATH),
            _hours(24),
            _limit(50),
            _EXACT_TOTAL,
        ],
        responses={200: UserActivityResponseSerializer, **_ERRORS},
    )
    def get(self, request, user_id: str):
        params = UserActivityQuery(data=_merged(request.query_params, user_id=user_id)).cleaned()
        qs = selectors.activities_since(hours=params["hours"], user_id=params["user_id"])
        total, relation = selectors.capped_total(qs, exact=params["exact_total"])
        rows = json_rows(qs, ACTIVITY_ROW, limit=params["limit"])
        looks.record_read(request, "Viewed user activity",
                    _with_exact({"user_id": params["user_id"], "hours": params["hours"], "limit": params["limit"]},
                                params))
        return Response({
            "success": True,
            "user_id": params["user_id"],
            "activities": JSONRows(rows),
            "count": len(rows),
            "total": total,
            "total_relation": relation,
            "timestamp": iso_ms(timezone.now()),
        })


class EntityHistoryView(_AuditReadView):
    """Field-level changes of one entity, newest first."""

    permission_classes = [IsAuthenticated, CanViewEntityHistory]

    @extend_schema(
        operation_id="realtime_entity_history",
        tags=["realtime audit"],
        parameters=[
            _enum_param("entity_type", [v for v, _ in entity_type_choices()], "The entity type.",
                        location=OpenApiParameter.PATH),
            _text_param("entity_id", 64, "The entity's code (MR001, EMG001, a user_id).",
                        location=OpenApiParameter.PATH),
            _limit(100),
            _EXACT_TOTAL,
        ],
        responses={200: EntityHistoryResponseSerializer, **_ERRORS},
    )
    def get(self, request, entity_type: str, entity_id: str):
        params = EntityHistoryQuery(
            data=_merged(request.query_params, entity_type=entity_type, entity_id=entity_id)
        ).cleaned()
        qs = selectors.entity_changes(params["entity_type"], params["entity_id"])
        total, relation = selectors.capped_total(qs, exact=params["exact_total"])
        rows = json_rows(qs, CHANGE_ROW, limit=params["limit"])
        looks.record_read(request, "Viewed entity history",
                    _with_exact({"entity_type": params["entity_type"], "entity_id": params["entity_id"],
                                 "limit": params["limit"]}, params))
        return Response({
            "success": True,
            "entity_type": params["entity_type"],
            "entity_id": params["entity_id"],
            "changes": JSONRows(rows),
            "count": len(rows),
            "total": total,
            "total_relation": relation,
        })


class SystemEventsView(_AuditReadView):
    """System events of the last hours, newest first."""

    @extend_schema(
        operation_id="realtime_system_events",
        tags=["realtime audit"],
        parameters=[
            _hours(1),
            OpenApiParameter(
                "severity", OpenApiTypes.STR,
                description="info, warning, error or critical, or a comma list of them (error,critical).",
            ),
            _enum_param("processed", ["true", "false"], "Only processed (true) or unprocessed (false) events."),
            _enum_param("acknowledged", ["true", "false"], "Only acknowledged (true) or open (false) events."),
            _limit(1000),
            _EXACT_TOTAL,
        ],
        responses={200: SystemEventsResponseSerializer, **_ERRORS},
    )
    def get(self, request):
        params = SystemEventsQuery(data=request.query_params).cleaned()
        qs = selectors.events_since(hours=params["hours"], severities=params["severity"],
                                    processed=params["processed"], acknowledged=params["acknowledged"])
        total, relation = selectors.capped_total(qs, exact=params["exact_total"])
        rows = json_rows(qs, EVENT_ROW, limit=params["limit"])
        described = {"hours": params["hours"], "severity": params["severity"], "limit": params["limit"]}
        described.update({k: params[k] for k in ("processed", "acknowledged") if params[k] is not None})
        looks.record_read(request, "Viewed system events", _with_exact(described, params))
        return Response({
            "success": True,
            "events": JSONRows(rows),
            "count": len(rows),
            "total": total,
            "total_relation": relation,
            "hours_included": hours_number(params["hours"]),
        })


class AcknowledgedTwice(exceptions.APIException):
    status_code = 409
    default_code = "already_acknowledged"


class AcknowledgeEventView(_AuditReadView):
    """A person takes a system event on (admins and port engineers; a refusal is recorded)."""

    http_method_names = ["post", "options"]

    @extend_schema(
        operation_id="realtime_system_event_acknowledge",
        tags=["realtime audit"],
        parameters=[OpenApiParameter("event_id", {"type": "integer", "minimum": 1}, location=OpenApiParameter.PATH,
                                     description="The system event's id.")],
        request=AcknowledgeRequestSerializer,
        responses={
            200: AcknowledgeResponseSerializer,
            400: OpenApiResponse(_ERROR, description="A bad note; `error.fields` names it."),
            401: _ERRORS[401],
            403: OpenApiResponse(_ERROR, description="Only administrators and port engineers acknowledge events."),
            404: OpenApiResponse(_ERROR, description="No system event has this id."),
            409: OpenApiResponse(_ERROR, description="The event was acknowledged before (by whom and when)."),
        },
    )
    def post(self, request, event_id: str):
        if not ascii_digits(event_id) or len(event_id) > 18:
            raise exceptions.NotFound("No system event has this id.")
        body = AcknowledgeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            event = events.acknowledge_event(event_id=int(event_id), actor=request.user,
                                             note=body.validated_data["note"])
        except events.EventNotFound:
            raise exceptions.NotFound("No system event has this id.") from None
        except events.AlreadyAcknowledged as exc:
            raise AcknowledgedTwice(str(exc)) from None
        row = {name: getattr(event, name) for name in EVENT_FIELDS}
        return Response({"success": True, "event": event_row(row)})


class AuditTrailView(_AuditReadView):
    """audit_trail records of the last hours with exact filters, newest first."""

    @extend_schema(
        operation_id="realtime_audit_trail",
        tags=["realtime audit"],
        parameters=[*_trail_filters(), _limit(200), _EXACT_TOTAL],
        responses={200: AuditTrailResponseSerializer, **_ERRORS},
    )
    def get(self, request):
        filterset = AuditTrailQuery(data=request.query_params)
        params = filterset.cleaned()
        qs = filterset.qs
        total, relation = selectors.capped_total(qs, exact=params["exact_total"])
        rows = json_rows(qs, TRAIL_ROW, limit=params["limit"])
        looks.record_read(request, "Viewed audit trail", _with_exact({**filterset.describe(), "limit": params["limit"]}, params))
        return Response({"success": True, "records": JSONRows(rows), "count": len(rows), "total": total,
                         "total_relation": relation})


class DashboardView(_AuditReadView):
    """Counters and the 10 newest activities."""

    @extend_schema(
        operation_id="realtime_dashboard",
        tags=["realtime audit"],
        parameters=[look_param()],
        responses={200: DashboardResponseSerializer, **{k: v for k, v in _ERRORS.items() if k != 400}},
    )
    def get(self, request):
        now = timezone.now()
        metrics = selectors.dashboard_metrics(now=now)
        latest = list(selectors.latest_activities(limit=10).values_list("user_id", "activity", "details", "timestamp"))
        if not looks.is_known(request, page="dashboard"):  # a refresh of an open dashboard is no new read
            looks.record_read(request, "Viewed audit dashboard", {})
        return Response({
            "success": True,
            "timestamp": iso_ms(now),
            "metrics": metrics,
            "latest_activities": [
                {"user_id": who, "activity": activity, "details": details, "timestamp": iso_ms(ts)}
                for who, activity, details, ts in latest
            ],
        })


class ExportAuditView(_AuditReadView):
    """The audit_trail records of the last hours as a CSV attachment, streamed."""

    def perform_content_negotiation(self, request, force=False):
        # The body is CSV whatever the Accept header says; errors are JSON envelopes.
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        operation_id="realtime_export_audit",
        tags=["realtime audit"],
        parameters=[
            *_trail_filters(),
            _text_param("from", 40, "From this date and time (UTC, included; `2026-12-02T05:44`) instead of hours "
                        "back from now, as the audit-log page's range."),
            _text_param("to", 40, "Up to this date and time (UTC, excluded); alone, the `hours` before it."),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="Header row (" + ", ".join(exports.CSV_HEADER) + ") then one row per record, "
                "every cell quoted, formula-like text prefixed with '. "
                "File name: audit-trail_<from>_<to>.csv (UTC).",
            ),
            **_ERRORS,
        },
    )
    def get(self, request):
        filterset = AuditTrailFilter(data=request.query_params)
        params = filterset.cleaned()
        range_start, range_end = filterset.time_range()  # the page's from/to, when given
        end = range_end or timezone.now()
        start = range_start or end - timedelta(hours=params["hours"])
        qs = filterset.qs
        looks.record_read(request, "Exported audit trail", {**filterset.describe(), "format": "csv"})
        if isinstance(request._request, ASGIRequest):
            body = exports.acsv_chunks(qs)
        else:
            body = exports.csv_chunks(qs)
        response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{exports.export_filename(start=start, end=end)}"'
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response
