"""The live stream's engine and parameters, in process: the cursor, rows that
commit out of id order (late commits), gaps of rolled-back ids, and the
parameter checks of ``/api/realtime/stream``. The stream served by real
server processes is tested in ``test_stream.py``."""

from __future__ import annotations

import pytest

from audit.api import stream
from audit.models import ActivityLog, SystemEvent
from audit.services import log_activity, log_system_event

pytestmark = pytest.mark.django_db


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _activity(text: str, **fields) -> int:
    if fields:
        return ActivityLog.objects.create(user_id=fields.pop("user_id", "PE001"), activity=text, **fields).id
    return log_activity(text).id


def _feed(kinds=("activity",), *, clock=None, trackers=None, own=None, severities=None, grace=5.0):
    return stream.AuditStream(
        audience=stream.Audience(kinds=kinds, own_user_id=own, severities=severities),
        trackers=trackers or stream.current_cursor(),
        grace=grace,
        clock=clock or FakeClock(),
    )


# --- the cursor ---------------------------------------------------------------


def test_cursor_round_trips_watermarks_and_delivered_ranges():
    trackers = stream.decode_cursor("a120.122~125.130-t45-e0", now=0.0)
    assert trackers["activity"].low == 120
    assert trackers["activity"].delivered == {122, 123, 124, 125, 130}
    assert trackers["audit"].low == 45 and not trackers["audit"].delivered
    assert stream.encode_cursor(trackers) == "a120.122~125.130-t45-e0"


@pytest.mark.parametrize("bad", [
    "", "a1-t2", "a1-t2-e3-x4", "t1-a2-e3", "a-1-t2-e3", "a1.1-t2-e3", "a5.9~7-t2-e3", "a1 t2 e3",
    "a1-t2-e3\x00", "a" + "9" * 30 + "-t1-e1", "a1.2~999999-t1-e1",
])
def test_malformed_cursors_are_refused(bad):
    with pytest.raises(stream.CursorError):
        stream.decode_cursor(bad, now=0.0)


# --- delivery order and gaps ----------------------------------------------------


def test_starts_from_now_and_delivers_each_new_row_once_in_id_order():
    _activity("before the stream")
    feed = _feed()
    assert feed.poll() == []
    first, second = _activity("one"), _activity("two")
    messages = feed.poll()
    assert [m.data["id"] for m in messages] == [first, second]
    assert [m.data["activity"] for m in messages] == ["one", "two"]
    assert messages[-1].cursor == f"a{second}-t{feed.trackers['audit'].low}-e{feed.trackers['event'].low}"
    assert feed.poll() == []


def test_a_row_committed_late_with_a_smaller_id_is_delivered_not_skipped():
    """PostgreSQL takes the id at INSERT and shows the row at COMMIT: here the
    late row is written with the smaller id after the bigger one was read."""
    clock = FakeClock()
    feed = _feed(clock=clock)
    base = feed.trackers["activity"].low
    later = _activity("committed first", id=base + 2)
    assert [m.data["id"] for m in feed.poll()] == [later]
    assert feed.cursor().startswith(f"a{base}.{base + 2}-")  # the gap at base+1 stays open
    clock.now += 1
    late = _activity("committed late", id=base + 1)
    messages = feed.poll()
    assert [m.data["id"] for m in messages] == [late]
    assert messages[0].cursor.startswith(f"a{base + 2}-")  # gap closed: the watermark moves over both
    assert feed.poll() == []


def test_a_gap_older_than_the_grace_period_is_passed_and_then_never_blocks():
    clock = FakeClock()
    feed = _feed(clock=clock, grace=5.0)
    base = feed.trackers["activity"].low
    _activity("above a rolled-back id", id=base + 2)
    feed.poll()
    clock.now += 4.0
    feed.poll()
    assert feed.trackers["activity"].low == base  # still waiting for base+1
    clock.now += 2.0
    feed.poll()
    assert feed.trackers["activity"].low == base + 2
    assert feed.cursor().startswith(f"a{base + 2}-")


