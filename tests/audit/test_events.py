"""System events and domain activities (audit.activity receivers): domain
events from the services, the activity signal, and unhandled errors."""

import json

import pytest
from django.db import transaction
from django.http import HttpResponse
from django.test import Client
from django.urls import path

from audit.context import audit_context
from audit.models import ActivityLog, SystemEvent
from core import signals

SECRET_IN_MESSAGE = "card 4111-1111-1111-1111 token abc123"


def _boom(request, n):
    from audit.services import log_system_event

    with transaction.atomic():
        log_system_event("written_before_the_crash")  # rolled back with the request's work
        raise RuntimeError(SECRET_IN_MESSAGE)


def _fine(request):
    return HttpResponse("ok")


urlpatterns = [path("boom/<int:n>/", _boom), path("fine/", _fine)]


# --- domain_event ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_domain_event_is_recorded_with_its_severity_and_json_data():
    signals.domain_event.send(sender=None, event_type="request_approved", entity_type="maintenance_request",
                              entity_id="MR001", event_data={"code": "MR001", "by": "PE001"}, severity="info")
    event = SystemEvent.objects.get()
    assert (event.event_type, event.entity_type, event.entity_id, event.severity) == (
        "request_approved", "maintenance_request", "MR001", "info")
    assert json.loads(event.event_data) == {"code": "MR001", "by": "PE001"}


@pytest.mark.django_db
@pytest.mark.parametrize("event_type, expected", [("account_locked", "warning"), ("emergency_created", "warning"),
                                                  ("user_approved", "info")])
def test_domain_event_without_severity_gets_a_default(event_type, expected):
    signals.domain_event.send(sender=None, event_type=event_type, entity_type="user", entity_id="ST001",
                              event_data="")
    assert SystemEvent.objects.get().severity == expected


@pytest.mark.django_db
def test_domain_event_with_an_unknown_severity_fails_the_senders_transaction():
    with pytest.raises(ValueError, match="severity"), transaction.atomic():
        signals.domain_event.send(sender=None, event_type="x", entity_type="", entity_id="", event_data="",
                                  severity="fatal")
    assert SystemEvent.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("severity, expected", [("critical", "critical"), ("high", "warning")])
def test_reporting_an_emergency_records_emergency_created(staff, severity, expected):
    from emergencies.services import report_emergency

    emergency = report_emergency(actor=staff, vessel="MV Aurora", emergency_type="fire",
                                 description="Engine room fire", severity=severity)
    event = SystemEvent.objects.get(event_type="emergency_created")
    assert (event.severity, event.entity_type, event.entity_id) == (expected, "emergency", emergency.code)
    assert json.loads(event.event_data)["vessel"] == "MV Aurora"


@pytest.mark.django_db
def test_approving_a_user_records_user_approved_as_info(admin_user):
    from accounts.services import approve_user, register_user

    user = register_user(user_id="ST050", password="Long-Enough-Pass-1", full_name="New Hand",
                         email="st050@example.com")
    approve_user(user=user, actor=admin_user, reason="Crew list checked")
    event = SystemEvent.objects.get(event_type="user_approved")
    assert (event.severity, event.entity_type, event.entity_id) == ("info", "user", "ST050")


@pytest.mark.django_db
def test_a_rolled_back_service_leaves_no_event():
    with pytest.raises(RuntimeError), transaction.atomic():
        signals.domain_event.send(sender=None, event_type="request_approved", entity_type="maintenance_request",
                                  entity_id="MR001", event_data={}, severity="info")
        raise RuntimeError("abort")
    assert SystemEvent.objects.count() == 0


# --- activity --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_activity_signal_is_recorded_for_the_context_actor():
    with audit_context(actor="PE001", ip_address="10.0.0.9"):
        signals.activity.send(sender=None, activity="Uploaded file", details="MR001: survey.pdf")
    row = ActivityLog.objects.get()
    assert (row.user_id, row.activity, row.details, row.ip_address) == (
        "PE001", "Uploaded file", "MR001: survey.pdf", "10.0.0.9")


@pytest.mark.django_db
def test_capture_switched_off_records_no_activity_or_event():
    with audit_context(enabled=False):
        signals.activity.send(sender=None, activity="Uploaded file", details="x")
        signals.domain_event.send(sender=None, event_type="x", entity_type="", entity_id="", event_data="",
                                  severity="info")
    assert (ActivityLog.objects.count(), SystemEvent.objects.count()) == (0, 0)


# --- unhandled errors ------------------------------------------------------------------------------


@pytest.mark.urls(__name__)
@pytest.mark.django_db(transaction=True)
def test_an_unhandled_error_is_recorded_with_path_class_and_request_id_but_no_secrets():
    client = Client(raise_request_exception=False)
    request_id = "0f5b8c1e-9a57-4b8e-8d36-2f4c1a0e6b11"
    response = client.post("/boom/7/?password=hunter2", {"card": "4111"}, HTTP_X_REQUEST_ID=request_id,
                           HTTP_AUTHORIZATION="Bearer very-secret")
    assert response.status_code == 500
    event = SystemEvent.objects.get(event_type="unhandled_error")
    assert event.severity == "error"
    data = json.loads(event.event_data)
    assert data["path"] == "/boom/7/"
    assert data["method"] == "POST"
    assert data["exception"] == "builtins.RuntimeError"
    assert data["request_id"] == request_id == response.headers["X-Request-ID"] == event.request_id
    assert set(data) == {"path", "method", "exception", "request_id"}
    text = event.event_data
    for secret in ("4111", "hunter2", "very-secret", "abc123", "card"):
        assert secret not in text
    # the request's own work rolled back; the error record did not
    assert not SystemEvent.objects.filter(event_type="written_before_the_crash").exists()


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_a_successful_request_records_no_error_event():
    assert Client().get("/fine/").status_code == 200
    assert not SystemEvent.objects.filter(event_type="unhandled_error").exists()
