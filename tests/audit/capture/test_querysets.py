"""The bulk paths record row by row with the old values, in the change's
transaction, and keep simple-history consistent."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.context import audit_context
from audit.models import AuditTrail, UpdateHistory
from maintenance.models import InventoryItem, MaintenanceRequest

pytestmark = pytest.mark.django_db


@pytest.fixture
def requests_(staff):
    return [
        MaintenanceRequest.objects.create(code=f"MR{i:03d}", vessel="MV Tern", title=f"Job {i}", requested_by=staff)
        for i in range(1, 4)
    ]


def updates_of(code):
    return AuditTrail.objects.filter(entity_id=code).exclude(action_type="create")


def test_queryset_update_records_each_row_with_old_values(requests_, engineer):
    MaintenanceRequest.objects.filter(code="MR003").update(priority="high")
    with audit_context(actor=engineer, reason="Fleet-wide reprioritisation"):
        count = MaintenanceRequest.objects.filter(code__in=["MR001", "MR002", "MR003"]).update(
            priority="high", assigned_to=engineer)
    assert count == 3
    for code in ("MR001", "MR002"):
        trail = updates_of(code).get(action_type="update", user_id="PE001")
        assert trail.changes == {"priority": {"old": "medium", "new": "high"},
                                 "assigned_to": {"old": None, "new": "PE001"}}
        assert trail.change_reason == "Fleet-wide reprioritisation"
        assert set(trail.field_changes.values_list("field_name", flat=True)) == {"priority", "assigned_to"}
    # MR003 already had priority high: only the assignee changed
    trail = updates_of("MR003").get(user_id="PE001")
    assert trail.changes == {"assigned_to": {"old": None, "new": "PE001"}} and trail.action_type == "assign"
    history = MaintenanceRequest.history.filter(code="MR001").order_by("-history_id").first()
    assert (history.history_type, history.priority, history.history_user_id) == ("~", "high", engineer.pk)
    assert history.history_change_reason == "Fleet-wide reprioritisation"


def test_update_with_a_filter_on_the_changed_field_and_f_expressions(requests_):
    from django.db.models import F

    InventoryItem.objects.create(code="INV001", part_number="P-1", name="Filter", quantity_on_hand=5)
    InventoryItem.objects.filter(quantity_on_hand__lt=10).update(quantity_on_hand=F("quantity_on_hand") + 7)
    trail = updates_of("INV001").get()
    assert trail.changes == {"quantity_on_hand": {"old": 5, "new": 12}}
    assert trail.field_changes.get().new_value == "12"
    assert MaintenanceRequest.objects.filter(status="pending").update(status="pending") == 3
    assert not updates_of("MR001").exists()  # nothing changed, nothing written


def test_bulk_create_records_creates_and_history(staff):
    with audit_context(actor="ADM001", reason="Import"):
        items = InventoryItem.objects.bulk_create(
            [InventoryItem(code=f"INV{i:03d}", part_number=f"P-{i}", name=f"Part {i}") for i in range(1, 6)])
    assert all(i.pk for i in items)
    trails = AuditTrail.objects.filter(entity_type="inventory_item", action_type="create")
    assert sorted(trails.values_list("entity_id", flat=True)) == [f"INV{i:03d}" for i in range(1, 6)]
    assert set(trails.values_list("user_id", "change_reason")) == {("ADM001", "Import")}
    assert UpdateHistory.objects.filter(record_id="INV003", field_name="name").get().new_value == "Part 3"
    assert InventoryItem.history.filter(history_type="+").count() == 5


def test_bulk_update_reads_old_values_first(requests_, engineer):
    objs = list(MaintenanceRequest.objects.order_by("code"))
    objs[0].title, objs[1].title = "Renamed 1", "Renamed 2"
    objs[0].estimated_cost = "10.5"
    MaintenanceRequest.objects.bulk_update(objs, ["title", "estimated_cost"])
    first = updates_of("MR001").get()
    assert first.changes == {"title": {"old": "Job 1", "new": "Renamed 1"},
                             "estimated_cost": {"old": None, "new": "10.5"}}
    assert updates_of("MR002").get().changes == {"title": {"old": "Job 2", "new": "Renamed 2"}}
    assert not updates_of("MR003").exists()
    assert MaintenanceRequest.history.filter(history_type="~").count() == 2


def test_queryset_delete_records_each_row(requests_):
    with audit_context(actor="ADM001", reason="Duplicates"):
        deleted, _ = MaintenanceRequest.objects.filter(code__in=["MR001", "MR002"]).delete()
    assert deleted == 2
    trails = AuditTrail.objects.filter(action_type="delete")
    assert sorted(trails.values_list("entity_id", flat=True)) == ["MR001", "MR002"]
    assert trails.first().change_reason == "Duplicates"
    assert MaintenanceRequest.history.filter(history_type="-").count() == 2


def test_bulk_paths_are_atomic_with_their_audit_rows(requests_, monkeypatch):
    from audit.capture import writer

    def boom(*args, **kwargs):
        raise RuntimeError("audit down")

    monkeypatch.setattr(writer, "write_changes", boom)
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        MaintenanceRequest.objects.update(title="Gone")
    assert set(MaintenanceRequest.objects.values_list("title", flat=True)) == {"Job 1", "Job 2", "Job 3"}


def test_one_captured_update_issues_a_fixed_number_of_queries(requests_, is_postgres):
    mr = MaintenanceRequest.objects.get(code="MR001")
    mr.title = "Counted"
    with CaptureQueriesContext(connection) as queries:
        mr.save()
    sql = [q["sql"] for q in queries.captured_queries]
    # PostgreSQL: one statement, the UPDATE with the simple-history snapshot,
    # the trail row and the field rows as data-modifying CTEs (no BEGIN/COMMIT
    # needed in autocommit: one statement is atomic). SQLite: the UPDATE and
    # three INSERTs.
    assert len(sql) == (1 if is_postgres else 4), sql
    if is_postgres:
        assert sql[0].startswith('WITH u AS (UPDATE "maintenance_maintenancerequest"')
        assert all(t in sql[0] for t in ("historicalmaintenancerequest", "audit_trail", "update_history"))
    else:
        assert sql[0].startswith("UPDATE")
    assert not any(s.startswith("SELECT") for s in sql)


def test_one_captured_queryset_update_of_many_rows_is_a_fixed_number_of_queries(requests_, is_postgres):
    with CaptureQueriesContext(connection) as queries:
        MaintenanceRequest.objects.update(priority="urgent")
    # PostgreSQL: one statement locks the rows and reads their old values
    # (SELECT ... FOR UPDATE in a CTE) and updates exactly those rows
    # (UPDATE ... RETURNING the new values), then one statement for the
    # snapshots (INSERT ... SELECT from the table) and the audit rows.
    # SQLite: SELECT old, UPDATE ... RETURNING, the snapshots (INSERT ...
    # SELECT), the trail rows and the field rows (each one INSERT ... SELECT
    # FROM json_each of one JSON parameter)
    sql = [q["sql"] for q in queries.captured_queries]
    assert len(sql) == (2 if is_postgres else 5), sql
    if is_postgres:
        assert sql[0].startswith("WITH o(o0, o1) AS (SELECT") and " FOR UPDATE OF " in sql[0]
        assert 'u AS (UPDATE "maintenance_maintenancerequest"' in sql[0] and " RETURNING " in sql[0]
        assert sql[-1].startswith('WITH x0 AS (INSERT INTO "maintenance_historicalmaintenancerequest"')
        assert "audit_trail" in sql[-1] and "update_history" in sql[-1]
    else:
        assert sql[1].startswith("UPDATE") and " RETURNING " in sql[1]
        assert sql[2].startswith('INSERT INTO "maintenance_historicalmaintenancerequest"') and "json_each" in sql[2]
        assert sql[3].startswith('INSERT INTO "audit_trail"') and "json_each" in sql[3]
        assert sql[4].startswith('INSERT INTO "update_history"') and "json_each" in sql[4]
    assert AuditTrail.objects.filter(action_type="update").count() == 3
    assert set(MaintenanceRequest.history.filter(history_type="~").values_list("code", "priority")) == {
        ("MR001", "urgent"), ("MR002", "urgent"), ("MR003", "urgent")}


def test_a_queryset_update_of_more_rows_than_one_group_links_each_field_row_to_its_own_trail_row(staff, engineer):
    """1,201 rows changed alike travel as three groups of ids (500, 500, 1); each row still gets
    its own trail row, field rows and snapshot, each field row linked to its row's trail row."""
    with audit_context(enabled=False):
        MaintenanceRequest.objects.bulk_create(
            [MaintenanceRequest(code=f"MB{i:04d}", vessel="MV Tern", title=f"Job {i}", requested_by=staff)
             for i in range(1201)])
        MaintenanceRequest.objects.filter(code="MB0007").update(priority="low")  # one row changes otherwise
    with audit_context(actor=engineer, reason="Fleet-wide"):
        assert MaintenanceRequest.objects.filter(code__startswith="MB").update(priority="urgent") == 1201
    trails = AuditTrail.objects.filter(action_type="update", entity_id__startswith="MB")
    assert trails.count() == 1201
    fields = UpdateHistory.objects.filter(record_id__startswith="MB")
    assert fields.count() == 1201
    linked = {(record, trail_entity, old, new) for record, trail_entity, old, new in fields.values_list(
        "record_id", "audit__entity_id", "old_value", "new_value")}
    assert len(linked) == 1201 and all(record == trail_entity for record, trail_entity, _, _ in linked)
    assert {(old, new) for record, _, old, new in linked if record != "MB0007"} == {("medium", "urgent")}
    assert {(old, new) for record, _, old, new in linked if record == "MB0007"} == {("low", "urgent")}
    assert set(fields.values_list("user_id", "change_reason")) == {("PE001", "Fleet-wide")}
    assert MaintenanceRequest.history.filter(code__startswith="MB", history_type="~", priority="urgent").count() == 1201


