"""Deliveries: retried with back-off, a final failure is a warning that alerts nobody, JSON webhooks
reach a server on 127.0.0.1, and a delivery of a dead worker is sent again (SQLite and PostgreSQL)."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from alerts import processing
from alerts.models import AlertRule, Delivery, Outcome
from audit.models import SystemEvent
from audit.services import log_system_event

pytestmark = [pytest.mark.django_db, pytest.mark.tasks]

FAILING_BACKEND = "tests.alerts.failing_mail.FailingBackend"


def _due_now():
    Delivery.objects.filter(outcome=Outcome.RETRYING).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_a_failing_channel_is_retried_with_back_off_then_recorded_as_a_warning(committed, settings, admin_user):
    settings.EMAIL_BACKEND = FAILING_BACKEND
    settings.ALERT_MAX_ATTEMPTS = 3
    settings.ALERT_RETRY_SECONDS = 30
    # a catch-all rule: it would alert on the failure warning too, if anything did
    AlertRule.objects.create(name="Every warning", severity="warning", recipient_emails="watch@example.com")
    with committed():
        event = log_system_event("disk_full", "", "", {"free": "1%"}, "warning")
    delivery = Delivery.objects.get(event_id=event.pk)
    assert (delivery.outcome, delivery.attempts) == (Outcome.RETRYING, 1)
    assert "SMTPServerDisconnected" in delivery.last_error and "s3cret" not in delivery.last_error
    assert delivery.next_attempt_at - delivery.claimed_at >= timedelta(seconds=29)
    assert processing.sweep(min_age_seconds=0)["attempted"] == 0  # not due yet
    _due_now()
    with committed():
        processing.sweep(min_age_seconds=0)
    delivery.refresh_from_db()
    assert (delivery.outcome, delivery.attempts) == (Outcome.RETRYING, 2)
    assert delivery.next_attempt_at - delivery.claimed_at >= timedelta(seconds=59)  # doubled
    _due_now()
    with committed():
        processing.sweep(min_age_seconds=0)
    delivery.refresh_from_db()
    assert (delivery.outcome, delivery.attempts) == (Outcome.FAILED, 3)
    warning = SystemEvent.objects.get(event_type="notification_failed")
    data = json.loads(warning.event_data)
    assert (warning.severity, warning.entity_type, warning.entity_id) == ("warning", "system_event", str(event.pk))
    assert (data["delivery_id"], data["recipient"], data["attempts"]) == (delivery.pk, "watch@example.com", 3)
    assert warning.processed and not Delivery.objects.filter(event_id=warning.pk).exists()
    assert mail.outbox == []


def test_back_off_doubles(settings):
    settings.ALERT_RETRY_SECONDS = 10
    assert [processing.retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]


def test_a_retry_that_succeeds_is_sent_with_its_attempts_shown(committed, settings, admin_user):
    settings.EMAIL_BACKEND = FAILING_BACKEND
    AlertRule.objects.create(name="Errors", severity="error", recipient_emails="watch@example.com")
    with committed():
        log_system_event("unhandled_error", event_data={"path": "/x"}, severity="error")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    _due_now()
    processing.sweep(min_age_seconds=0)
    delivery = Delivery.objects.get()
    assert (delivery.outcome, delivery.attempts, delivery.last_error) == (Outcome.SENT, 2, "")
    assert [m.to for m in mail.outbox] == [["watch@example.com"]]


def test_a_delivery_left_sending_by_a_dead_worker_is_sent_again_once(admin_user):
    AlertRule.objects.create(name="Errors", severity="error", recipient_emails="watch@example.com")
    event = log_system_event("unhandled_error", event_data={"path": "/x"}, severity="error")
    processing.process_event(event.pk)  # (not committed: no task sends it)
    delivery = Delivery.objects.get()
    # a worker claimed it and died before recording the outcome
    Delivery.objects.filter(pk=delivery.pk).update(outcome=Outcome.SENDING, attempts=1,
                                                   claimed_at=timezone.now() - timedelta(minutes=10))
    counts = processing.sweep(min_age_seconds=0)
    assert (counts["recovered"], counts["attempted"]) == (1, 1)
    delivery.refresh_from_db()
    assert (delivery.outcome, delivery.attempts) == (Outcome.SENT, 2)  # the record shows the second try
    assert len(mail.outbox) == 1
    assert processing.sweep(min_age_seconds=0) == {"events": 0, "recovered": 0, "attempted": 0}


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append((self.path, self.headers.get("Content-Type"), json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    _Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _Hook.received
    server.shutdown()
    server.server_close()


def test_a_json_webhook_receives_the_event(committed, webhook, admin_user):
    port, received = webhook
    rule = AlertRule.objects.get(name="Integrity check failed: administrators")
    rule.notify_urls = f"json://127.0.0.1:{port}/hooks/audit"
    rule.save()
    with committed():
        event = log_system_event("integrity_check_failed", "", "", {"findings": 2, "first": "audit_trail 7 altered"},
                                 "critical")
    assert len(received) == 1
    path, content_type, body = received[0]
    assert path == "/hooks/audit" and content_type.startswith("application/json")
    assert body["title"] == "[Critical] Integrity check failed"
    assert "audit_trail 7 altered" in body["message"] and f"(#{event.pk})" in body["message"]
    url_delivery = Delivery.objects.get(event_id=event.pk, channel="url")
    assert (url_delivery.outcome, url_delivery.recipient) == (Outcome.SENT, f"json://127.0.0.1:{port}/hooks/audit")
    assert [m.to for m in mail.outbox] == [["adm001@example.com"]]  # and the admins by e-mail


def test_an_unreachable_webhook_is_a_failed_attempt(committed, settings, admin_user):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends
    AlertRule.objects.create(name="Hook", event_type="disk_full", notify_urls=f"json://127.0.0.1:{port}/x")
    with committed():
        log_system_event("disk_full", severity="warning")
    delivery = Delivery.objects.get()
    assert (delivery.channel, delivery.outcome, delivery.attempts) == ("url", Outcome.RETRYING, 1)
    assert delivery.last_error.startswith("The notification service did not accept the message.")
