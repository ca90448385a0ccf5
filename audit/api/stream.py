"""The live audit stream behind ``GET /api/realtime/stream`` (Server-Sent Events).

How rows are found: by polling the three tables by primary key
(``id > watermark ORDER BY id LIMIT n``) every :data:`POLL_SECONDS`. Polling
needs nothing but the tables themselves, so it works the same on SQLite and
PostgreSQL and across any number of server processes: a row written by one
process is read by the stream of another, because both read the database.

The cursor: each SSE message carries an ``id:`` that encodes, per table, a
*watermark* (every id at or below it is settled: delivered, not visible to
this client, or given up) and the ids above it already delivered::

    a123-t45-e6                 watermarks only (the usual case)
    a120.122~125.130-t45-e6     activity: settled to 120, 122..125 and 130 delivered

A client that reconnects with ``Last-Event-ID`` (or ``?last_event_id=``)
gets every row above the watermarks that is not in the delivered list: what
it missed, nothing twice.

Why a delivered list and not just "the last id": on PostgreSQL an id is
taken from the sequence at ``INSERT`` but the row becomes visible at
``COMMIT``. Two transactions can commit out of order, so the row with id 124
may appear after id 125 has been read. A stream that simply moved its
cursor to 125 would skip 124 for ever. Here the watermark only moves over
ids that are *settled*: rows above a gap are delivered at once (no added
latency) and remembered in the cursor; the gap itself stays open until the
missing id appears (it is then delivered) or until the gap is older than
:data:`GAP_GRACE_SECONDS`, after which the id is taken to belong to a
rolled-back transaction (a sequence value is never reused). Only a
transaction that stays open longer than the grace period between its
insert and its commit could be missed; audit rows are written in the
short transactions of requests and services. The gap's age is counted from
the moment a row above it was first read, which is exactly when the
missing id was first known to be missing (rows are read in id order from
the last highest id, so an id below a row just read that is not in the
result was not committed yet).

Under ASGI the polling is done once per server process for all its open
streams by :mod:`audit.api.stream_hub` (one connection); each client's
cursor, rights and resume are the ones described here.

Two alternatives were rejected: holding delivery back until every gap is
old enough (simple cursor, but every rolled-back transaction would delay
the stream by the grace period, against the 500 ms delivery target), and
PostgreSQL ``LISTEN/NOTIFY`` carrying the rows (a notification sent while a
client is disconnected is lost, so resume still needs an id query, and
SQLite has no equivalent). On PostgreSQL a notification only *wakes* the
hub's poller early (:mod:`audit.api.stream_hub`); the rows are read by id.

Visibility: administrators and port engineers see every row; staff see
only their own activity rows (``user_id`` equal to theirs) and no
audit_trail or system_events rows. Rows a client may not see still settle
the watermark (they are read, then dropped).

The message bodies have the shape of the REST rows (timestamps UTC with
milliseconds): ``activity`` as ``/api/realtime/user-activity`` plus
``user_id``; ``audit`` as ``/api/realtime/audit-trail``; ``event`` as
``/api/realtime/system-events``. An acknowledgement (an activity row
"Acknowledged system event") is also sent, to those who see events, as an
``acknowledged`` message carrying the event as it is now (with
``acknowledged_at``, ``acknowledged_by`` and the note), so open dashboards
drop it from their open list; it rides on the activity row's cursor.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from audit.api.serializers import iso_ms
from audit.models import ActivityLog, AuditTrail, SystemEvent
from audit.operations import events

KINDS = ("activity", "audit", "event")
PREFIX = {"activity": "a", "audit": "t", "event": "e"}
MODELS = {"activity": ActivityLog, "audit": AuditTrail, "event": SystemEvent}
FIELDS = {
    "activity": ("id", "user_id", "activity", "details", "timestamp", "ip_address"),
    "audit": ("id", "timestamp", "user_id", "action_type", "entity_type", "entity_id",
              "old_value", "new_value", "ip_address", "status"),
    "event": ("id", "timestamp", "event_type", "entity_type", "entity_id", "event_data", "severity", "processed",
              "processed_at", "acknowledged_at", "acknowledged_by", "acknowledgement_note"),
}
#: timestamps of a row's payload (ISO 8601 UTC with milliseconds, or null)
TIMESTAMPS = ("timestamp", "processed_at", "acknowledged_at")

POLL_SECONDS = 0.3  # pause between two polls of the tables
BATCH = 200  # rows read per table and poll
GAP_GRACE_SECONDS = 10.0  # a missing id older than this belongs to a rolled-back transaction
KEEPALIVE_SECONDS = 15.0  # a ": keep-alive" comment when nothing was sent for this long
MAX_DELIVERED_RANGES = 64  # bound on the cursor: past this many ranges, new rows wait for gaps to settle
MAX_CURSOR_LENGTH = 2000
RETRY_MS = 2000  # the client's reconnection delay (SSE "retry:")

_TABLE_PART = re.compile(r"^([ate])(\d{1,19})((?:\.\d{1,19}(?:~\d{1,19})?)*)$")


class CursorError(ValueError):
    """A ``Last-Event-ID`` that this server did not write."""


# --- the per-table tracker ------------------------------------------------------


@dataclass
class Tracker:
    """What one table's stream has settled and delivered.

    ``low``: every id <= low is settled. ``seen``: ids above ``low`` that were
    read (id -> monotonic time first read). ``delivered``: the subset of
    ``seen`` sent to the client (what the cursor lists).
    """

    low: int
    seen: dict[int, float] = field(default_factory=dict)
    delivered: set[int] = field(default_factory=set)

    @property
    def high(self) -> int:
        return max(self.seen, default=self.low)

    def has_gap(self) -> bool:
        return bool(self.seen)  # after settle(), anything left in seen sits above a gap

    def mark(self, pk: int, *, delivered: bool, now: float) -> None:
        if pk <= self.low or pk in self.seen:
            return
        self.seen[pk] = now
        if delivered:
            self.delivered.add(pk)
        self._advance()  # contiguous ids settle at once, so the cursor stays short

    def is_new(self, pk: int) -> bool:
        return pk > self.low and pk not in self.seen

    def settle(self, *, now: float, grace: float = GAP_GRACE_SECONDS) -> None:
        """Move the watermark over contiguous settled ids, and over gaps
        that have been open longer than ``grace`` seconds."""
        # Every id below a row first read more than `grace` ago has been missing that long.
        old = [pk for pk, at in self.seen.items() if now - at > grace]
        if old:
            self._drop_to(max(old))
        self._advance()

    def settle_to(self, pk: int) -> None:
        """Everything up to ``pk`` is settled (the stream hub has read or given up every id there)."""
        if pk > self.low:
            self._drop_to(pk)
            self._advance()

    def _advance(self) -> None:
        while self.low + 1 in self.seen:
            self.low += 1
            del self.seen[self.low]
            self.delivered.discard(self.low)

    def _drop_to(self, pk: int) -> None:
        self.low = pk
        for key in [k for k in self.seen if k <= pk]:
            del self.seen[key]
        self.delivered = {k for k in self.delivered if k > pk}

    def encode(self, prefix: str) -> str:
        if not self.delivered:  # the usual case: no gap open
            return f"{prefix}{self.low}"
        parts = [f"{prefix}{self.low}"]
        for start, end in _ranges(sorted(self.delivered)):
            parts.append(f".{start}" if start == end else f".{start}~{end}")
        return "".join(parts)

    def range_count(self) -> int:
        return len(_ranges(sorted(self.delivered))) if self.delivered else 0


def _ranges(ids: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for pk in ids:
        if out and pk == out[-1][1] + 1:
            out[-1] = (out[-1][0], pk)
        else:
            out.append((pk, pk))
    return out


def encode_cursor(trackers: dict[str, Tracker]) -> str:
    return "-".join(trackers[kind].encode(PREFIX[kind]) for kind in KINDS)


def decode_cursor(text: str, *, now: float) -> dict[str, Tracker]:
    """``a12.14-t3-e0`` -> trackers; raises :class:`CursorError` when malformed.

    Delivered ids come back as read "now": their gaps get a full grace period
    again, which can only delay the watermark, never skip a row."""
    if not isinstance(text, str) or not text or len(text) > MAX_CURSOR_LENGTH:
        raise CursorError("Last-Event-ID is not a cursor of this stream.")
    parts = text.strip().split("-")
    if len(parts) != len(KINDS):
        raise CursorError("Last-Event-ID is not a cursor of this stream.")
    trackers: dict[str, Tracker] = {}
    for kind, part in zip(KINDS, parts, strict=True):
        match = _TABLE_PART.match(part)
        if not match or match.group(1) != PREFIX[kind]:
            raise CursorError("Last-Event-ID is not a cursor of this stream.")
        tracker = Tracker(low=int(match.group(2)))
        for item in filter(None, match.group(3).split(".")):
            start, _, end = item.partition("~")
            first, last = int(start), int(end or start)
            if last < first or first <= tracker.low or last - first > 100_000:
                raise CursorError("Last-Event-ID is not a cursor of this stream.")
            for pk in range(first, last + 1):
                tracker.mark(pk, delivered=True, now=now)
        trackers[kind] = tracker
    return trackers


def current_cursor() -> dict[str, Tracker]:
    """Trackers at "now": the highest id of each table."""
    out = {}
    for kind in KINDS:
        top = MODELS[kind].objects.order_by("-id").values_list("id", flat=True).first()
        out[kind] = Tracker(low=top or 0)
    return out


# --- who sees what ------------------------------------------------------------


@dataclass(frozen=True)
class Audience:
    """The rows one client may see and asked for."""

    kinds: tuple[str, ...]
    own_user_id: str | None = None  # staff: only activity rows with this user_id
    severities: tuple[str, ...] | None = None  # events of these severities only

    def polls(self) -> tuple[str, ...]:
        """The tables read: the kinds asked for, and the activity table whenever events are
        (an acknowledgement is an activity row, sent as an ``acknowledged`` message)."""
        if "event" in self.kinds and "activity" not in self.kinds:
            return ("activity", *self.kinds)
        return self.kinds

    def sees_acknowledgements(self) -> bool:
        return "event" in self.kinds and self.own_user_id is None

    def visible(self, kind: str, row: dict) -> bool:
        if kind not in self.kinds:
            return False
        if self.own_user_id is not None and (kind != "activity" or row.get("user_id") != self.own_user_id):
            return False
        if kind == "event" and self.severities and row.get("severity") not in self.severities:
            return False
        return True


def _payload(kind: str, row: dict) -> dict:
    out = dict(row)
    for name in TIMESTAMPS:
        if name in out:
            out[name] = iso_ms(out[name])
    return out


def _acknowledgement(row: dict) -> dict | None:
    """The ``acknowledged`` message of an acknowledgement's activity row: the event as it is now."""
    event_id = events.acknowledged_event_id(row.get("details") or "")
    if event_id is None:
        return None
    event = SystemEvent.objects.filter(pk=event_id).values(*FIELDS["event"]).first()
    return _payload("event", event) if event else None