def test_resuming_from_a_cursor_taken_above_a_gap_delivers_only_the_missed_rows():
    clock = FakeClock()
    feed = _feed(clock=clock)
    base = feed.trackers["activity"].low
    _activity("seen", id=base + 2)
    cursor = feed.poll()[-1].cursor
    late = _activity("late", id=base + 1)
    newer = _activity("newer", id=base + 3)
    resumed = _feed(clock=clock, trackers=stream.decode_cursor(cursor, now=clock.now))
    assert [m.data["id"] for m in resumed.poll()] == [late, newer]  # late commits first, then new rows
    assert resumed.poll() == []


def test_staff_get_only_their_own_activity_and_rows_they_cannot_see_still_settle():
    _activity("before the stream")  # the stream starts at the highest id: no gap below the new rows
    feed = _feed(kinds=("activity",), own="ST001")
    base = feed.trackers["activity"].low
    _activity("someone else", user_id="PE001")
    mine = _activity("mine", user_id="ST001")
    _activity("someone else again", user_id="ST002")
    messages = feed.poll()
    assert [(m.kind, m.data["id"], m.data["user_id"]) for m in messages] == [("activity", mine, "ST001")]
    assert feed.trackers["activity"].low == base + 3


def test_event_rows_are_filtered_by_severity_and_have_the_rest_shape():
    feed = _feed(kinds=("event",), severities=("critical",))
    log_system_event("disk_full", event_data={"free": 0}, severity="warning")
    critical = log_system_event("emergency_created", entity_type="emergency", entity_id="EMG001",
                                event_data={"vessel": "MV Aurora"}, severity="critical")
    messages = feed.poll()
    assert [(m.kind, m.data["id"]) for m in messages] == [("event", critical.id)]
    data = messages[0].data
    assert set(data) == {"id", "timestamp", "event_type", "entity_type", "entity_id", "event_data", "severity",
                         "processed", "processed_at", "acknowledged_at", "acknowledged_by", "acknowledgement_note"}
    assert data["timestamp"].endswith("Z") and len(data["timestamp"]) == 24
    frame = messages[0].encode()
    assert frame.startswith(f"id: {messages[0].cursor}\nevent: event\ndata: {{") and frame.endswith("}\n\n")
    assert SystemEvent.objects.filter(severity="warning").count() == 1


def test_keep_alive_comment_when_nothing_happens():
    clock = FakeClock()
    feed = _feed(clock=clock)

    def sleep(seconds):
        clock.now += 5.0

    frames = list(feed.messages(timeout=31.0, keepalive=15.0, sleep=sleep))
    assert frames[0].startswith("retry: ")
    assert frames.count(": keep-alive\n\n") == 2


def test_the_frame_policy_cuts_at_max_events_ends_at_the_deadline_and_keeps_alive():
    """stream.Frames: the one policy of both loops (the sync poll and the hub)."""
    frames = stream.Frames.open(100.0, max_events=3, timeout=60.0, keepalive=15.0)
    assert frames.wait(100.0) == 15.0  # the keep-alive comes before the deadline
    out, frames = frames.after(["m1", "m2"], 101.0)
    assert out == ["m1", "m2"] and not frames.done and frames.sent == 2
    out, frames = frames.after([], 110.0)
    assert out == [] and frames.wait(110.0) == 6.0  # 15 s after the last message at 101
    out, frames = frames.after([], 116.0)
    assert out == [stream.KEEPALIVE] and frames.wait(116.0) == 15.0
    out, frames = frames.after(["m3", "m4", "m5"], 117.0)
    assert out == ["m3"] and frames.done  # the batch is cut at max_events
    late = stream.Frames.open(0.0, max_events=None, timeout=20.0, keepalive=15.0)
    assert late.wait(10.0) == 5.0  # ...then 10 s to the deadline
    out, late = late.after(["last"], 20.0)
    assert out == ["last"] and late.done  # what was read is still sent at the deadline