def test_queryset_update_records_codes_decimals_dates_and_a_repeat_records_nothing(requests_, engineer):
    import datetime
    from decimal import Decimal

    qs = MaintenanceRequest.objects.filter(code__in=["MR001", "MR002"])
    values = {"assigned_to": engineer, "estimated_cost": Decimal("12.50"), "due_date": datetime.date(2025, 3, 1)}
    with audit_context(actor=engineer, reason="Plan"):
        assert qs.update(**values) == 2
    trail = AuditTrail.objects.get(entity_id="MR001", action_type="update")
    assert trail.changes == {"assigned_to": {"old": None, "new": "PE001"},
                             "due_date": {"old": None, "new": "2025-03-01"},
                             "estimated_cost": {"old": None, "new": "12.50"}}
    assert (trail.user_id, trail.change_reason) == ("PE001", "Plan")
    snapshot = MaintenanceRequest.history.filter(code="MR002").latest()
    assert (snapshot.history_type, snapshot.assigned_to_id, snapshot.estimated_cost, snapshot.history_user_id,
            snapshot.history_change_reason) == ("~", engineer.pk, Decimal("12.50"), engineer.pk, "Plan")
    assert qs.update(**values) == 2  # the same values again: no change, no row
    assert AuditTrail.objects.filter(action_type="update").count() == 2
    assert not updates_of("MR003").exists()


