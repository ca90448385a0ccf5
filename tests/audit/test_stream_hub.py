"""One poller per server process for every open stream (issue 15.3,
:mod:`audit.api.stream_hub`): many streams of one uvicorn process use at
most two database connections (the poller's and, on PostgreSQL, the one
listening for commits), each client still gets only what it may see, a
commit's notification wakes the poller long before its timed poll, a missed
notification or wake-up delays nothing for long, and a client whose cursor
is older than the hub's buffer catches up by its own reads; an open stream
keeps no thread of its own."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from django.db import connection

from audit.api import stream as st
from audit.api import stream_hub
from audit.context import audit_context
from audit.services import log_activity
from tests.audit.test_stream import StreamReader, call, database_url, server, server_process  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

APP_NAME = "stream-hub-test"


def _server_connections(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND application_name = %s", [name])
        return cursor.fetchone()[0]


@pytest.fixture
def tokens(personas):
    from knox.models import AuthToken

    return {key: AuthToken.objects.create(user)[1] for key, user in personas.items()}


@pytest.fixture
def pg_url(tokens):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only: counts the server's connections in pg_stat_activity")
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s["PASSWORD"] else ""
    return (f"postgres://{s['USER'] or 'postgres'}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/"
            f"{s['NAME']}?application_name={APP_NAME}")


@pytest.mark.postgres
def test_many_streams_of_one_process_share_one_poller_and_connection(pg_url, tokens):
    with server(pg_url) as port:
        who = ["admin", "engineer", "staff", "other_staff"] * 4
        readers = [StreamReader(port, tokens[w], seconds=12).start_and_wait() for w in who]
        time.sleep(1.0)  # every stream open and polled at least a few times
        idle = _server_connections(APP_NAME)
        listening = _listening(APP_NAME)
        status, created = call(port, "POST", "/api/maintenance-requests/", tokens["staff"],
                               {"vessel": "MV Aurora", "title": "Bilge pump", "change_reason": "hub test"})
        assert status == 201, created
        for reader, w in zip(readers, who, strict=True):
            if w in ("admin", "engineer"):
                assert reader.wait_for(lambda m: m[2] == "audit" and m[3]["entity_id"] == created["code"]), w
            elif w == "staff":
                assert reader.wait_for(lambda m: m[3].get("activity") == "API POST /api/maintenance-requests/"), w
        busy = _server_connections(APP_NAME)
        for reader in readers:
            reader.finish()
    # 16 open streams: the hub's poller and its LISTEN connection, nothing per stream
    assert idle <= 2 and busy <= 2, (idle, busy)
    assert listening == 1
    for reader, w in zip(readers, who, strict=True):
        kinds = {m[2] for m in reader.messages}
        users = {m[3].get("user_id") for m in reader.messages}
        if w == "staff":
            assert kinds == {"activity"} and users == {"ST001"}, reader.messages
        elif w == "other_staff":
            assert reader.messages == [] or users == {"ST002"}, reader.messages
        else:
            assert "audit" in kinds and "ST001" in users


def _listening(name: str) -> int:
    """Sessions of the server whose last statement was the hub's LISTEN."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND application_name = %s AND query = %s", [name, f"LISTEN {stream_hub.CHANNEL}"])
        return cursor.fetchone()[0]


def _run(coro):
    return asyncio.run(coro)


async def _collect(feed: st.AuditStream, seconds: float, hub: stream_hub.Hub) -> list[str]:
    out = []
    async for chunk in hub.messages(feed, max_events=None, timeout=seconds, keepalive=15):
        out.append(chunk)
    return out


def _write(text: str, actor: str = "PE001") -> int:
    with audit_context(actor=actor):
        return log_activity("hub test", text).pk


