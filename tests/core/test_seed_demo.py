from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_seed_demo_creates_every_role_through_the_services_and_is_safe_to_rerun():
    from accounts.models import User
    from audit.models import AuditTrail
    from emergencies.models import Emergency
    from maintenance.models import InventoryItem, MaintenanceRequest

    out = StringIO()
    call_command("seed_demo", stdout=out)
    printed = out.getvalue()
    assert "Harbour-Demo-2025" in printed
    for user_id in ("ADM001", "PE001", "ST001", "ST900"):
        assert user_id in printed

    roles = set(User.objects.values_list("role", flat=True))
    assert roles == {"admin", "port_engineer", "staff"}
    assert User.objects.get(user_id="ST900").approval_status == "pending"
    statuses = set(MaintenanceRequest.objects.values_list("status", flat=True))
    assert {"pending", "approved", "in_progress", "completed", "rejected", "cancelled"} <= statuses
    assert Emergency.objects.filter(severity="critical").exists()
    assert InventoryItem.objects.count() == 6

    # created through the services: the audit trail holds the real history
    mr1 = MaintenanceRequest.objects.get(code="MR001")
    actions = list(
        AuditTrail.objects.filter(entity_type="maintenance_request", entity_id="MR001")
        .order_by("id").values_list("user_id", flat=True)
    )
    assert actions[0] == mr1.requested_by.user_id
    assert "PE001" in actions and "PE002" in actions

    counts = (User.objects.count(), MaintenanceRequest.objects.count(), Emergency.objects.count(), AuditTrail.objects.count())
    call_command("seed_demo", stdout=StringIO())
    assert (User.objects.count(), MaintenanceRequest.objects.count(), Emergency.objects.count(), AuditTrail.objects.count()) == counts


@pytest.mark.django_db
def test_seed_demo_prints_the_address_actually_served(monkeypatch):
    monkeypatch.setenv("PORT", "8123")
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "Log in at http://127.0.0.1:8123/ with:" in out.getvalue()
    monkeypatch.delenv("PORT")
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "Log in at http://127.0.0.1:8000/ with:" in out.getvalue()
