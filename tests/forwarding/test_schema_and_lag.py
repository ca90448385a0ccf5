"""The forwarded records' OCSF mapping, the lag, its warning event and the dashboard's line, and
the forwarding as a periodic task run by a worker."""

import datetime as dt

import pytest
from django.utils import timezone

from audit import services
from audit.context import audit_context
from audit.models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory
from core.background import run_pending
from core.engine import scheduler
from forwarding import engine, schema
from forwarding.models import ForwardCursor

pytestmark = pytest.mark.django_db


def test_a_login_is_an_ocsf_authentication_logon_with_its_request_id():
    with audit_context(actor="PE001", request_id="req-login", ip_address="10.1.2.3"):
        row = services.log_activity("Login", "via the portal")
    record = schema.record("activity_logs", row)
    assert (record["class_uid"], record["class_name"], record["category_uid"]) == (3002, "Authentication", 3)
    assert (record["activity_id"], record["activity_name"], record["type_uid"]) == (1, "Logon", 300201)
    assert (record["status_id"], record["status"], record["severity_id"]) == (1, "Success", 1)
    assert record["user"] == {"uid": "PE001"} and record["src_endpoint"] == {"ip": "10.1.2.3"}
    assert record["metadata"]["uid"] == f"msc:activity_logs:{row.pk}"
    assert record["metadata"]["correlation_uid"] == "req-login"
    assert record["metadata"]["version"] == "1.1.0"
    assert record["time"] == int(row.timestamp.timestamp() * 1000)
    assert record["unmapped"]["details"] == "via the portal"


def test_a_failed_login_is_a_failed_logon_of_medium_severity():
    with audit_context(actor="anonymous"):
        row = services.log_activity("Failed login", "Attempted user ID: PE009")
    record = schema.record("activity_logs", row)
    assert (record["class_uid"], record["activity_id"], record["status_id"], record["severity_id"]) == (3002, 1, 2, 3)


def test_a_page_read_is_api_activity_read():
    with audit_context(actor="ST001", request_id="req-r", method="GET", path="/requests/MR001/"):
        row = services.log_activity("Viewed maintenance request", "Request ID: MR001")
    ActivityLog.objects.filter(pk=row.pk).update(status_code=200)
    row.refresh_from_db()
    record = schema.record("activity_logs", row)
    assert (record["class_uid"], record["category_uid"], record["activity_id"], record["type_uid"]) == \
        (6003, 6, 2, 600302)
    assert record["http_request"]["http_method"] == "GET" and record["http_response"] == {"code": 200}
    assert record["api"]["request"] == {"uid": "req-r"}


def test_an_entity_change_is_entity_management_update_and_its_history_row_too():
    with audit_context(actor="PE001", request_id="req-e"):
        trail = services.log_entity_change("maintenance_request", "MR001", "status", "open", "closed")
    record = schema.record("audit_trail", trail)
    assert (record["class_uid"], record["class_name"], record["activity_id"]) == (3004, "Entity Management", 3)
    assert record["entity"] == {"type": "maintenance_request", "uid": "MR001"}
    assert record["actor"] == {"user": {"uid": "PE001"}}
    assert {"source", "changes", "change_reason", "request_id"} <= set(record["unmapped"])  # every column
    history = schema.record("update_history", UpdateHistory.objects.get(audit=trail))
    assert (history["class_uid"], history["activity_id"], history["metadata"]["correlation_uid"]) == (3004, 3, "")
    assert history["unmapped"]["field_name"] == "status"


def test_a_role_change_of_a_user_is_an_account_change():
    with audit_context(actor="ADM001"):
        trail = services.log_entity_change("user", "ST001", "role", "staff", "port_engineer",
                                           action_type="role_change")
    record = schema.record("audit_trail", trail)
    assert (record["class_uid"], record["class_name"], record["activity_id"]) == (3001, "Account Change", 7)
    assert record["user"] == {"uid": "ST001"}


