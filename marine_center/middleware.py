"""Request-wide error handling that Django's defaults get wrong for this project.

:class:`ExceptionsInRequestThreadMiddleware` — an exception raised by a view is
turned into its response (404, 403, 400, the 500 page or DEBUG's technical page,
with ``got_request_exception`` sent, which writes the ``unhandled_error`` event)
in the request's own thread. Under ASGI, Django's default converts it in
``convert_exception_to_response`` through ``sync_to_async(response_for_exception,
thread_sensitive=False)``: a thread of the default executor, not the one that
serves sync views. Anything that touched the database there (the error event,
``request.user`` for DEBUG's technical 500 page, a template showing the user)
opened a connection in that thread, and ``request_finished`` (which runs
``close_old_connections``) never closes it: one idle PostgreSQL connection left
behind per error (issue 12.10). Here ``response_for_exception`` runs from
``process_exception``, which Django calls in the thread-sensitive thread whose
connection is closed at the end of the request.

:class:`ApiErrorEnvelopeMiddleware` — every error response under ``/api/`` is
JSON in the error envelope (issue 12.9). The API's views already answer that way
and ``handler404``/``handler500`` do with DEBUG off, but with DEBUG on Django
answers its technical HTML pages for an unmatched route (404) and an unhandled
error (500), and a few responses are made outside DRF (CSRF failures, 405 of
plain views). A non-JSON error response under the prefix has its body replaced
by the envelope for its status; its headers (Allow, Retry-After, cookies, the
request id) are kept. Successful responses (CSV, the event stream, the schema,
the docs pages, downloads) are never touched.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.exception import response_for_exception

from marine_center.api import error_body
from marine_center.views import too_large

API_PREFIX = "/api/"
_JSON_TYPES = ("application/json", "application/problem+json")


class ExceptionsInRequestThreadMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        # Sync on purpose: Django adapts it with thread_sensitive=True under ASGI.
        if isinstance(exception, RequestDataTooBig):
            return too_large(request)  # 413 with DEBUG on too (Django's DEBUG page would say 400)
        return response_for_exception(request, exception)


def _message(status: int) -> str:
    if status >= 500:
        return "Internal server error."
    try:
        phrase = HTTPStatus(status).phrase  # "Method Not Allowed" -> "Method not allowed."
    except ValueError:
        return "Request refused."
    return phrase[0] + phrase[1:].lower() + "."


def envelope_for(status: int) -> bytes:
    body = error_body(status_code=status, message=_message(status))
    if status >= 500:
        body["error"]["code"] = "server_error"
    return json.dumps(body).encode()


def _needs_envelope(request, response) -> bool:
    if response.status_code < 400 or not request.path.startswith(API_PREFIX):
        return False
    content_type = response.get("Content-Type", "").split(";")[0].strip().lower()
    return not (content_type in _JSON_TYPES or content_type.endswith("+json"))


def _rewrite(response):
    if getattr(response, "streaming", False):
        # An error answered as a stream (none today): close it, answer a plain envelope.
        from django.http import HttpResponse

        response.close()
        new = HttpResponse(status=response.status_code)
        for header in ("Allow", "Retry-After", "WWW-Authenticate", "X-Request-ID"):
            if header in response:
                new[header] = response[header]
        new.cookies = response.cookies
        response = new
    response.content = envelope_for(response.status_code)
    response["Content-Type"] = "application/json"
    if "Content-Length" in response:
        response["Content-Length"] = str(len(response.content))
    return response


class ApiErrorEnvelopeMiddleware:
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
        response = self.get_response(request)
        return _rewrite(response) if _needs_envelope(request, response) else response

    async def __acall__(self, request):
        response = await self.get_response(request)
        return _rewrite(response) if _needs_envelope(request, response) else response