# --- the stream ---------------------------------------------------------------


@dataclass
class Message:
    kind: str
    cursor: str
    data: dict

    def encode(self) -> str:
        body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"), default=str)
        return f"id: {self.cursor}\nevent: {self.kind}\ndata: {body}\n\n"


class AuditStream:
    """Polls the tables for one client. :meth:`poll` is synchronous (one
    round of queries); :meth:`messages` loops over it for sync servers, and
    :mod:`audit.api.stream_hub` feeds it from the process's one poller under ASGI."""

    def __init__(self, *, audience: Audience, trackers: dict[str, Tracker], batch: int = BATCH,
                 grace: float = GAP_GRACE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.audience = audience
        self.trackers = trackers
        self.batch = batch
        self.grace = grace
        self.clock = clock

    def cursor(self) -> str:
        return encode_cursor(self.trackers)

    def poll(self, kinds: tuple[str, ...] | None = None) -> list[Message]:
        """One round: new rows of each asked-for table (or of ``kinds`` only) in
        id order, then the rows that filled an open gap; then the watermarks advance."""
        out: list[Message] = []
        for kind in kinds if kinds is not None else self.audience.polls():
            tracker = self.trackers[kind]
            model = MODELS[kind]
            now = self.clock()
            rows: list[dict] = []
            if tracker.has_gap():
                # ids below the highest one read that are still unknown: late commits
                known = model.objects.filter(id__gt=tracker.low, id__lt=tracker.high)
                late = [pk for pk in known.values_list("id", flat=True)[:10_000] if tracker.is_new(pk)]
                if late:
                    rows.extend(model.objects.filter(id__in=late).order_by("id").values(*FIELDS[kind]))
            if tracker.range_count() < MAX_DELIVERED_RANGES:
                rows.extend(
                    model.objects.filter(id__gt=tracker.high).order_by("id").values(*FIELDS[kind])[: self.batch]
                )
            for row in rows:
                pk = row["id"]
                if not tracker.is_new(pk):
                    continue
                show = self.audience.visible(kind, row)
                acknowledged = (kind == "activity" and row.get("activity") == events.ACKNOWLEDGED_ACTIVITY
                                and self.audience.sees_acknowledgements())
                tracker.mark(pk, delivered=show or acknowledged, now=now)
                if show:
                    out.append(Message(kind, self.cursor(), _payload(kind, row)))
                if acknowledged and (event := _acknowledgement(row)) is not None:
                    out.append(Message("acknowledged", self.cursor(), event))
            tracker.settle(now=self.clock(), grace=self.grace)
        return out

    def messages(self, *, max_events: int | None = None, timeout: float | None = None,
                 poll_seconds: float = POLL_SECONDS, keepalive: float = KEEPALIVE_SECONDS,
                 sleep: Callable[[float], None] = time.sleep) -> Iterator[str]:
        """SSE text for a sync server (WSGI, the test client): poll, frame, sleep ``poll_seconds``."""
        frames = Frames.open(self.clock(), max_events=max_events, timeout=timeout, keepalive=keepalive)
        yield OPENING
        while True:
            out, frames = frames.after([m.encode() for m in self.poll()], self.clock())
            yield from out
            if frames.done:
                return
            sleep(poll_seconds)


# --- what is sent when: shared by the sync loop above and the hub's async one -------------

OPENING = f"retry: {RETRY_MS}\n: stream open\n\n"  # the client's reconnection delay, and "open"
KEEPALIVE = ": keep-alive\n\n"


@dataclass(frozen=True)
class Frames:
    """The frame policy of one stream (the ``retry:`` line is :data:`OPENING`): stop after
    ``max_events`` messages or at ``deadline``, a :data:`KEEPALIVE` comment once nothing was
    sent for ``keepalive`` seconds. Immutable: :meth:`after` returns the next state, so the two
    loops (:meth:`AuditStream.messages`, :meth:`Hub.messages <audit.api.stream_hub.Hub.messages>`)
    differ only in how they wait for messages."""

    keepalive: float
    max_events: int | None
    deadline: float | None
    last: float  # when something was last sent
    sent: int = 0
    done: bool = False

    @classmethod
    def open(cls, now: float, *, max_events: int | None, timeout: float | None, keepalive: float) -> Frames:
        return cls(keepalive=keepalive, max_events=max_events,
                   deadline=None if timeout is None else now + timeout, last=now)

    def after(self, messages: list[str], now: float) -> tuple[list[str], Frames]:
        """The frames to send once a wait gave ``messages`` (SSE text) at ``now``, and the next state
        (``done``: the stream ends after these frames)."""
        if self.max_events is not None:
            messages = messages[: self.max_events - self.sent]
        sent = self.sent + len(messages)
        last = now if messages else self.last
        # (the constructor rather than dataclasses.replace: this runs for every stream at every wake)
        if (self.max_events is not None and sent >= self.max_events) or (
                self.deadline is not None and now >= self.deadline):
            return messages, Frames(self.keepalive, self.max_events, self.deadline, last, sent, True)
        if now - last >= self.keepalive:
            return [*messages, KEEPALIVE], Frames(self.keepalive, self.max_events, self.deadline, now, sent)
        if not messages:
            return messages, self
        return messages, Frames(self.keepalive, self.max_events, self.deadline, last, sent)

    def wait(self, now: float) -> float:
        """Seconds until the next keep-alive or the deadline, whichever comes first."""
        due = self.last + self.keepalive
        if self.deadline is not None:
            due = min(due, self.deadline)
        return max(due - now, 0.0)
