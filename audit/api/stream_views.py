"""``GET /api/realtime/stream``: new audit rows as Server-Sent Events.

A DRF view, so authentication (Bearer token or session), the 401/403/400
error envelope and the OpenAPI schema work as for the other real-time
endpoints; it validates the parameters, records the read ("Opened audit
stream") before the first byte, and answers with a ``StreamingHttpResponse``
over :class:`audit.api.stream.AuditStream` (an async iterator under ASGI, so
nothing buffers it; a sync one under WSGI and the test client).

Parameters: ``kinds`` (comma list of activity, audit, event; default every
kind the caller may see), ``severity`` (events only: info, warning, error,
critical or a comma list), ``last_event_id`` (or the ``Last-Event-ID``
header: resume after that message), ``max_events`` and ``timeout`` (end the
stream after that many messages or seconds; for tests and scripts; default:
30 minutes, after which an EventSource reconnects and is authenticated
again).

Who sees what: administrators and port engineers every row; staff only
their own activity (asking staff for ``audit`` or ``event`` is a 403).
"""

from __future__ import annotations

import math

from django.core.handlers.asgi import ASGIRequest
from django.db import connection as db_connection
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer

from audit import looks, selectors
from audit.api import stream, stream_asgi, stream_hub
from audit.api.views import _ERRORS, _AuditReadView, look_param
from core.numbers import ascii_digits
from core.permissions import is_manager

DEFAULT_TIMEOUT = 1800.0
MAX_TIMEOUT = 86400.0
MAX_EVENTS = 100_000


def _parse_kinds(value: str) -> tuple[str, ...]:
    out: list[str] = []
    for item in value.split(","):
        name = item.strip().lower()
        if name not in stream.KINDS:
            raise ValueError(f"kinds: {item.strip()[:20]!r} is not a kind: use activity, audit, event or a comma list.")
        if name not in out:
            out.append(name)
    return tuple(k for k in stream.KINDS if k in out)


def _parse_timeout(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"timeout must be a number of seconds greater than 0, not {value[:20]!r}.") from None
    if math.isnan(number) or number <= 0 or number > MAX_TIMEOUT:
        raise ValueError(f"timeout must be greater than 0 and at most {MAX_TIMEOUT:.0f} seconds.")
    return number


def _parse_max_events(value: str) -> int:
    text = value.strip()
    if not ascii_digits(text) or not 1 <= int(text) <= MAX_EVENTS:
        raise ValueError(f"max_events must be an integer from 1 to {MAX_EVENTS}.")
    return int(text)


class StreamQuery:
    """The stream's parameters; a present but blank value is an error."""

    PARSERS = {
        "kinds": _parse_kinds,
        "severity": lambda v: tuple(selectors.parse_severities(v)),
        "timeout": _parse_timeout,
        "max_events": _parse_max_events,
    }

    def __init__(self, params, *, last_event_id: str | None):
        self.params = params
        self.last_event_id = last_event_id

    def cleaned(self, *, now: float) -> dict:
        errors: dict[str, list[str]] = {}
        out: dict = {"kinds": None, "severity": None, "timeout": DEFAULT_TIMEOUT, "max_events": None, "trackers": None}
        for name, parse in self.PARSERS.items():
            raw = self.params.get(name)
            if raw is None:
                continue
            if not raw.strip() or "\x00" in raw or len(raw) > 200:
                errors[name] = [f"{name} must not be empty." if not raw.strip() else f"{name} is not valid."]
                continue
            try:
                out[name] = parse(raw)
            except ValueError as exc:
                errors[name] = [str(exc)]
        if self.last_event_id is not None:
            try:
                out["trackers"] = stream.decode_cursor(self.last_event_id, now=now)
            except stream.CursorError as exc:
                errors["last_event_id"] = [str(exc)]
        if errors:
            raise exceptions.ValidationError(errors)
        return out


async def _nothing():
    """The body Django sends when the stream is handed over: none (the hub sends it)."""
    return
    yield  # noqa: B901 - an async generator


class EventStreamRenderer(BaseRenderer):
    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):  # pragma: no cover - never used
        return data


