"""Events are processed once, through the rules, into one delivery per recipient (SQLite and PostgreSQL)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from alerts import processing
from alerts.models import AlertRule, Delivery, Outcome
from audit.models import ActivityLog, SystemEvent
from audit.services import log_system_event
from emergencies import services as emergency_services

pytestmark = [pytest.mark.django_db, pytest.mark.tasks]

PASSWORD = "Harbour-Pass-2025"


def report(actor, severity="critical"):
    return emergency_services.report_emergency(actor=actor, vessel="MV Aurora", emergency_type="fire",
                                               description="Fire in the engine room", location="Berth 4",
                                               severity=severity, reason="")


def test_a_critical_emergency_emails_every_active_approved_port_engineer(committed, engineers, staff):
    with committed():
        emergency = report(staff)
    event = SystemEvent.objects.get(event_type="emergency_created", entity_id=emergency.code)
    assert event.processed and event.processed_at is not None
    assert sorted(m.to[0] for m in mail.outbox) == ["pe001@example.com", "pe002@example.com"]
    assert all(len(m.to) == 1 for m in mail.outbox)  # one message per recipient
    assert mail.outbox[0].subject == f"[Critical] Emergency created emergency {emergency.code}"
    assert "MV Aurora" in mail.outbox[0].body and f"/api/realtime/system-events/{event.pk}/acknowledge" in mail.outbox[0].body
    rows = list(Delivery.objects.filter(event=event).order_by("recipient_user")
                .values_list("recipient_user", "channel", "outcome", "attempts"))
    assert rows == [("PE001", "email", "sent", 1), ("PE002", "email", "sent", 1)]


def test_a_high_emergency_alerts_nobody_but_is_processed(committed, engineers, staff):
    with committed():
        emergency = report(staff, severity="high")
    event = SystemEvent.objects.get(event_type="emergency_created", entity_id=emergency.code)
    assert event.processed and mail.outbox == [] and not Delivery.objects.exists()


def test_a_non_matching_event_alerts_nobody(committed, engineers, admin_user):
    with committed():
        event = log_system_event("request_approved", "maintenance_request", "MR001", {"by": "PE001"}, "info")
    event.refresh_from_db()
    assert event.processed and event.processed_at is not None
    assert mail.outbox == [] and not Delivery.objects.exists()


def test_processing_twice_changes_nothing(committed, engineers, staff):
    with committed():
        report(staff)
    event = SystemEvent.objects.get(event_type="emergency_created")
    processed_at = event.processed_at
    assert processing.process_event(event.pk) is None
    assert processing.sweep(min_age_seconds=0) == {"events": 0, "recovered": 0, "attempted": 0}
    event.refresh_from_db()
    assert event.processed_at == processed_at and Delivery.objects.count() == 2 and len(mail.outbox) == 2


def test_the_sweep_processes_an_event_whose_hook_was_lost(engineers):
    """An event written without its on-commit hook running (a killed process) is picked up by the sweep."""
    event = log_system_event("emergency_created", "emergency", "EMG009", {"vessel": "MV Lost"}, "critical")
    assert not SystemEvent.objects.get(pk=event.pk).processed
    assert processing.sweep(min_age_seconds=5)["events"] == 0  # too young: its own task may still come
    SystemEvent.objects.filter(pk=event.pk).update(timestamp=timezone.now() - timedelta(seconds=30))
    Delivery.objects.all().delete()
    counts = processing.sweep(min_age_seconds=5)
    assert counts["events"] == 1
    assert SystemEvent.objects.get(pk=event.pk).processed
    # the deliveries it created are sent by the next sweep once old enough (or at once by their task)
    Delivery.objects.update(created_at=timezone.now() - timedelta(seconds=30))
    assert processing.sweep(min_age_seconds=5)["attempted"] == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["pe001@example.com", "pe002@example.com"]


def test_a_lock_out_emails_the_admins(committed, portal, make_user, admin_user, engineers):
    make_user("ADM002", role="admin")
    victim = make_user("ST009")
    client = portal(None)
    with committed():
        for _ in range(5):
            assert client.post("/login/", {"username": victim.user_id, "password": "wrong-password"}).status_code == 200
    assert SystemEvent.objects.filter(event_type="account_locked", entity_id="ST009").exists()
    locked = [m for m in mail.outbox if m.subject.startswith("[Warning] Account locked")]
    assert sorted(m.to[0] for m in locked) == ["adm001@example.com", "adm002@example.com"]
    # the same five failures reach the "5 failed logins for one user" rule (and the per-IP one)
    burst = [m for m in mail.outbox if m.subject.startswith("[Warning] Failed login threshold user ST009")]
    assert sorted(m.to[0] for m in burst) == ["adm001@example.com", "adm002@example.com"]
    assert not [m for m in mail.outbox if "pe00" in m.to[0]]


def test_five_failed_logins_from_one_ip_alert_the_admins_once(committed, portal, admin_user):
    client = portal(None)
    with committed():
        for n in range(6):  # five different, unknown user ids from one address; the sixth starts a new count
            client.post("/login/", {"username": f"GHOST{n}", "password": "x"}, REMOTE_ADDR="203.0.113.7")
    fired = SystemEvent.objects.filter(event_type="failed_login_threshold", entity_type="ip_address")
    assert list(fired.values_list("entity_id", flat=True)) == ["203.0.113.7"]
    assert [m.to for m in mail.outbox if "ip_address 203.0.113.7" in m.subject] == [["adm001@example.com"]]
    assert not SystemEvent.objects.filter(event_type="failed_login_threshold", entity_type="user").exists()


def test_failed_logins_outside_the_window_do_not_count(committed, portal, admin_user):
    old = timezone.now() - timedelta(minutes=11)
    for _ in range(4):
        ActivityLog.objects.create(user_id="ST404", activity="Failed login", details="old", timestamp=old)
    client = portal(None)
    with committed():
        client.post("/login/", {"username": "ST404", "password": "x"}, REMOTE_ADDR="198.51.100.1")
    assert not SystemEvent.objects.filter(event_type="failed_login_threshold").exists()
    with committed():
        for _ in range(4):
            client.post("/login/", {"username": "ST404", "password": "x"}, REMOTE_ADDR="198.51.100.2")
    assert list(SystemEvent.objects.filter(event_type="failed_login_threshold")
                .values_list("entity_type", "entity_id")) == [("user", "ST404")]


def test_an_event_threshold_rule_fires_on_every_third_match_within_its_window(committed, admin_user):
    AlertRule.objects.create(name="3 errors in 10 minutes", event_type="unhandled_error", threshold=3,
                             window_minutes=10, recipient_emails="oncall@example.com")
    SystemEvent.objects.create(event_type="unhandled_error", severity="error",
                               timestamp=timezone.now() - timedelta(minutes=30))  # outside the window
    with committed():
        first = [log_system_event("unhandled_error", event_data={"n": n}, severity="error") for n in range(2)]
    assert mail.outbox == []
    with committed():
        third = log_system_event("unhandled_error", event_data={"n": 2}, severity="error")
        log_system_event("disk_full", severity="error")  # another type: not counted
    assert [m.to for m in mail.outbox] == [["oncall@example.com"]]
    assert Delivery.objects.get().event_id == third.pk
    assert all(SystemEvent.objects.get(pk=e.pk).processed for e in first)


def test_a_rule_change_is_captured_with_its_urls_masked(admin_user):
    from audit.context import audit_context
    from audit.models import AuditTrail

    rule = AlertRule.objects.get(name="Critical emergency: every port engineer")
    with audit_context(actor=admin_user, reason="Ops channel too"):
        rule.notify_urls = "json://127.0.0.1:9/secret-token"
        rule.save()
    row = AuditTrail.objects.filter(entity_type="alert_rule", entity_id=str(rule.pk)).latest("id")
    assert (row.user_id, row.action_type, row.change_reason) == ("ADM001", "update", "Ops channel too")
    assert row.changes["notify_urls"]["new"] == "[changed]"
    assert "secret-token" not in (row.new_value or "")
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)  # a bulk path is captured too
    assert AuditTrail.objects.filter(entity_type="alert_rule", entity_id=str(rule.pk)).count() == 2


def test_the_default_rules_are_seeded():
    rules = {r.name: r for r in AlertRule.objects.all()}
    assert rules["Critical emergency: every port engineer"].recipient_roles == ["port_engineer"]
    assert (rules["Critical emergency: every port engineer"].event_type,
            rules["Critical emergency: every port engineer"].severity) == ("emergency_created", "critical")
    assert rules["Integrity check failed: administrators"].event_type == "integrity_check_failed"
    assert rules["Account locked: administrators"].recipient_roles == ["admin"]
    per_user = rules["5 failed logins for one user in 10 minutes: administrators"]
    per_ip = rules["5 failed logins from one IP address in 10 minutes: administrators"]
    assert [(r.trigger, r.threshold, r.window_minutes, r.group_by) for r in (per_user, per_ip)] == [
        ("failed_logins", 5, 10, "user"), ("failed_logins", 5, 10, "ip")]
    assert Outcome.SENT == "sent"


@pytest.mark.database_tasks
def test_the_sweep_is_a_periodic_job_on_the_default_queue(settings):
    from django_tasks_db.models import DBTaskResult

    from core.engine import scheduler

    settings.ALERT_SWEEP_EVERY = 10
    assert "alerts.sweep" in scheduler.tick(now=timezone.now(), scheduler_id="test")
    row = DBTaskResult.objects.get(task_path="alerts.tasks.sweep")
    assert row.queue_name == "default"


def test_the_reporter_is_told_who_is_notified(portal, engineers, staff):
    form = {"vessel": "MV Aurora", "emergency_type": "fire", "severity": "critical", "location": "Berth 4",
            "description": "Fire in the engine room", "reason": ""}
    page = portal(staff).post("/emergencies/new/", form, follow=True).content.decode()
    assert "was reported; notified: PE001 (PE001 Person) and PE002 (PE002 Person)." in page
    assert "have been alerted" not in page
    quiet = portal(staff).post("/emergencies/new/", {**form, "severity": "high"}, follow=True).content.decode()
    assert "No alert rule notifies anyone of it" in quiet