@pytest.mark.postgres
def test_a_missed_wake_up_delays_a_row_by_at_most_a_second(personas, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the hub's thread needs a database other threads see")
    hub = stream_hub.Hub(poll_seconds=0.05)
    monkeypatch.setattr(hub, "_wake", lambda: None)  # every wake-up lost

    feed = st.AuditStream(audience=st.Audience(kinds=("activity",)), trackers=st.current_cursor())

    async def main():
        task = asyncio.create_task(_collect(feed, 2.5, hub))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(_write, "missed-wake")
        written = time.monotonic()
        chunks = await task
        return chunks, written

    chunks, _written = _run(main())
    body = "".join(chunks)
    assert "missed-wake" in body


@pytest.mark.postgres
def test_a_cursor_older_than_the_buffer_catches_up_by_its_own_reads(personas, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the hub's thread needs a database other threads see")
    monkeypatch.setattr(stream_hub, "RETAIN_SECONDS", 0.0)  # rows leave the buffer as soon as settled
    before = st.current_cursor()  # a client that was away: its cursor is from before these rows
    old = [_write(f"while-away-{i}") for i in range(3)]
    staff_row = _write("staff-own", actor="ST001")
    hub = stream_hub.Hub(poll_seconds=0.05)

    fresh = st.AuditStream(audience=st.Audience(kinds=("activity",)), trackers=st.current_cursor())

    async def main():
        # the hub starts after the rows: they are below its floor, the resumed client reads them itself
        warm = asyncio.create_task(_collect(fresh, 2.0, hub))
        await asyncio.sleep(0.5)
        resumed = st.AuditStream(audience=st.Audience(kinds=("activity",)), trackers=before)
        staff = st.AuditStream(audience=st.Audience(kinds=("activity",), own_user_id="ST001"),
                               trackers=st.decode_cursor(st.encode_cursor(before), now=time.monotonic()))
        got = await asyncio.gather(_collect(resumed, 1.0, hub), _collect(staff, 1.0, hub))
        await warm
        return got

    resumed_chunks, staff_chunks = _run(main())
    resumed_body, staff_body = "".join(resumed_chunks), "".join(staff_chunks)
    for i, pk in enumerate(old):
        assert f"while-away-{i}" in resumed_body and f'"id":{pk}' in resumed_body
        assert f"while-away-{i}" not in staff_body  # another user's activity: not for staff
    assert "staff-own" in resumed_body and f'"id":{staff_row}' in staff_body
    assert resumed_body.count("while-away-0") == 1  # nothing twice


@pytest.mark.postgres
def test_a_commit_to_a_streamed_table_notifies_once_per_transaction(personas):
    """Migration audit 0009's triggers: every streamed table notifies at commit, not before."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only: LISTEN/NOTIFY")
    import psycopg
    from django.db import transaction

    from audit.models import AuditTrail, SystemEvent

    params = stream_hub._listen_params()
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute(f"LISTEN {stream_hub.CHANNEL}")
        with transaction.atomic():
            _write("notify-1")
            _write("notify-2")
            # inside the transaction: nothing yet
            assert list(listener.notifies(timeout=0.2)) == []
        got = list(listener.notifies(timeout=5, stop_after=1))
        assert [n.channel for n in got] == [stream_hub.CHANNEL]
        assert list(listener.notifies(timeout=0.2)) == []  # two rows, one transaction: one notification
        AuditTrail.objects.create(user_id="PE001", action_type="update", entity_type="inventory",
                                  entity_id="INV001", status="completed", source="test", user_display="PE001")
        assert len(list(listener.notifies(timeout=5, stop_after=1))) == 1
        SystemEvent.objects.create(event_type="notify_test", entity_type="vessel", entity_id="MV Aurora",
                                   event_data={}, severity="info")
        assert len(list(listener.notifies(timeout=5, stop_after=1))) == 1


@pytest.mark.postgres
def test_a_notified_commit_is_delivered_long_before_the_timed_poll(personas):
    """With a 30 s timed poll, only the commit's notification can bring the row inside 10 s."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only: LISTEN/NOTIFY")
    hub = stream_hub.Hub(poll_seconds=30, listen_poll_seconds=30)
    watcher = st.AuditStream(audience=st.Audience(kinds=("activity",)), trackers=st.current_cursor())
    staff = st.AuditStream(audience=st.Audience(kinds=("activity",), own_user_id="ST001"),
                           trackers=st.current_cursor())

    async def main():
        first = asyncio.create_task(_first_message(watcher, hub, 10))
        mine = asyncio.create_task(_first_message(staff, hub, 10))
        for _ in range(200):  # the hub made its first poll and its LISTEN is in place
            if hub.listening and hub.polls:
                break
            await asyncio.sleep(0.05)
        assert hub.listening
        polls = hub.polls
        await asyncio.to_thread(_write, "someone-else", "PE001")
        await asyncio.to_thread(_write, "staff-own", "ST001")
        return await first, await mine, hub.polls - polls, hub.notifications

    watcher_body, staff_body, polls, notifications = _run(main())
    assert "someone-else" in watcher_body  # arrived: max_events=1 ended the stream before its 10 s
    assert "staff-own" in staff_body and "someone-else" not in staff_body  # rights unchanged
    assert polls >= 1 and notifications >= 1


async def _first_message(feed: st.AuditStream, hub: stream_hub.Hub, seconds: float) -> str:
    out = []
    async for chunk in hub.messages(feed, max_events=1, timeout=seconds, keepalive=15):
        out.append(chunk)
    return "".join(out)


@pytest.mark.postgres
def test_a_missed_notification_still_delivers_by_the_timed_poll(personas, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only: LISTEN/NOTIFY")
    # the hub listens on a channel nobody notifies: every commit's notification is missed
    monkeypatch.setattr(stream_hub, "CHANNEL", "audit_stream_nobody")
    hub = stream_hub.Hub(poll_seconds=0.05, listen_poll_seconds=0.3)
    feed = st.AuditStream(audience=st.Audience(kinds=("activity",)), trackers=st.current_cursor())

    async def main():
        task = asyncio.create_task(_first_message(feed, hub, 10))
        for _ in range(200):
            if hub.listening and hub.polls:
                break
            await asyncio.sleep(0.05)
        assert hub.listening
        await asyncio.to_thread(_write, "not-notified")
        return await task

    body = _run(main())
    assert "not-notified" in body
    assert hub.notifications == 0


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads: line")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's thread count in /proc")
def test_an_open_stream_keeps_no_thread_of_its_own(database_url, tokens):  # noqa: F811 - the fixture
    """Django's ASGI handler gives each request a thread until its response ends; a stream lets it go."""
    with server_process(database_url) as (port, proc):
        first = StreamReader(port, tokens["engineer"], seconds=10).start_and_wait()
        time.sleep(0.5)
        before = _threads(proc.pid)
        readers = [StreamReader(port, tokens[w], seconds=10).start_and_wait()
                   for w in ["admin", "engineer", "staff", "other_staff"] * 3]
        time.sleep(0.5)
        during = _threads(proc.pid)
        status, created = call(port, "POST", "/api/maintenance-requests/", tokens["staff"],
                               {"vessel": "MV Aurora", "title": "Thread test", "change_reason": "threads"})
        assert status == 201, created
        assert readers[1].wait_for(lambda m: m[2] == "audit" and m[3]["entity_id"] == created["code"])
        assert readers[2].wait_for(lambda m: m[3].get("activity") == "API POST /api/maintenance-requests/")
        for reader in [first, *readers]:
            reader.finish()
    # 12 more open streams, and at most a thread or two more (a request's being served)
    assert during - before <= 2, (before, during)


def test_a_stream_woken_while_the_hub_reads_a_poll_misses_no_row_of_it(personas):
    """The hub reads a poll on its thread while streams step on the event loop: the read changes
    nothing a stream looks at (before, the hub's watermark could pass a row not yet in its buffer,
    and a stream stepping then settled that row as never committed, and never sent it)."""
    hub = stream_hub.Hub()
    hub.feeds = hub._start_sync()
    client = stream_hub._Client(st.AuditStream(audience=st.Audience(kinds=("activity",)),
                                               trackers=st.current_cursor()))
    pk = _write("read-while-stepping")
    read = hub._read_sync()  # the poll's rows, read: the buffer and the hub's watermark unchanged

    async def main():
        during = await client.step(hub)  # a stream woken meanwhile (by the tick, a keep-alive...)
        assert hub._apply(read)
        return during, await client.step(hub)

    during, after = _run(main())
    assert during == []
    assert len(after) == 1 and f'"id":{pk}' in after[0] and "read-while-stepping" in after[0]
