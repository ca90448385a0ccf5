"""The ASGI path of ``/api/realtime/stream``: Django answers the handshake, the hub sends the stream.

Django handles the request in full, as every other one: the middleware (request id, client IP,
security headers, CSP, the audit context), DRF's authentication, the parameters' 400s, the
rights' 401/403, and the record of the look ("Opened audit stream"). When the stream may begin,
:class:`~audit.api.stream_views.AuditStreamView` leaves a :class:`Handoff` (the client's
:class:`~audit.api.stream.AuditStream` and its limits) in the slot this wrapper put in the ASGI
scope, and answers with an empty streaming response: Django sends its status line and headers,
closes the response (``request_finished``) and lets its request, response and request thread go.
The wrapper holds back only Django's final (empty) body message; then it sends the stream itself:
the hub's SSE text, as bytes, straight to the server's ``send``, until the stream ends or the
client goes away (``http.disconnect``). An open stream thus keeps only the hub's client state
(rights, cursor, place in the buffer) and two small tasks, nothing of Django.

When the view runs without the slot (Django's ASGI handler mounted directly, ``AsyncClient``) it
streams through Django as before (:func:`audit.api.stream_hub.hub_messages`); WSGI and the test
client keep the per-client poll.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from dataclasses import dataclass

from audit.api import stream as st
from audit.api import stream_hub

#: the key of the slot in the ASGI scope; present only on requests this wrapper serves
SCOPE_KEY = "marine_center.audit_stream"
#: the paths the wrapper offers its slot to (the URL pattern ``^realtime/stream/?$`` under ``/api/``)
PATHS = ("/api/realtime/stream", "/api/realtime/stream/")


@dataclass(slots=True)
class Handoff:
    """What the view gives the wrapper: the client's stream and its limits."""

    feed: st.AuditStream
    max_events: int | None
    timeout: float | None
    keepalive: float = st.KEEPALIVE_SECONDS


class Slot:
    """Put in the scope by the wrapper; the view fills ``handoff`` when it hands the stream over."""

    __slots__ = ("handoff", "held")

    def __init__(self):
        self.handoff: Handoff | None = None
        self.held = False  # Django's final body message was held back: the wrapper sends the stream


def offered(scope: dict) -> Slot | None:
    """The wrapper's slot in this request's scope, if it serves the request."""
    slot = scope.get(SCOPE_KEY)
    return slot if isinstance(slot, Slot) and slot.handoff is None else None


def _stream_path(scope: dict) -> bool:
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path in PATHS


class StreamApplication:
    """ASGI application: Django's, with the stream sent by the hub once Django has answered."""

    def __init__(self, django_app):
        self.django_app = django_app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not _stream_path(scope):
            return await self.django_app(scope, receive, send)
        slot = Slot()
        scope[SCOPE_KEY] = slot

        async def send_until_handoff(message):
            if (slot.handoff is not None and message["type"] == "http.response.body"
                    and not message.get("more_body", False)):
                slot.held = True  # the stream's body comes from the hub
                return
            await send(message)

        await self.django_app(scope, receive, send_until_handoff)
        if slot.held:
            handoff, slot.handoff = slot.handoff, None
            await serve(handoff, receive, send)


async def serve(handoff: Handoff, receive, send) -> None:
    """Send one client's stream from the hub until it ends or the client disconnects."""
    current = asyncio.current_task()

    async def until_disconnect():
        while (await receive())["type"] != "http.disconnect":
            pass

    def gone(_task):
        current.cancel()

    watcher = asyncio.get_running_loop().create_task(until_disconnect())
    watcher.add_done_callback(gone)
    ended = False
    body = stream_hub.hub().messages(handoff.feed, max_events=handoff.max_events, timeout=handoff.timeout,
                                     keepalive=handoff.keepalive, as_bytes=True)
    try:
        async with aclosing(body):
            async for chunk in body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        ended = True
    except asyncio.CancelledError:
        if not watcher.done() or watcher.cancelled():
            raise  # the server is cancelling us (shutdown), not the client going away
        current.uncancel()  # the client went away: this request ends normally
    finally:
        watcher.remove_done_callback(gone)
        left = watcher.done() and not watcher.cancelled()
        watcher.cancel()
    if ended and left and current.cancelling():
        current.uncancel()  # the client went away as the stream ended: nothing more to send
        return
    if ended:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