def test_bulk_rows_are_stored_as_a_single_save_stores_them(requests_, engineer):
    """The bulk paths send their rows as one JSON parameter (PostgreSQL and
    SQLite 3.35+): the stored timestamp, IP, request id, JSON and text read
    back, filter and order exactly like the rows of a single save."""
    from django.utils import timezone

    before = timezone.now()
    with audit_context(actor=engineer, reason="Refit: \"dry dock\", 'B'", ip_address="10.1.2.3",
                       request_id="req-bulk-1"):
        MaintenanceRequest.objects.filter(code__in=["MR001", "MR002"]).update(title="Re-fit ✓ 50%")
        single = MaintenanceRequest.objects.get(code="MR003")
        single.title = "Re-fit ✓ 50%"
        single.save()
    after = timezone.now()
    rows = AuditTrail.objects.filter(action_type="update", timestamp__gte=before, timestamp__lte=after)
    assert sorted(rows.values_list("entity_id", flat=True)) == ["MR001", "MR002", "MR003"]
    bulk, one = rows.get(entity_id="MR001"), rows.get(entity_id="MR003")
    for row in (bulk, one):
        assert before <= row.timestamp <= after and row.timestamp.tzinfo is not None
        assert (str(row.ip_address), row.request_id, row.user_id) == ("10.1.2.3", "req-bulk-1", "PE001")
        assert row.change_reason == "Refit: \"dry dock\", 'B'"
        assert row.changes == {"title": {"old": f"Job {row.entity_id[-1]}", "new": "Re-fit ✓ 50%"}}
        field = row.field_changes.get()
        assert (field.timestamp, field.record_id, field.old_value, field.new_value) == (
            row.timestamp, row.entity_id, f"Job {row.entity_id[-1]}", "Re-fit ✓ 50%")
    assert AuditTrail.objects.filter(ip_address="10.1.2.3", changes__title__new="Re-fit ✓ 50%").count() == 3
    assert list(UpdateHistory.objects.filter(timestamp__gte=before).order_by("timestamp", "id")
                .values_list("record_id", flat=True))[-1] == "MR003"


