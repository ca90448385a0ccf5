"""One poller per server process for every open ``/api/realtime/stream`` (issue 15.3).

Before, each open stream polled the three tables itself, through the
request's own database connection, held for as long as the stream was open:
a hundred dashboards took a hundred of PostgreSQL's default 100 connections.
Now, under ASGI, a process has one :class:`Hub` per event loop:

- **One reader.** The hub's poller runs the queries of :meth:`AuditStream.poll
  <audit.api.stream.AuditStream.poll>` for *all* rows (``id > high``, and
  the late commits inside its open gaps) in one
  worker thread, so on one database connection whatever the number of
  streams. Each row read is kept for :data:`RETAIN_SECONDS` in a buffer
  (per table, in the order the hub read them), with its JSON body encoded
  once for every client.
- **Each client its own rights and cursor.** An open stream holds no
  connection: it is an async generator waiting on the hub's wake-up event.
  When woken it walks the buffer entries it has not looked at yet, filters
  them by its own :class:`~audit.api.stream.Audience` and marks them in its
  own :class:`~audit.api.stream.Tracker` s, exactly as its own poll did, so
  the ``id:`` cursors and ``Last-Event-ID`` resume are unchanged. Ids the
  hub has settled (its watermark) that are not in the buffer are ids of
  rolled-back transactions: the client settles them at once.
- **Catching up.** A client whose cursor is older than the buffer (a
  resume after a long absence, or a client too slow to keep up) polls the
  tables for itself as before, on the hub's one thread and connection,
  until it is inside the buffer again; so is a client whose cursor has
  reached :data:`~audit.api.stream.MAX_DELIVERED_RANGES` ranges.
- **Woken by commits.** On PostgreSQL the hub also holds one connection
  of its own (psycopg's async connection, in the event loop) that
  ``LISTEN`` s on :data:`CHANNEL`; the triggers of migration audit 0009
  notify it when a transaction that inserted into a streamed table commits,
  and the hub polls at once (at most every :data:`MIN_POLL_INTERVAL`, so a
  burst of commits is read together). A notification only wakes: the rows
  are still read by id, so one that is missed (not listening yet, a lost
  connection) delays a row to the timed poll, every
  :data:`LISTEN_POLL_SECONDS` while listening (:data:`POLL_SECONDS` while not,
  and always on SQLite), and loses nothing. Two connections per process.

The hub starts with its first stream and stops (closing its connections)
:data:`IDLE_SECONDS` after its last one ends. A missed wake-up costs at most
:data:`MAX_SLEEP_SECONDS`: the hub's tick wakes every stream that often (one
timer for the process; a stream with a gap open, or a keep-alive or deadline
due sooner, keeps a timer of its own), and the buffer, not the wake-up,
carries the rows. A poll is read on the hub's thread and applied to the
buffer on the event loop in one step, so a stream never sees the hub's
watermark past a row that is not in the buffer yet. Under ASGI through
``marine_center.asgi`` the stream's bytes go straight to the server
(:mod:`audit.api.stream_asgi`). Sync servers (WSGI, Django's test client) keep the per-client poll
of :meth:`AuditStream.messages <audit.api.stream.AuditStream.messages>`.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from audit.api import stream as st
from audit.operations import events

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # the hub's pause between two polls of the tables, when not listening
LISTEN_POLL_SECONDS = 1.0  # ...and while listening: the fallback for a notification that never came
MIN_POLL_INTERVAL = 0.1  # at most this often, however many commits notify (they are read together)
LISTEN_RETRY_SECONDS = 2.0  # a lost listening connection is made again after this pause
CHANNEL = "audit_stream"  # notified on commit by the triggers of migration audit 0009
BATCH = 1000  # rows read per table and poll by the hub
RETAIN_SECONDS = 30.0  # rows stay in the buffer this long once settled...
RETAIN_ROWS = 20_000  # ...and at most this many per table
IDLE_SECONDS = 5.0  # the hub stops this long after its last stream ended
MAX_SLEEP_SECONDS = 1.0  # a client looks at the buffer at least this often, woken or not
_OPENING_BYTES = st.OPENING.encode()


def _encode(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass
class Entry:
    """A row the hub read: its payload (rights are checked on it) and its message body."""

    pk: int
    payload: dict
    body: str
    acknowledged: str | None = None  # an acknowledgement's "acknowledged" body: the event as it is now
    is_acknowledgement: bool = False


@dataclass
class Feed:
    """One table as the hub reads it."""

    tracker: st.Tracker
    floor: int  # every id <= floor is outside the buffer (before the hub began, or evicted)
    entries: deque = field(default_factory=deque)  # Entry, in the order read
    base: int = 0  # sequence number of entries[0]
    ids: list = field(default_factory=list)  # sorted ids of the entries (for eviction)
    read_at: dict = field(default_factory=dict)  # id -> monotonic time read

    @property
    def end(self) -> int:
        return self.base + len(self.entries)


class Hub:
    """The poller of one event loop (see the module's docstring)."""

    def __init__(self, *, poll_seconds: float = POLL_SECONDS, listen_poll_seconds: float = LISTEN_POLL_SECONDS,
                 grace: float = st.GAP_GRACE_SECONDS, listen: bool | None = None):
        self.poll_seconds = poll_seconds
        self.listen_poll_seconds = listen_poll_seconds
        self.grace = grace
        # PostgreSQL: a LISTEN connection wakes the poller as soon as a streamed row is committed
        self.listen = _is_postgresql() if listen is None else listen
        self.listening = False  # the LISTEN is in place (the timed poll is then only the fallback)
        self.notifications = 0
        self._notified = asyncio.Event()
        self._listener: asyncio.Task | None = None
        # every database access of the streams of this loop runs on this one thread: one connection
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-stream-hub")
        self.feeds: dict[str, Feed] | None = None
        self.clients = 0
        self.polls = 0
        # clients in the same state (same rights, same cursor without open gaps, same place in the
        # buffer) get the same messages: the first one's step is kept for the others until the next poll
        self.memo: dict = {}
        self.memo_hits = 0
        self.encoded: dict[tuple[str, ...], bytes] = {}  # the same messages' bytes, until the next poll
        self._woken = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._ready: asyncio.Event = asyncio.Event()
        self._thread_id: int | None = None

    # --- the poller (on the hub's thread) -------------------------------------------

    def _start_sync(self) -> dict[str, Feed]:
        self._thread_id = threading.get_ident()
        feeds = {}
        for kind, tracker in st.current_cursor().items():
            feeds[kind] = Feed(tracker=tracker, floor=tracker.low)
        return feeds

    def _read_sync(self) -> dict[str, list[Entry]]:
        """On the hub's thread: the rows of one poll over the three tables, as entries (payload and
        body encoded). It only reads the hub's state: the buffer changes in :meth:`_apply`, on the
        event loop, so a stream never sees the hub's watermark past a row not yet in the buffer."""
        out: dict[str, list[Entry]] = {}
        for kind in st.KINDS:
            tracker = self.feeds[kind].tracker
            model = st.MODELS[kind]
            rows: list[dict] = []
            if tracker.has_gap():
                known = model.objects.filter(id__gt=tracker.low, id__lt=tracker.high)
                late = [pk for pk in known.values_list("id", flat=True)[:10_000] if tracker.is_new(pk)]
                if late:
                    rows.extend(model.objects.filter(id__in=late).order_by("id").values(*st.FIELDS[kind]))
            rows.extend(model.objects.filter(id__gt=tracker.high).order_by("id").values(*st.FIELDS[kind])[:BATCH])
            entries = out[kind] = []
            for row in rows:
                if not tracker.is_new(row["id"]):
                    continue
                payload = st._payload(kind, row)
                entry = Entry(pk=row["id"], payload=payload, body=_encode(payload))
                if kind == "activity" and row.get("activity") == events.ACKNOWLEDGED_ACTIVITY:
                    entry.is_acknowledgement = True
                    event = st._acknowledgement(row)
                    entry.acknowledged = _encode(event) if event is not None else None
                entries.append(entry)
        return out

    def _apply(self, read: dict[str, list[Entry]]) -> bool:
        """On the event loop: a poll's entries into the buffer, then the watermarks; True when the
        buffer or a watermark changed. The streams' shared results of the last poll go with it."""
        self.polls += 1
        self.memo = {}
        self.encoded = {}
        changed = False
        now = time.monotonic()
        for kind, entries in read.items():
            feed = self.feeds[kind]
            tracker = feed.tracker
            for entry in entries:
                if not tracker.is_new(entry.pk):
                    continue
                feed.entries.append(entry)
                bisect.insort(feed.ids, entry.pk)
                feed.read_at[entry.pk] = now
                tracker.mark(entry.pk, delivered=False, now=now)
                changed = True
            before = tracker.low
            tracker.settle(now=now, grace=self.grace)
            changed = changed or tracker.low != before
            self._evict(feed, now)
        return changed

    def _evict(self, feed: Feed, now: float) -> None:
        """Drop the oldest rows (in id order, settled, older than RETAIN_SECONDS or past RETAIN_ROWS)."""
        drop = 0
        while drop < len(feed.ids) and feed.ids[drop] <= feed.tracker.low and (
            len(feed.ids) - drop > RETAIN_ROWS or now - feed.read_at[feed.ids[drop]] > RETAIN_SECONDS
        ):
            drop += 1
        if not drop:
            return
        gone = feed.ids[:drop]
        del feed.ids[:drop]
        feed.floor = max(feed.floor, gone[-1])
        for pk in gone:
            del feed.read_at[pk]
        # entries are in read order; drop those now at or below the floor from the front
        while feed.entries and feed.entries[0].pk <= feed.floor:
            feed.entries.popleft()
            feed.base += 1

    def _close_sync(self) -> None:
        from django.db import connections

        connections.close_all()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        idle_since = None
        if self.listen:
            self._listener = loop.create_task(self._listen(), name="audit-stream-listener")
        self._ticker = loop.call_later(MAX_SLEEP_SECONDS, self._tick)
        try:
            self.feeds = await loop.run_in_executor(self.executor, self._start_sync)
            self._ready.set()
            while True:
                polled_at = time.monotonic()
                # cleared before the poll: a commit notified while it runs makes the next one at once
                self._notified.clear()
                try:
                    changed = self._apply(await loop.run_in_executor(self.executor, self._read_sync))
                except Exception:  # noqa: BLE001 - a lost connection: drop it, try again next round
                    logger.exception("audit stream hub: poll failed")
                    await loop.run_in_executor(self.executor, self._close_sync)
                    changed = False
                if changed:
                    self._wake()
                    # the woken streams run before the hub goes on (each runs its step in one go), so
                    # the next poll waits for them: under load, rows committed meanwhile are read
                    # and sent together instead of waking every stream for each commit
                    await asyncio.sleep(0)
                if self.clients == 0:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > IDLE_SECONDS:
                        return
                else:
                    idle_since = None
                await self._until_next_poll(polled_at)
        finally:
            self._ticker.cancel()
            if self._listener is not None:
                self._listener.cancel()
                await asyncio.gather(self._listener, return_exceptions=True)
                self._listener = None
            self.feeds = None
            self._ready = asyncio.Event()
            self._task = None
            await loop.run_in_executor(self.executor, self._close_sync)
            self._wake()

    async def _until_next_poll(self, polled_at: float) -> None:
        """Until a commit is notified (not sooner than MIN_POLL_INTERVAL after the last poll) or
        the timed poll is due: ``listen_poll_seconds`` while listening, else ``poll_seconds``."""
        interval = self.listen_poll_seconds if self.listening else self.poll_seconds
        try:
            async with asyncio.timeout(max(0.0, polled_at + interval - time.monotonic())):
                await self._notified.wait()
        except TimeoutError:
            return
        pause = polled_at + MIN_POLL_INTERVAL - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)

    async def _listen(self) -> None:
        """``LISTEN audit_stream`` on a connection of its own (psycopg's async notifications, in the
        event loop) and set ``_notified`` on each notification; made again when lost. The rows
        are read by the poll, so what was committed while not listening waits at most a timed poll."""
        import psycopg

        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(**_listen_params(), autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    self._notified.set()  # whatever was committed before the LISTEN: read it now
                    async for _notify in conn.notifies():
                        self.notifications += 1
                        self._notified.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the database went away: the timed poll carries on
                logger.warning("audit stream hub: listening for commits failed; polling every %.1f s",
                               self.poll_seconds, exc_info=True)
            finally:
                self.listening = False
            await asyncio.sleep(LISTEN_RETRY_SECONDS)

    def _encoded(self, out: list[str]) -> bytes:
        """``out`` joined and encoded, once for every client given the same messages since the last
        poll (the memo hands them the same strings, so the key is cheap to hash and compare)."""
        key = tuple(out)
        found = self.encoded.get(key)
        if found is None:
            found = self.encoded[key] = "".join(out).encode()
        return found

    def _wake(self) -> None:
        """Wake every stream of this loop: the buffer or a watermark changed."""
        woken, self._woken = self._woken, asyncio.Event()
        woken.set()

    def _tick(self) -> None:
        """Every MAX_SLEEP_SECONDS, woken or not, every stream looks at the buffer and its keep-alive
        (one timer for the process instead of one per stream and wait). Not through :meth:`_wake`:
        the tick must wake the streams even when a poll's wake-up is lost (a test drops those)."""
        woken, self._woken = self._woken, asyncio.Event()
        woken.set()
        self._ticker = asyncio.get_running_loop().call_later(MAX_SLEEP_SECONDS, self._tick)

    async def _ensure_running(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-stream-hub")
        await self._ready.wait()

    async def run_sync(self, fn, *args):
        """Run ``fn`` on the hub's thread (its one database connection)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # --- one client ----------------------------------------------------------------------

    async def messages(self, feed: st.AuditStream, *, max_events: int | None, timeout: float | None,
                       keepalive: float, as_bytes: bool = False) -> AsyncIterator[str | bytes]:
        """SSE text for one client, from the hub's buffer (UTF-8 bytes with ``as_bytes``: clients
        given the same messages since the last poll share one encoding of them)."""
        self.clients += 1
        client = _Client(feed)
        clock = feed.clock
        frames = st.Frames.open(clock(), max_events=max_events, timeout=timeout, keepalive=keepalive)
        try:
            await self._ensure_running()
            yield _OPENING_BYTES if as_bytes else st.OPENING
            while True:
                woken = self._woken
                if self.feeds is None:  # the hub stopped under us (cannot while we count as a client)
                    await self._ensure_running()
                    continue
                out, frames = frames.after(await client.step(self), clock())
                if out:
                    yield self._encoded(out) if as_bytes else "".join(out)
                if frames.done:
                    return
                wait = frames.wait(clock())
                if client.needs_polling():
                    wait = min(wait, self.poll_seconds)
                if wait >= MAX_SLEEP_SECONDS:
                    await woken.wait()  # a poll's wake-up, or the hub's tick within MAX_SLEEP_SECONDS
                    continue
                try:
                    async with asyncio.timeout(max(wait, 0.01)):
                        await woken.wait()
                except TimeoutError:
                    pass
        finally:
            self.clients -= 1


class _Client:
    """One stream's position in the hub's buffer."""

    __slots__ = ("feed", "next_seq", "polled")

    def __init__(self, feed: st.AuditStream):
        self.feed = feed
        self.next_seq: dict[str, int | None] = {}  # kind -> next entry to look at; None: polls for itself
        self.polled: tuple[str, ...] = ()

    def needs_polling(self) -> bool:
        return bool(self.polled) or any(t.has_gap() for t in self.feed.trackers.values())

    async def step(self, hub: Hub) -> list[str]:
        stream = self.feed
        out: list[str] = []
        own = []
        for kind in stream.audience.polls():
            tracker, feed = stream.trackers[kind], hub.feeds[kind]
            if tracker.low < feed.floor or tracker.range_count() >= st.MAX_DELIVERED_RANGES:
                self.next_seq[kind] = None
                own.append(kind)
            elif self.next_seq.get(kind) is None:
                self.next_seq[kind] = feed.base  # (back) inside the buffer: look at all of it once
        self.polled = tuple(own)
        key = None
        if not own and not any(t.seen for t in stream.trackers.values()):
            # no gap open, so nothing delivered above a watermark: the watermarks are the whole cursor
            key = (stream.audience, tuple(t.low for t in stream.trackers.values()),
                   tuple(self.next_seq.get(k) for k in stream.audience.polls()), hub.polls)
            hit = hub.memo.get(key)
            if hit is not None:
                hub.memo_hits += 1
                chunks, state, next_seq = hit
                for kind, (low, seen, delivered) in state.items():
                    stream.trackers[kind] = st.Tracker(low=low, seen=dict(seen), delivered=set(delivered))
                self.next_seq.update(next_seq)
                return list(chunks)
        if own:
            # outside the buffer: this client's own queries, on the hub's thread and connection
            messages = await hub.run_sync(stream.poll, tuple(own))
            out.extend(m.encode() for m in messages)
        now = stream.clock()
        for kind in stream.audience.polls():
            if kind in own:
                continue
            out.extend(self._from_buffer(kind, hub.feeds[kind], now))
        if key is not None:
            state = {kind: (t.low, dict(t.seen), set(t.delivered)) for kind, t in stream.trackers.items()}
            hub.memo[key] = (tuple(out), state, dict(self.next_seq))
        return out

    def _from_buffer(self, kind: str, feed: Feed, now: float) -> list[str]:
        stream = self.feed
        tracker = stream.trackers[kind]
        audience = stream.audience
        sees_acks = kind == "activity" and audience.sees_acknowledgements()
        out: list[str] = []
        start = max(self.next_seq[kind], feed.base)
        for index in range(start - feed.base, len(feed.entries)):
            entry = feed.entries[index]
            if not tracker.is_new(entry.pk):
                continue
            show = audience.visible(kind, entry.payload)
            acknowledged = sees_acks and entry.is_acknowledgement
            tracker.mark(entry.pk, delivered=show or acknowledged, now=now)
            if show:
                out.append(f"id: {stream.cursor()}\nevent: {kind}\ndata: {entry.body}\n\n")
            if acknowledged and entry.acknowledged is not None:
                out.append(f"id: {stream.cursor()}\nevent: acknowledged\ndata: {entry.acknowledged}\n\n")
        self.next_seq[kind] = feed.end
        # every id the hub has settled is either in the buffer (looked at above) or was never committed
        tracker.settle_to(feed.tracker.low)
        tracker.settle(now=now, grace=stream.grace)
        return out


def _is_postgresql() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def _listen_params() -> dict:
    """The default database's connection parameters (with its application_name and SSL options),
    for a plain psycopg connection rather than Django's."""
    from django.db import connection

    params = connection.get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    return params


_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def hub() -> Hub:
    """The hub of the running event loop (made on first use)."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        found = _hubs[loop] = Hub()
    return found


def _release_request_thread() -> None:
    """Let the thread Django's ASGI handler gave this request go now rather than when the stream ends.

    The handler runs each request in an asgiref ``ThreadSensitiveContext``, whose one-thread
    executor runs the request's sync code (middleware, the view) and is shut down only when the
    response has been sent: an open stream would keep an idle thread (its stack and state) for
    hours. Called from the stream's first step, after every middleware has run: the body needs
    no thread (its database reads go through the hub's). Sync code the handler runs at the end
    (``response.close()``) gets a new executor for that moment, shut down as before. Depends on
    asgiref's ``SyncToAsync.thread_sensitive_context`` and ``context_to_thread_executor``; when
    they are not there, nothing is released and the stream works as before."""
    from asgiref.sync import SyncToAsync

    context_var = getattr(SyncToAsync, "thread_sensitive_context", None)
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    if context_var is None or executors is None:
        return
    context = context_var.get(None)
    if context is None or getattr(context, "_executor", None) is not None:
        return  # not in a request, or an executor its owner gave (and will shut down) itself
    executor = executors.pop(context, None)
    if executor is not None:
        executor.shutdown(wait=False)


async def hub_messages(feed: st.AuditStream, *, max_events: int | None = None, timeout: float | None = None,
                       keepalive: float = st.KEEPALIVE_SECONDS) -> AsyncIterator[str]:
    """SSE text of one stream under ASGI, fed by the running loop's hub."""
    _release_request_thread()
    async for chunk in hub().messages(feed, max_events=max_events, timeout=timeout, keepalive=keepalive):
        yield chunk
