"""Forwarding to syslog (TCP, TLS, UDP) and HTTP collectors on 127.0.0.1: every row, in order per
table, through an outage of the sink, with the cursor advancing only when a batch is accepted."""

import json
import logging
import time

import pytest

from audit.models import AUDIT_MODELS, ActivityLog
from forwarding import engine, sinks
from forwarding.models import ForwardCursor
from tests.forwarding.servers import parse_syslog

pytestmark = pytest.mark.django_db


def all_ids():
    return {table: list(model.objects.order_by("pk").values_list("pk", flat=True))
            for table, model in AUDIT_MODELS.items()}


def uids_by_table(records):
    out = {}
    for record in records:
        table, row_id = record["metadata"]["log_name"], int(record["metadata"]["uid"].rsplit(":", 1)[1])
        out.setdefault(table, []).append(row_id)
    return out


def forward(settings, *urls):
    settings.AUDIT_FORWARD_SINKS = list(urls)
    return engine.forward(run_for=5)


def test_syslog_over_tcp_receives_every_row_in_order_as_rfc5424(settings, syslog_tcp, write_rows):
    write_rows(3)
    sent = forward(settings, f"syslog+tcp://127.0.0.1:{syslog_tcp.port}")
    name = f"syslog+tcp://127.0.0.1:{syslog_tcp.port}"
    assert sent[name] == {"activity_logs": 3, "audit_trail": 3, "update_history": 3, "system_events": 3}
    messages = [parse_syslog(m) for m in syslog_tcp.received]
    assert uids_by_table(m["record"] for m in messages) == all_ids()
    first = messages[0]
    assert first["app"] == "marine-center"
    assert int(first["pri"]) == 10 * 8 + 6  # authpriv, informational
    assert first["params"]["uid"] == first["record"]["metadata"]["uid"]
    assert first["params"]["request_id"] == "req-0"
    warning = next(m for m in messages if m["record"]["metadata"]["log_name"] == "system_events")
    assert int(warning["pri"]) == 10 * 8 + 4  # a warning event
    cursors = dict(ForwardCursor.objects.filter(sink=name).values_list("table", "last_id"))
    assert cursors == {table: ids[-1] for table, ids in all_ids().items()}


def test_syslog_over_tls_with_a_private_ca(settings, syslog_tls, write_rows, tmp_path):
    write_rows(2)
    forward(settings, f"syslog+tls://127.0.0.1:{syslog_tls.port}?ca={tmp_path / 'ca.pem'}")
    assert uids_by_table(parse_syslog(m)["record"] for m in syslog_tls.received) == all_ids()


def test_syslog_over_tls_refuses_an_untrusted_certificate_and_sends_nothing(settings, syslog_tls, write_rows):
    write_rows(1)
    name = f"syslog+tls://127.0.0.1:{syslog_tls.port}"
    forward(settings, name)
    assert syslog_tls.received == []
    cursor = ForwardCursor.objects.get(sink=name, table="activity_logs")
    assert cursor.last_id == 0 and cursor.failures == 1
    assert "CERTIFICATE_VERIFY_FAILED" in cursor.last_error


def test_syslog_over_udp_is_best_effort_one_datagram_per_row(settings, syslog_udp, write_rows):
    write_rows(2)
    forward(settings, f"syslog+udp://127.0.0.1:{syslog_udp.port}")
    deadline = time.monotonic() + 5
    while len(syslog_udp.received) < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(uids_by_table(parse_syslog(m)["record"] for m in syslog_udp.received).items()) == \
        sorted(all_ids().items())


def test_a_syslog_outage_loses_nothing_and_the_cursor_waits(settings, syslog_tcp, write_rows):
    name = f"syslog+tcp://127.0.0.1:{syslog_tcp.port}"
    write_rows(2)
    forward(settings, name)
    before = {c.table: c.last_id for c in ForwardCursor.objects.filter(sink=name)}
    syslog_tcp.stop()  # the collector goes down
    write_rows(3, start=2)
    forward(settings, name)
    forward(settings, name)
    down = {c.table: c for c in ForwardCursor.objects.filter(sink=name)}
    assert down["activity_logs"].last_id == before["activity_logs"]  # nothing counted as sent
    assert down["activity_logs"].failures == 2 and "ConnectionRefusedError" in down["activity_logs"].last_error
    assert engine.lag(name) > 0
    syslog_tcp.start()  # back, same port
    forward(settings, name)
    received = uids_by_table(parse_syslog(m)["record"] for m in syslog_tcp.received)
    assert received == all_ids()  # every row exactly once here, in id order per table
    after = {c.table: c for c in ForwardCursor.objects.filter(sink=name)}
    assert all(c.failures == 0 and c.last_error == "" for c in after.values())
    assert engine.lag(name) == 0


def test_http_sink_in_batches_as_json_lines_through_an_outage(settings, http_sink, write_rows):
    settings.AUDIT_FORWARD_BATCH = 2
    url = f"http://127.0.0.1:{http_sink.port}/ingest"
    write_rows(3)
    http_sink.status = 503
    forward(settings, url)
    assert http_sink.received == []
    assert ForwardCursor.objects.get(sink=url, table="activity_logs").last_error.endswith(
        "HTTP 503 Service Unavailable")
    http_sink.status = 200
    forward(settings, url)
    assert uids_by_table(http_sink.records()) == all_ids()
    assert all(len(post["body"].splitlines()) <= 2 for post in http_sink.received)  # batches of AUDIT_FORWARD_BATCH
    assert http_sink.received[0]["headers"]["Content-Type"] == "application/x-ndjson"


