"""PostgreSQL: a captured save() update is one statement (the UPDATE with its
snapshot and audit rows as data-modifying CTEs)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.context import audit_context
from audit.models import AuditTrail
from maintenance.models import MaintenanceRequest

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_a_save_of_a_row_deleted_meanwhile_writes_no_update_rows_and_is_recreated_as_django_does(staff):
    mr = MaintenanceRequest.objects.create(code="MR950", vessel="MV Tern", title="Bilge", requested_by=staff)
    MaintenanceRequest.objects.filter(pk=mr.pk).delete()
    mr.title = "Saved after a concurrent delete"
    with CaptureQueriesContext(connection) as queries:
        mr.save()
    assert queries.captured_queries[0]["sql"].startswith("WITH u AS (UPDATE")
    actions = list(AuditTrail.objects.filter(entity_id="MR950").order_by("id").values_list("action_type", flat=True))
    assert actions == ["create", "delete", "create"]  # no update row: the UPDATE matched nothing
    types = list(MaintenanceRequest.history.filter(id=mr.pk).order_by("history_id")
                 .values_list("history_type", flat=True))
    assert types == ["+", "-", "+"]


def test_one_statement_records_actor_reason_and_field_rows(staff, engineer):
    mr = MaintenanceRequest.objects.create(code="MR951", vessel="MV Tern", title="Bilge", requested_by=staff)
    with audit_context(actor=engineer, reason="Survey"), CaptureQueriesContext(connection) as queries:
        mr.title = "Bilge pump"
        mr.priority = "high"
        mr.save()
    assert len(queries.captured_queries) == 1
    trail = AuditTrail.objects.get(entity_id="MR951", action_type="update")
    assert (trail.user_id, trail.change_reason) == ("PE001", "Survey")
    assert sorted(trail.field_changes.values_list("field_name", "old_value", "new_value", "user_id")) == [
        ("priority", "medium", "high", "PE001"), ("title", "Bilge", "Bilge pump", "PE001")]
    latest = mr.history.latest()
    assert (latest.history_type, latest.title, latest.history_user_id, latest.history_change_reason) == (
        "~", "Bilge pump", engineer.pk, "Survey")