def test_rows_that_changed_alike_each_get_their_own_trail_and_field_rows(staff, engineer, other_staff, is_postgres):
    """``QuerySet.update()`` builds the change of rows that went from the same old values to the
    same new ones once (in chunks of 500) and writes it once per row: 1,100 rows in three groups
    (two of them larger than a chunk) give 1,100 trail rows, each with its own entity id, old values
    and field rows pointing back to it; on PostgreSQL one audit statement for them all."""
    from django.db.models import F

    with audit_context(enabled=False):
        MaintenanceRequest.objects.bulk_create(
            [MaintenanceRequest(code=f"MR{i:04d}", vessel="MV Tern", title="Hull survey", requested_by=staff,
                                priority="low" if i % 11 == 0 else "medium",
                                assigned_to=other_staff if i % 11 == 0 else None, estimated_cost=i % 3)
             for i in range(1, 1101)])
    with audit_context(actor=engineer, reason="Fleet-wide"), CaptureQueriesContext(connection) as queries:
        count = MaintenanceRequest.objects.filter(code__startswith="MR").update(
            priority="high", assigned_to=engineer, estimated_cost=F("estimated_cost") + 1)
    assert count == 1100
    if is_postgres:  # the update, the codes of the assignees (one query for the field), the audit statement
        assert len(queries.captured_queries) == 3, [q["sql"][:90] for q in queries.captured_queries]
    trails = {t.entity_id: t for t in AuditTrail.objects.filter(user_id="PE001").prefetch_related("field_changes")}
    assert len(trails) == 1100
    for i in (1, 2, 3, 11, 22, 500, 501, 999, 1000, 1001, 1100):
        trail = trails[f"MR{i:04d}"]
        old_priority, old_assignee = ("low", "ST002") if i % 11 == 0 else ("medium", None)
        cost = i % 3
        assert trail.changes == {"priority": {"old": old_priority, "new": "high"},
                                 "assigned_to": {"old": old_assignee, "new": "PE001"},
                                 "estimated_cost": {"old": f"{cost}.00", "new": f"{cost + 1}.00"}}, i
        assert trail.displays == {"assigned_to": {"old": "ST002 · ST002 Person" if old_assignee else None,
                                                  "new": "PE001 · PE001 Person"}}
        fields = {f.field_name: (f.record_id, f.old_value, f.new_value, f.user_id, f.change_reason)
                  for f in trail.field_changes.all()}
        assert fields == {"priority": (trail.entity_id, old_priority, "high", "PE001", "Fleet-wide"),
                          "assigned_to": (trail.entity_id, old_assignee, "PE001", "PE001", "Fleet-wide"),
                          "estimated_cost": (trail.entity_id, f"{cost}.00", f"{cost + 1}.00", "PE001", "Fleet-wide")}
    assert UpdateHistory.objects.filter(record_id__startswith="MR").count() == 3300
    assert MaintenanceRequest.history.filter(history_type="~", priority="high").count() == 1100