class AuditStreamView(_AuditReadView):
    """New activity, audit_trail and system_events rows as Server-Sent Events."""

    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    def perform_content_negotiation(self, request, force=False):
        # The body is an event stream whatever Accept says; errors are JSON envelopes.
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        operation_id="realtime_stream",
        tags=["realtime audit"],
        parameters=[
            OpenApiParameter("kinds", OpenApiTypes.STR,
                             description="Comma list of activity, audit, event (default: every kind you may see; "
                             "staff may ask only for activity)."),
            OpenApiParameter("severity", OpenApiTypes.STR,
                             description="System events of these severities only: info, warning, error, critical "
                             "or a comma list."),
            OpenApiParameter("last_event_id", OpenApiTypes.STR,
                             description="Resume after this message id (as the Last-Event-ID header does)."),
            OpenApiParameter("Last-Event-ID", OpenApiTypes.STR, location=OpenApiParameter.HEADER,
                             description="Resume after this message id: every row missed, none twice."),
            OpenApiParameter("max_events", {"type": "integer", "minimum": 1, "maximum": MAX_EVENTS},
                             description="End the stream after this many messages."),
            OpenApiParameter("timeout", {"type": "number", "minimum": 0, "exclusiveMinimum": True,
                                         "maximum": MAX_TIMEOUT, "default": DEFAULT_TIMEOUT},
                             description="End the stream after this many seconds (the client then reconnects)."),
            look_param(),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR,
                description="Server-Sent Events. Each message: `id:` a cursor such as `a123-t45-e6` "
                "(send it back as Last-Event-ID), `event:` activity, audit, event or acknowledged (an event "
                "someone acknowledged, as it is now), `data:` one JSON row "
                "shaped as in user-activity (plus user_id), audit-trail or system-events. "
                "`: keep-alive` comments every 15 s.",
            ),
            **_ERRORS,
        },
    )
    def get(self, request):
        header = request.META.get("HTTP_LAST_EVENT_ID")
        last_event_id = request.query_params.get("last_event_id", header)
        params = StreamQuery(request.query_params, last_event_id=last_event_id).cleaned(now=stream.time.monotonic())
        user = request.user
        manager = is_manager(user)
        allowed = stream.KINDS if manager else ("activity",)
        kinds = params["kinds"] or allowed
        refused = [k for k in kinds if k not in allowed]
        if refused:
            self.permission_denied(request, message="Staff may stream only their own activity (kinds=activity).")
        audience = stream.Audience(
            kinds=kinds,
            own_user_id=None if manager else user.user_id,
            severities=params["severity"],
        )
        if not looks.is_known(request, page="dashboard"):  # the open dashboard reconnecting
            looks.record_read(request, "Opened audit stream", {
                "kinds": ",".join(kinds),
                "severity": ",".join(params["severity"] or ()),
                "resume": last_event_id or "",
            })
        trackers = params["trackers"] or stream.current_cursor()
        feed = stream.AuditStream(audience=audience, trackers=trackers)
        options = {"max_events": params["max_events"], "timeout": params["timeout"]}
        if not isinstance(request._request, ASGIRequest):
            body = feed.messages(**options)
        elif (slot := stream_asgi.offered(request._request.scope)) is not None:
            # marine_center.asgi sends the stream from the hub once this response's headers are out:
            # nothing of this request is kept while the stream is open
            slot.handoff = stream_asgi.Handoff(feed=feed, **options)
            body = _nothing()
        else:
            body = stream_hub.hub_messages(feed, **options)
            # the request stays referenced while its stream is open (for hours); the URL patterns
            # tried before this one (kept for the 404 debug page) were 7 of its ~37 KB
            match = getattr(request._request, "resolver_match", None)
            if match is not None:
                match.tried = []
        if isinstance(request._request, ASGIRequest) and not db_connection.in_atomic_block:
            # the stream is fed by the process's one poller: give back this request's connection now
            # rather than when the stream ends (Django closes it at request_finished)
            db_connection.close()
        response = StreamingHttpResponse(body, content_type="text/event-stream; charset=utf-8")
        response["Cache-Control"] = "no-cache, no-store"
        response["X-Accel-Buffering"] = "no"  # nginx: pass each message through at once
        response["X-Content-Type-Options"] = "nosniff"
        return response

