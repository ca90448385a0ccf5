"""The ASGI path of ``/api/realtime/stream`` (:mod:`audit.api.stream_asgi`): Django answers the
handshake, the hub sends the stream straight to the server.

Everything Django did for the stream still holds on it: the same status, headers (security
headers, CSP, cache-control, request id) and error bodies as Django's own handler serving the
same request (``marine_center.asgi:django_application``, the stream as it was); token and
session authentication; the look recorded with the client's IP and the request id; an end at
the stream's ``timeout``. While a stream is open no Django request or response object is alive,
and a client that goes away ends its stream on the server."""

from __future__ import annotations

import asyncio
import gc
import http.client
import re

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import User
from audit.api import stream_hub
from audit.models import ActivityLog
from tests.audit.test_stream import StreamReader, database_url, server, tokens  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

DJANGO_APP = "marine_center.asgi:django_application"
# set by the server per response, not by the application
SERVER_HEADERS = {"date", "server"}


def _get(port: int, path: str, headers: dict) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers (lower-cased names, in order) and body of a GET that ends by itself."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return response.status, [(k.lower(), v) for k, v in response.getheaders()], body
    finally:
        conn.close()


def _comparable(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for name, value in headers:
        if name in SERVER_HEADERS:
            continue
        if name == "x-request-id":
            assert re.fullmatch(r"[0-9a-f]{32}", value), value
            value = "<request id>"
        if name == "content-security-policy":  # the same directives; their order is not kept by django-csp
            value = "; ".join(sorted(part.strip() for part in value.split(";")))
        out.append((name, value))
    return sorted(out)


@pytest.fixture
def session_cookie(personas):
    """The session cookie of the engineer logged in (made before the servers' database copy)."""
    from django.test import Client

    client = Client()
    client.force_login(personas["engineer"])
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_the_stream_answers_with_the_status_headers_and_errors_of_djangos_own_handler(
        session_cookie, database_url, tokens):  # noqa: F811 - the fixtures
    cases = [
        ("/api/realtime/stream?timeout=0.5", {"Authorization": f"Bearer {tokens['engineer']}"}),
        ("/api/realtime/stream/?timeout=0.5&kinds=activity", {"Authorization": f"Bearer {tokens['staff']}"}),
        ("/api/realtime/stream?timeout=0.5", {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session_cookie}"}),
        ("/api/realtime/stream?timeout=0", {"Authorization": f"Bearer {tokens['engineer']}"}),
        ("/api/realtime/stream?kinds=audit", {"Authorization": f"Bearer {tokens['staff']}"}),
        ("/api/realtime/stream", {}),
        ("/api/realtime/stream?timeout=0.5", {"Authorization": f"Bearer {tokens['engineer']}",
                                              "Last-Event-ID": "not-a-cursor"}),
    ]
    answers = {}
    for app in ("marine_center.asgi:application", DJANGO_APP):
        with server(database_url, app) as port:
            answers[app] = [_get(port, path, headers) for path, headers in cases]
    ours, django_own = answers["marine_center.asgi:application"], answers[DJANGO_APP]
    assert [a[0] for a in ours] == [200, 200, 200, 400, 403, 401, 400]
    for (path, _), mine, theirs in zip(cases, ours, django_own, strict=True):
        assert _comparable(mine[1]) == _comparable(theirs[1]), path
        names = {name for name, _ in mine[1]}
        assert {"content-security-policy", "x-frame-options", "x-request-id", "x-content-type-options",
                "referrer-policy", "cross-origin-opener-policy"} <= names, path
        if mine[0] == 200:
            assert dict(mine[1])["cache-control"] == "no-cache, no-store"
            assert dict(mine[1])["content-type"] == "text/event-stream; charset=utf-8"
            assert mine[2] == theirs[2] == b"retry: 2000\n: stream open\n\n"  # then its timeout ended it
        else:
            assert mine[2] == theirs[2], path  # the same error envelope
    assert b'"last_event_id"' in ours[6][2] and b'"timeout"' in ours[3][2]


def test_the_look_is_recorded_with_the_request_id_and_the_ip_djangos_own_handler_records(
        session_cookie, database_url, tokens):  # noqa: F811 - the fixtures
    recorded = {}
    for app in ("marine_center.asgi:application", DJANGO_APP):
        with server(database_url, app) as port:
            by_token = StreamReader(port, tokens["staff"], query="kinds=activity", seconds=1).start_and_wait()
            by_session = StreamReader(port, None, seconds=1, headers={
                "Cookie": f"{settings.SESSION_COOKIE_NAME}={session_cookie}", "X-Forwarded-For": "203.0.113.9"},
            ).start_and_wait()
            by_token.finish()
            by_session.finish()
            assert by_token.status == by_session.status == 200
            rows = _opened_rows(database_url)
            recorded[app] = (rows[by_token.headers["x-request-id"]], rows[by_session.headers["x-request-id"]])
    token_row, session_row = recorded["marine_center.asgi:application"]
    assert token_row == ("ST001", "127.0.0.1")
    assert session_row[0] == "PE001"
    # the client IP rules are Django's (and the server's proxy-header setting): the same IP either way
    assert recorded["marine_center.asgi:application"] == recorded[DJANGO_APP]


def _opened_rows(database_url: str) -> dict[str, tuple[str, str]]:  # noqa: F811 - the fixture's value
    query = "SELECT request_id, user_id, ip_address FROM activity_logs WHERE activity = 'Opened audit stream'"
    if database_url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            return {rid: (uid, str(ip)) for rid, uid, ip in db.execute(query)}
    with connection.cursor() as cursor:
        cursor.execute(query)
        return {rid: (uid, str(ip)) for rid, uid, ip in cursor.fetchall()}


# --- in process: the application driven by a fake ASGI server ---------------------------------


class _Connection:
    """One HTTP request as an ASGI server gives it: ``receive`` and ``send`` of a client that may go away."""

    def __init__(self):
        self.sent: list[dict] = []
        self.gone = asyncio.Event()
        self.opened = asyncio.Event()
        self._request_given = False

    async def receive(self):
        if not self._request_given:
            self._request_given = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message):
        self.sent.append(message)
        if b"stream open" in message.get("body", b""):
            self.opened.set()


def _scope(token: str, query: str) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": "/api/realtime/stream", "raw_path": b"/api/realtime/stream", "root_path": "",
            "query_string": query.encode(), "headers": [(b"host", b"testserver"),
                                                        (b"authorization", f"Bearer {token}".encode())],
            "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}


def _alive(kind_name: str) -> int:
    gc.collect()
    return sum(type(o).__name__ == kind_name for o in gc.get_objects())


@pytest.mark.postgres
def test_an_open_stream_keeps_no_django_request_and_ends_when_its_client_goes_away(tokens):  # noqa: F811
    if connection.vendor != "postgresql":
        pytest.skip("the hub's thread needs a database other threads see")
    from marine_center.asgi import application

    async def main():
        clients = [_Connection() for _ in range(3)]
        apps = [asyncio.create_task(application(_scope(tokens["engineer"], "timeout=30"), c.receive, c.send))
                for c in clients]
        await asyncio.wait_for(asyncio.gather(*(c.opened.wait() for c in clients)), 20)
        hub = stream_hub.hub()
        open_clients = hub.clients
        requests, responses = _alive("ASGIRequest"), _alive("StreamingHttpResponse")
        for c in clients:
            c.gone.set()
        await asyncio.wait_for(asyncio.gather(*apps), 5)  # the client left: its stream ended at once
        ended = _Connection()
        await asyncio.wait_for(application(_scope(tokens["engineer"], "timeout=0.3"), ended.receive, ended.send), 10)
        return clients, open_clients, requests, responses, hub.clients, ended

    clients, open_clients, requests, responses, clients_after, ended = asyncio.run(main())
    assert open_clients == 3 and clients_after == 0
    assert (requests, responses) == (0, 0)  # Django's request and response were let go at the handshake
    for c in clients:
        assert c.sent[0]["type"] == "http.response.start" and c.sent[0]["status"] == 200
        # the stream never ended by itself: no final body message was sent
        assert all(m.get("more_body", False) for m in c.sent[1:]), c.sent
    # a stream that ends at its timeout ends its response: one final empty body message
    assert ended.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert [m["type"] for m in ended.sent].count("http.response.start") == 1
    assert User.objects.filter(user_id="PE001").exists()
    assert ActivityLog.objects.filter(user_id="PE001", activity="Opened audit stream").count() == 4