def test_a_locked_account_is_an_account_change_lock_and_other_events_keep_their_type():
    locked = services.log_system_event("account_locked", "user", "ST002", {"failures": 5}, severity="warning")
    record = schema.record("system_events", locked)
    assert (record["class_uid"], record["activity_id"], record["activity_name"], record["severity_id"]) == \
        (3001, 9, "Lock", 3)
    assert record["unmapped"]["event_data"] == {"failures": 5}
    failed = services.log_system_event("integrity_check_failed", "audit", "seal", "3 rows", severity="critical")
    record = schema.record("system_events", failed)
    assert (record["class_uid"], record["activity_id"], record["activity_name"], record["severity_id"]) == \
        (3004, 99, "integrity_check_failed", 5)


def test_the_stable_id_names_the_installation(settings):
    settings.AUDIT_FORWARD_SOURCE = "harbour-a"
    row = services.log_activity("Logout")
    assert schema.record("activity_logs", row)["metadata"]["uid"] == f"harbour-a:activity_logs:{row.pk}"


def _backdate(minutes):
    moment = timezone.now() - dt.timedelta(minutes=minutes)
    for model in (ActivityLog, AuditTrail, UpdateHistory, SystemEvent):
        model.objects.update(timestamp=moment)


def test_a_lagging_sink_records_one_warning_event_that_names_it(settings, write_rows):
    settings.AUDIT_FORWARD_SINKS = ["https://token@collector.invalid:8088/services/collector"]
    settings.AUDIT_FORWARD_LAG_ALERT = 60
    write_rows(1)
    _backdate(10)
    name = "https://collector.invalid:8088/services/collector"
    assert 590 < engine.lag(name) < 700
    assert engine.check_lag() == [name]
    assert engine.check_lag() == []  # not again within the threshold
    event = SystemEvent.objects.get(event_type="audit_forwarding_lagging")
    assert (event.severity, event.entity_type, event.entity_id) == ("warning", "forwarding_sink", name)
    assert "token" not in event.event_data and '"threshold_seconds": 60.0' in event.event_data


def test_a_sink_caught_up_records_nothing(settings, http_sink, write_rows):
    settings.AUDIT_FORWARD_SINKS = [f"http://127.0.0.1:{http_sink.port}/"]
    settings.AUDIT_FORWARD_LAG_ALERT = 60
    write_rows(1)
    _backdate(10)
    engine.forward(run_for=5)
    assert engine.check_lag() == []


def test_the_dashboard_shows_each_sink_and_its_lag(settings, client, make_user, write_rows):
    from tests.conftest import PASSWORD

    make_user("ADM001", role="admin")
    client.login(user_id="ADM001", password=PASSWORD)
    settings.AUDIT_FORWARD_SINKS = ["syslog+tls://u:pw@siem.example:6514"]
    settings.AUDIT_FORWARD_LAG_ALERT = 60
    write_rows(1)
    _backdate(5)
    page = client.get("/dashboard/").content.decode()
    assert "Forwarding to <code>syslog+tls://siem.example:6514</code>" in page
    assert "5 minutes behind" in page and "above the 1 minute alert threshold" in page
    assert "pw@" not in page


def test_the_dashboard_says_nothing_of_forwarding_when_no_sink_is_set(settings, client, make_user):
    from tests.conftest import PASSWORD

    make_user("ADM001", role="admin")
    client.login(user_id="ADM001", password=PASSWORD)
    settings.AUDIT_FORWARD_SINKS = []
    assert "Forwarding to" not in client.get("/dashboard/").content.decode()


@pytest.mark.tasks
def test_the_scheduler_runs_the_forwarding_on_its_queue_while_a_sink_is_set(settings, http_sink, write_rows,
                                                                              django_capture_on_commit_callbacks):
    settings.ALERT_SWEEP_EVERY = settings.AUDIT_SEAL_EVERY = settings.AUDIT_VERIFY_EVERY = 0
    settings.AUDIT_PURGE_EVERY = 0
    settings.AUDIT_FORWARD_SINKS = []
    assert scheduler.tick() == []  # no sink: no forwarding job
    settings.AUDIT_FORWARD_SINKS = [f"http://127.0.0.1:{http_sink.port}/"]
    write_rows(2)
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduler.tick() == ["audit.forward"]
    assert run_pending(queues=["default", "ops"]) == 0  # the forwarding queue of its own
    assert run_pending(queues=["forwarding"]) == 1
    assert len(http_sink.records()) == 8
    assert ForwardCursor.objects.get(table="system_events").last_id == SystemEvent.objects.latest("pk").pk
