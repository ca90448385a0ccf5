"""PostgreSQL: a captured save() update or create is one statement (the UPDATE
or INSERT with its snapshot and audit rows as data-modifying CTEs)."""

import json

import pytest
from django.db import DataError, connection
from django.test.utils import CaptureQueriesContext

from audit.context import audit_context
from audit.models import AuditTrail
from maintenance.models import Comment, MaintenanceRequest

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
    assert set(trail.field_changes.values_list("table_name", "record_id")) == {
        ("maintenance_maintenancerequest", "MR951")}
    assert sorted(trail.field_changes.values_list("field_name", "old_value", "new_value", "user_id")) == [
        ("priority", "medium", "high", "PE001"), ("title", "Bilge", "Bilge pump", "PE001")]
    latest = mr.history.latest()
    assert (latest.history_type, latest.title, latest.history_user_id, latest.history_change_reason) == (
        "~", "Bilge pump", engineer.pk, "Survey")


def test_a_create_is_one_statement_with_the_new_id_in_its_audit_rows_and_snapshot(staff, engineer):
    with audit_context(actor=engineer, reason="Intake"), CaptureQueriesContext(connection) as queries:
        mr = MaintenanceRequest(code="MR952", vessel="MV Tern", title="Bilge", requested_by=staff)
        mr.save()
    assert len(queries.captured_queries) == 1
    assert queries.captured_queries[0]["sql"].startswith("WITH i AS (INSERT")
    assert isinstance(mr.pk, int) and MaintenanceRequest.objects.get(pk=mr.pk).title == "Bilge"
    trail = AuditTrail.objects.get(entity_id="MR952")
    assert (trail.action_type, trail.user_id, trail.change_reason) == ("create", "PE001", "Intake")
    assert trail.changes["id"] == {"old": None, "new": mr.pk}
    assert trail.changes["requested_by"] == {"old": None, "new": "ST001"}
    assert json.loads(trail.new_value)["id"] == mr.pk
    assert trail.field_changes.get(field_name="id").new_value == str(mr.pk)
    assert set(trail.field_changes.values_list("table_name", "record_id")) == {
        ("maintenance_maintenancerequest", "MR952")}
    assert trail.field_changes.get(field_name="title").new_value == "Bilge"
    snapshot = mr.history.get()
    assert (snapshot.id, snapshot.history_type, snapshot.code, snapshot.history_user_id,
            snapshot.history_change_reason) == (mr.pk, "+", "MR952", engineer.pk, "Intake")
    mr.title = "Bilge pump"  # the saved instance updates as usual afterwards
    mr.save()
    assert list(AuditTrail.objects.filter(entity_id="MR952").order_by("id").values_list("action_type", flat=True)) == [
        "create", "update"]


def test_a_create_of_an_entity_without_code_records_its_new_id_as_entity_id(staff):
    mr = MaintenanceRequest.objects.create(code="MR953", vessel="MV Tern", title="Bilge", requested_by=staff)
    with CaptureQueriesContext(connection) as queries:
        comment = Comment.objects.create(request=mr, author=staff, body="Pump replaced")
    assert len(queries.captured_queries) == 1
    trail = AuditTrail.objects.get(entity_type="comment")
    assert trail.entity_id == str(comment.pk)
    assert trail.changes["request"] == {"old": None, "new": "MR953"}
    assert set(trail.field_changes.values_list("record_id", flat=True)) == {str(comment.pk)}
    assert comment.history.get().id == comment.pk


@pytest.mark.django_db(transaction=True)
def test_a_create_whose_audit_insert_fails_inserts_nothing(staff, monkeypatch):
    from audit.capture import writer

    real_build = writer.build_row

    def too_long(**kwargs):
        row = real_build(**kwargs)
        row.trail["action_type"] = "x" * 500  # refused by the database: the whole statement fails
        return row

    monkeypatch.setattr(writer, "build_row", too_long)
    with pytest.raises(DataError):
        MaintenanceRequest.objects.create(code="MR954", vessel="MV Tern", title="Bilge", requested_by=staff)
    assert not MaintenanceRequest.objects.filter(code="MR954").exists()
    assert not MaintenanceRequest.history.filter(code="MR954").exists()