# --- the endpoint's parameters (in process) ------------------------------------


@pytest.mark.parametrize("query, field", [
    ("kinds=bogus", "kinds"),
    ("kinds=", "kinds"),
    ("kinds=activity,,", "kinds"),
    ("severity=loud", "severity"),
    ("severity=", "severity"),
    ("timeout=-1", "timeout"),
    ("timeout=abc", "timeout"),
    ("timeout=nan", "timeout"),
    ("max_events=0", "max_events"),
    ("max_events=1.5", "max_events"),
    ("max_events=%C2%B2", "max_events"),  # a digit to str.isdigit(), not to int()
    ("last_event_id=42", "last_event_id"),
    ("last_event_id=a1-t2-e3%00", "last_event_id"),
])
def test_bad_parameters_are_a_400_naming_the_parameter(api, engineer, query, field):
    response = api(engineer).get(f"/api/realtime/stream?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and field in body["error"]["fields"]


def test_a_bad_last_event_id_header_is_a_400(api, engineer):
    response = api(engineer).get("/api/realtime/stream", HTTP_LAST_EVENT_ID="not-a-cursor")
    assert response.status_code == 400
    assert "last_event_id" in response.json()["error"]["fields"]


def test_anonymous_is_a_401_envelope(anon_api):
    response = anon_api.get("/api/realtime/stream")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("kinds", ["audit", "event", "activity,event"])
def test_staff_asking_for_audit_or_events_is_a_403(api, staff, kinds):
    response = api(staff).get(f"/api/realtime/stream?kinds={kinds}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_opening_the_stream_is_recorded_before_the_first_byte(api, engineer):
    response = api(engineer).get("/api/realtime/stream?kinds=event&timeout=0.01")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["Cache-Control"].startswith("no-cache")
    row = ActivityLog.objects.filter(user_id="PE001", activity="Opened audit stream").get()
    assert '"kinds": "event"' in row.details
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("retry: 2000\n")


def test_in_process_stream_delivers_and_stops_after_max_events(api, engineer):
    client = api(engineer)
    cursor = stream.encode_cursor(stream.current_cursor())
    mine = _activity("written before the resume")
    response = client.get(f"/api/realtime/stream?kinds=activity&max_events=1&last_event_id={cursor}")
    frames = [f for f in b"".join(response.streaming_content).decode().split("\n\n") if f.startswith("id: ")]
    assert len(frames) == 1
    assert f'"id":{mine},' in frames[0] and "event: activity" in frames[0]


# --- PostgreSQL: two real transactions committing out of id order ---------------

_INSERT = (
    "INSERT INTO activity_logs (user_id, activity, details, timestamp, request_id, user_agent, method, path)"
    " VALUES (%s, %s, '', now(), '', '', '', '') RETURNING id"
)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgresql_transactions_committing_out_of_id_order_each_arrive_once():
    import psycopg
    from django.db import connection

    settings = connection.settings_dict
    dsn = {"host": settings["HOST"] or "127.0.0.1", "port": settings["PORT"] or 5432,
           "user": settings["USER"], "dbname": settings["NAME"], "password": settings["PASSWORD"] or None}
    with psycopg.connect(**dsn) as slow, psycopg.connect(**dsn, autocommit=True) as fast:
        fast.execute(_INSERT, ("PE001", "before the stream"))
        feed = _feed(grace=30.0, clock=stream.time.monotonic)
        slow_id = slow.execute(_INSERT, ("PE001", "slow transaction")).fetchone()[0]
        fast_id = fast.execute(_INSERT, ("PE001", "fast transaction")).fetchone()[0]
        assert fast_id > slow_id
        assert [m.data["id"] for m in feed.poll()] == [fast_id]  # the smaller id is not visible yet
        slow.commit()
        assert [m.data["id"] for m in feed.poll()] == [slow_id]
        assert feed.poll() == []
        assert feed.trackers["activity"].low == fast_id