def test_splunk_hec_gets_its_token_and_event_envelopes_and_secrets_stay_out_of_logs(settings, http_sink, write_rows,
                                                                                     caplog):
    secret = "hec-s3cr3t-token"
    url = f"http://x:{secret}@127.0.0.1:{http_sink.port}/services/collector/event"
    write_rows(1)
    http_sink.status = 403
    with caplog.at_level(logging.DEBUG):
        forward(settings, url)
    cursor = ForwardCursor.objects.get(table="activity_logs")
    assert cursor.sink == f"http://127.0.0.1:{http_sink.port}/services/collector/event"
    assert secret not in caplog.text and secret not in cursor.last_error and secret not in cursor.sink
    assert "HTTP 403" in caplog.text
    http_sink.status = 200
    forward(settings, url)
    post = http_sink.received[0]
    assert post["headers"]["Authorization"] == f"Splunk {secret}"
    decoder, body, events = json.JSONDecoder(), post["body"].decode(), []
    while body:
        event, end = decoder.raw_decode(body)
        events.append(event)
        body = body[end:]
    assert events[0]["sourcetype"] == "ocsf:6003" and events[0]["event"]["class_uid"] == 6003
    assert events[0]["time"] == events[0]["event"]["time"] / 1000


def test_otlp_logs_for_an_opentelemetry_collector(settings, http_sink, write_rows):
    write_rows(1)
    forward(settings, f"http://tok@127.0.0.1:{http_sink.port}/v1/logs")
    doc = json.loads(http_sink.received[0]["body"])
    logs = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert http_sink.received[0]["headers"]["Authorization"] == "Bearer tok"
    record = json.loads(logs[0]["body"]["stringValue"])
    attributes = {a["key"]: a["value"] for a in logs[0]["attributes"]}
    assert attributes["ocsf.metadata.uid"] == {"stringValue": record["metadata"]["uid"]}
    assert attributes["request.id"] == {"stringValue": "req-0"}
    assert logs[0]["timeUnixNano"] == str(record["time"] * 1_000_000)


def test_two_sinks_each_keep_their_own_cursor(settings, syslog_tcp, http_sink, write_rows):
    write_rows(2)
    syslog_tcp.stop()
    tcp, web = f"syslog+tcp://127.0.0.1:{syslog_tcp.port}", f"http://127.0.0.1:{http_sink.port}/"
    forward(settings, tcp, web)
    assert uids_by_table(http_sink.records()) == all_ids()  # the HTTP sink is not held up by the syslog one
    assert ForwardCursor.objects.get(sink=tcp, table="activity_logs").last_id == 0


def test_a_gap_that_may_still_fill_is_waited_for(settings, http_sink, write_rows):
    write_rows(3)
    rows = list(ActivityLog.objects.order_by("pk"))
    ActivityLog.objects.filter(pk=rows[1].pk).delete()  # as an insert not committed yet would look
    forward(settings, f"http://127.0.0.1:{http_sink.port}/")
    assert uids_by_table(http_sink.records())["activity_logs"] == [rows[0].pk]
    settings.AUDIT_FORWARD_SETTLE = 0  # the gap has been there longer than the settle time: a rollback
    forward(settings, f"http://127.0.0.1:{http_sink.port}/")
    assert uids_by_table(http_sink.records())["activity_logs"] == [rows[0].pk, rows[2].pk]


@pytest.mark.parametrize("url, message", [
    ("ftp://host/x", "is not a sink"),
    ("syslog+tcp:///nohost", "names no host"),
    ("syslog+tcp://host:abc", "port that is not a number"),
    ("https://host/x?format=xml", "format must be hec, otlp or jsonl"),
    ("https://user:pw@host/x?auth=basic", "auth must be splunk or bearer"),
])
def test_a_bad_sink_url_is_refused_with_a_sentence_without_its_credentials(url, message):
    with pytest.raises(sinks.ConfigError, match=message) as caught:
        sinks.parse(url)
    assert "pw" not in str(caught.value)


def test_manage_check_refuses_a_bad_sink_without_showing_its_credentials(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.AUDIT_FORWARD_SINKS = ["smtp://user:pw@host/x"]
    with pytest.raises(SystemCheckError, match="forwarding.E001") as caught:
        call_command("check")
    assert "pw" not in str(caught.value) and "is not a sink" in str(caught.value)


def test_the_dashboard_says_why_forwarding_stopped_on_a_bad_sink(settings, client, make_user):
    from tests.conftest import PASSWORD

    make_user("ADM001", role="admin")
    client.login(user_id="ADM001", password=PASSWORD)
    settings.AUDIT_FORWARD_SINKS = ["smtp://user:pw@host/x"]
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert "Forwarding to monitoring is not running" in response.content.decode()


def test_error_reports_hide_the_sink_tokens(settings, rf):
    from django.views.debug import get_default_exception_reporter_filter

    settings.AUDIT_FORWARD_SINKS = ["https://hec-s3cr3t@splunk.example:8088/services/collector"]
    settings.REDIS_URL = "redis://:redis-pw@127.0.0.1:6379/0"
    safe = get_default_exception_reporter_filter().get_safe_settings()
    assert "hec-s3cr3t" not in str(safe) and "redis-pw" not in str(safe)
    assert safe["AUDIT_FORWARD_SINKS"] == "********************"
