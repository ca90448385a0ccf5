"""Opens the audit context for each request (sync and async), echoes the
request id, and logs page visits and API writes after the response.

Per request the context carries: the request id (a well-formed incoming
``X-Request-ID``, else a new uuid4 hex; echoed as the ``X-Request-ID``
response header), the client IP (:func:`audit.ip.client_ip`), the user
agent, method, path and the request itself, so the actor is resolved when a
row is written (DRF sets ``request.user`` on the underlying ``HttpRequest``
when it authenticates a Bearer token inside the view). The context is always
reset with its token, so nothing leaks into the next request on the thread.

It also exposes the request to simple-history (``HistoricalRecords.context
.request``, what ``HistoryRequestMiddleware`` does) so snapshots name the
user.

Activity rows (best effort: a failure is counted in :data:`FAILURES`,
printed to stderr, and never breaks the response):

- ``Page visit``: a successful GET of an HTML page outside the API;
- ``API <METHOD> <path>``: POST/PUT/PATCH/DELETE under ``/api/`` with the
  status code (denials included);
- ``Access denied``: any other 403 (portal pages, admin, API reads), with
  method, path and status. Refused reads of audit data by a logged-in user
  under ``/api/realtime/`` are not repeated here: the audit API records them
  itself as ``Denied audit read``.

Reads of audit data under ``/api/realtime/`` are logged by the audit API
itself, and paths in ``AUDIT_EXCLUDED_PATHS`` are never logged.

An outer ``audit_context(enabled=False)`` (tests, maintenance scripts driving
the test client) carries over into the request's context: capture stays off
and the middleware writes no activity row.

The request's activity row is written after the response, outside the
request's transaction, in autocommit. On PostgreSQL that single INSERT
commits asynchronously (``synchronous_commit`` off for that one transaction,
see :func:`audit.capture.writer.write_activity`): it does not wait for the WAL flush
(a disk sync per commit, the largest part of an API write's audit cost), so a
server crash in the following fraction of a second could lose it; it can
never be half written. The change rows themselves (audit_trail,
update_history, snapshots) commit with the change, synchronously.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections import Counter

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from simple_history.models import HistoricalRecords

from audit import conf
from audit.capture import writer
from audit.context import AuditContext, _current
from audit.ip import client_ip

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

FAILURES: Counter = Counter()


def request_id_for(request) -> str:
    incoming = request.META.get("HTTP_X_REQUEST_ID", "")
    if incoming and _REQUEST_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def context_for(request) -> AuditContext:
    """A fresh context for the request; ``enabled`` carries over from the
    surrounding one, so an outer ``audit_context(enabled=False)`` holds."""
    return AuditContext(
        enabled=_current.get().enabled,
        ip_address=client_ip(request),
        request_id=request.audit_request_id,
        user_agent=writer.clean_text(request.META.get("HTTP_USER_AGENT", ""), writer.USER_AGENT_MAX),
        method=request.method or "",
        path=writer.clean_text(request.path, writer.PATH_MAX),
        request=request,
    )


def activity_for(request, response) -> tuple[str, str] | None:
    """``(activity, details)`` the middleware records for this exchange, or None."""
    path = request.path
    if path.startswith(conf.excluded_paths()):
        return None
    method = request.method
    status = response.status_code
    if path.startswith(conf.api_prefix()):
        if method in _WRITE_METHODS and conf.log_api_writes():
            return f"API {method} {path}", f"HTTP {status}"
        if status == 403 and not _denial_logged_by_audit_api(request, path):
            return DENIED, f"{method} {path} HTTP {status}"
        return None
    if status == 403:
        return DENIED, f"{method} {path} HTTP {status}"
    if (
        method == "GET"
        and conf.log_page_visits()
        and 200 <= response.status_code < 300
        and response.get("Content-Type", "").startswith("text/html")
    ):
        return "Page visit", path
    return None


DENIED = "Access denied"


def _denial_logged_by_audit_api(request, path: str) -> bool:
    """The audit API records refused reads of a logged-in user itself."""
    if not path.startswith(conf.audit_reads_prefix()):
        return False
    user = getattr(request, "user", None)
    return bool(user is not None and getattr(user, "is_authenticated", False))


class AuditContextMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        request.audit_request_id = request_id_for(request)
        ctx = context_for(request)
        token = _current.set(ctx)
        HistoricalRecords.context.request = request
        try:
            response = self.get_response(request)
            if ctx.enabled:
                self.log(request, response)
        finally:
            _forget_history_request()
            _current.reset(token)
        response[REQUEST_ID_HEADER] = request.audit_request_id
        return response

    async def __acall__(self, request):
        request.audit_request_id = request_id_for(request)
        ctx = context_for(request)
        token = _current.set(ctx)
        HistoricalRecords.context.request = request
        try:
            response = await self.get_response(request)
            if ctx.enabled and activity_for(request, response) is not None:
                await sync_to_async(self.log)(request, response)
        finally:
            _forget_history_request()
            _current.reset(token)
        response[REQUEST_ID_HEADER] = request.audit_request_id
        return response

    @staticmethod
    def log(request, response) -> None:
        try:
            what = activity_for(request, response)
            if what is not None:
                writer.write_activity(activity=what[0], details=what[1], status_code=response.status_code,
                                      synchronous=False)
        except Exception as exc:  # noqa: BLE001 - best effort, never break the response
            FAILURES["request_activity"] += 1
            print(f"audit: could not record request activity: {exc.__class__.__name__}: {exc}", file=sys.stderr)


def _forget_history_request() -> None:
    try:
        del HistoricalRecords.context.request
    except AttributeError:
        pass
