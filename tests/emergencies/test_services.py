"""emergencies.services, selectors and permissions called directly."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from core.errors import DomainError, TransitionError
from emergencies import selectors, services
from emergencies.models import Emergency

pytestmark = pytest.mark.django_db

FIELDS = {"vessel": "MV Test", "emergency_type": "flooding", "description": "Water in hold 2"}


def test_report_assigns_sequential_codes_and_defaults(staff):
    first = services.report_emergency(actor=staff, **FIELDS)
    second = services.report_emergency(actor=staff, **FIELDS, severity="low")
    assert (first.code, second.code) == ("EMG001", "EMG002")
    assert (first.severity, first.status, first.reported_by) == ("high", "reported", staff)


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"vessel": "  "}, "vessel"), ({"emergency_type": "alien"}, "emergency_type"),
     ({"severity": "medium"}, "severity"), ({"description": ""}, "description"), ({"location": "L" * 201}, "location")],
)
def test_report_validates(staff, bad, field):
    with pytest.raises(DomainError) as exc:
        services.report_emergency(actor=staff, **{**FIELDS, **bad})
    assert exc.value.field == field
    assert not Emergency.objects.exists()


def test_anonymous_cannot_report():
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(PermissionDenied):
        services.report_emergency(actor=AnonymousUser(), **FIELDS)


def test_transitions_set_their_timestamps_and_refuse_staff(staff, engineer):
    emergency = services.report_emergency(actor=staff, **FIELDS)
    with pytest.raises(PermissionDenied):
        services.acknowledge_emergency(emergency=emergency, actor=staff)
    services.acknowledge_emergency(emergency=emergency, actor=engineer)
    assert emergency.status == "acknowledged" and emergency.acknowledged_at is not None  # caller's object updated
    with pytest.raises(TransitionError, match="only resolved"):
        services.close_emergency(emergency=emergency, actor=engineer)
    services.resolve_emergency(emergency=emergency, actor=engineer)
    services.close_emergency(emergency=emergency, actor=engineer)
    emergency.refresh_from_db()
    assert emergency.status == "closed" and emergency.resolved_at and emergency.closed_at
    assert emergency.dispatched_at is None


def test_a_stale_object_cannot_repeat_a_move(staff, engineer):
    emergency = services.report_emergency(actor=staff, **FIELDS)
    stale = Emergency.objects.get(pk=emergency.pk)
    services.acknowledge_emergency(emergency=emergency, actor=engineer)
    with pytest.raises(TransitionError):
        services.acknowledge_emergency(emergency=stale, actor=engineer)  # the row lock re-reads the status


def test_update_refuses_unknown_fields(staff, engineer):
    emergency = services.report_emergency(actor=staff, **FIELDS)
    with pytest.raises(DomainError) as exc:
        services.update_emergency(emergency=emergency, actor=engineer, status="closed")
    assert exc.value.field == "status"


def test_get_emergency_for_hides_others(staff, other_staff, engineer):
    emergency = services.report_emergency(actor=staff, **FIELDS)
    assert selectors.get_emergency_for(staff, "emg001") == emergency
    assert selectors.get_emergency_for(engineer, "EMG001") == emergency
    with pytest.raises(Http404):
        selectors.get_emergency_for(other_staff, "EMG001")
    with pytest.raises(Http404):
        selectors.get_emergency_for(engineer, "EMG404")


@pytest.mark.parametrize(
    ("status", "manager_actions"),
    [
        ("reported", {"edit", "acknowledge", "assign"}),
        ("acknowledged", {"edit", "dispatch", "resolve", "assign"}),
        ("dispatched", {"edit", "resolve", "assign"}),
        ("resolved", {"edit", "close"}),
        ("closed", set()),
    ],
)
def test_allowed_emergency_actions(staff, other_staff, engineer, admin_user, status, manager_actions):
    emergency = services.report_emergency(actor=staff, **FIELDS)
    Emergency.objects.filter(pk=emergency.pk).update(status=status)
    emergency.refresh_from_db()
    assert selectors.allowed_emergency_actions(engineer, emergency) == manager_actions
    assert selectors.allowed_emergency_actions(admin_user, emergency) == manager_actions
    assert selectors.allowed_emergency_actions(staff, emergency) == ({"edit"} if status == "reported" else set())
    assert selectors.allowed_emergency_actions(other_staff, emergency) == set()


def test_active_emergencies(staff, engineer):
    a = services.report_emergency(actor=staff, **FIELDS)
    b = services.report_emergency(actor=staff, **FIELDS)
    services.acknowledge_emergency(emergency=b, actor=engineer)
    services.resolve_emergency(emergency=b, actor=engineer)
    assert list(selectors.active_emergencies()) == [a]


def test_services_name_the_actor_and_reason_for_the_audit_outside_a_request(staff, engineer):
    from audit.context import get_context
    from core.signals import domain_event

    seen = []
    domain_event.connect(lambda sender, **kw: seen.append((kw["event_type"], get_context().actor, get_context().reason)),
                         dispatch_uid="t-emg-ctx", weak=False)
    try:
        emergency = services.report_emergency(actor=staff, **FIELDS)
        services.acknowledge_emergency(emergency=emergency, actor=engineer, reason="Radio confirmed")
    finally:
        domain_event.disconnect(dispatch_uid="t-emg-ctx")
    assert seen == [("emergency_created", staff, ""), ("emergency_acknowledged", engineer, "Radio confirmed")]
    assert get_context().actor is None and get_context().reason == ""  # nothing leaks out


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_acknowledgements_let_exactly_one_through(make_user):
    import threading

    from django.db import connection

    reporter = make_user("ST001")
    managers = [make_user(f"PE00{i}", role="port_engineer") for i in range(1, 5)]
    emergency = services.report_emergency(actor=reporter, **FIELDS)
    results, barrier = [], threading.Barrier(len(managers))

    def attempt(manager):
        try:
            stale = Emergency.objects.get(pk=emergency.pk)
            barrier.wait()
            services.acknowledge_emergency(emergency=stale, actor=manager)
            results.append("ok")
        except TransitionError:
            results.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok", "refused", "refused", "refused"]
    assert Emergency.objects.get(pk=emergency.pk).status == "acknowledged"
