"""PostgreSQL: the capture's own statements run as server-side prepared
statements from their second use on a connection (``AUDIT_PREPARED_STATEMENTS``,
on by default), so the server parses and plans a captured save() once per
connection.

Also (PostgreSQL): concurrency, NUL bytes and oversized values through the one writer.
"""

import threading

import pytest
from django.db import DataError, close_old_connections, connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings

from audit.context import audit_context
from audit.models import AuditTrail, UpdateHistory
from maintenance.models import InventoryItem, MaintenanceRequest

pytestmark = [pytest.mark.postgres]


def prepared(prefix: str) -> list[tuple[int, int]]:
    """(generic_plans + custom_plans, parameter count) of this connection's
    prepared statements whose text starts with ``prefix``."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT generic_plans + custom_plans, cardinality(parameter_types) "
                       "FROM pg_prepared_statements WHERE statement LIKE %s", [prefix + "%"])
        return cursor.fetchall()


def fresh_connection() -> None:
    connection.close()  # a new session: no statement prepared yet
    connection.ensure_connection()


@pytest.mark.django_db(transaction=True)
def test_a_captured_update_is_prepared_on_its_second_use_and_then_reused(staff):
    fresh_connection()
    mr = MaintenanceRequest.objects.create(code="MR960", vessel="MV Tern", title="Bilge", requested_by=staff)
    seen = []
    for title in ("Bilge pump", "Bilge pump and strainer", "Bilge pump, strainer, hoses"):
        mr.title = title
        with CaptureQueriesContext(connection) as queries:
            mr.save()
        assert len(queries.captured_queries) == 1
        sql = queries.captured_queries[0]["sql"]  # the query log still shows the statement
        assert sql.startswith("WITH u AS (UPDATE") and '"audit_trail"' in sql
        seen.append(prepared("WITH u AS (UPDATE"))
    # the first use runs unprepared (a connection used once pays no PREPARE),
    # the second prepares it, the third reuses it
    assert seen[0] == []
    [(executions, parameters)] = seen[2]
    # one statement, its values as parameters: the UPDATE's own, the snapshot's, and the trail and
    # field rows as one JSON parameter each (the form every capture statement uses)
    assert executions == 2 and parameters > 15
    assert "jsonb_array_elements(" in sql
    assert list(AuditTrail.objects.filter(entity_id="MR960", action_type="update").order_by("id")
                .values_list("new_value", flat=True)) == [
        '{"title": "Bilge pump"}', '{"title": "Bilge pump and strainer"}', '{"title": "Bilge pump, strainer, hoses"}']


@pytest.mark.django_db(transaction=True)
def test_switched_off_nothing_is_prepared_and_capture_is_the_same(staff):
    fresh_connection()
    with override_settings(AUDIT_PREPARED_STATEMENTS=False):
        mr = MaintenanceRequest.objects.create(code="MR961", vessel="MV Tern", title="Bilge", requested_by=staff)
        mr.title = "Bilge pump"
        mr.save()
        with CaptureQueriesContext(connection) as queries:
            mr.title = "Bilge pump and strainer"
            mr.save()
    assert "'Bilge pump and strainer'" in queries.captured_queries[0]["sql"]  # bound on the client
    assert prepared("WITH") == []
    assert list(AuditTrail.objects.filter(entity_id="MR961").order_by("id").values_list("action_type", flat=True)) == [
        "create", "update", "update"]


@pytest.mark.django_db(transaction=True)
def test_a_statement_prepared_in_a_rolled_back_transaction_runs_afterwards(staff):
    fresh_connection()
    mr = MaintenanceRequest.objects.create(code="MR962", vessel="MV Tern", title="Bilge", requested_by=staff)
    with pytest.raises(RuntimeError), transaction.atomic():
        for title in ("Rolled back", "Rolled back again"):
            mr.title = title
            mr.save()  # prepared here, inside the transaction that rolls back
        raise RuntimeError("abort")
    with pytest.raises(DataError), transaction.atomic():
        mr.title = "x" * 500  # too long for the column: the prepared statement fails
        mr.save()
    mr.title = "Bilge pump"
    mr.save()
    trail = AuditTrail.objects.filter(entity_id="MR962").order_by("id")
    assert [t.action_type for t in trail] == ["create", "update"]  # neither failed attempt left a row
    assert trail.last().new_value == '{"title": "Bilge pump"}'
    assert MaintenanceRequest.objects.get(pk=mr.pk).title == "Bilge pump"
    assert [t for t in MaintenanceRequest.history.filter(id=mr.pk).values_list("title", flat=True)
            if t != "Bilge"] == ["Bilge pump"]


@pytest.mark.django_db(transaction=True)
def test_a_project_binding_on_the_server_keeps_its_own_prepare_threshold(staff):
    """``server_side_binding`` with Django's default ``prepare_threshold``
    (None: never prepare, as behind a pooler) is left as it is."""
    options = connection.settings_dict.setdefault("OPTIONS", {})
    options["server_side_binding"] = True
    try:
        fresh_connection()
        assert connection.connection.prepare_threshold is None
        mr = MaintenanceRequest.objects.create(code="MR963", vessel="MV Tern", title="Bilge", requested_by=staff)
        for title in ("Bilge pump", "Bilge pump and strainer", "Bilge pump, strainer, hoses"):
            mr.title = title
            mr.save()
        assert prepared("WITH") == [] and connection.connection.prepare_threshold is None
        assert AuditTrail.objects.filter(entity_id="MR963", action_type="update").count() == 3
    finally:
        options.pop("server_side_binding")
        fresh_connection()


# -- PostgreSQL-only: concurrency, NUL bytes and oversized values.



@pytest.mark.django_db
def test_nul_bytes_and_a_100_kb_value_do_not_break_the_change(staff):
    from maintenance.models import MaintenanceRequest

    with audit_context(actor="ST001", reason="evil\x00reason " + "r" * 20_000):
        mr = MaintenanceRequest.objects.create(code="MR001", vessel="MV", title="t\t", requested_by=staff)
    # NUL in the entity itself is PostgreSQL's to refuse; NUL in the context never breaks the audit rows
    assert AuditTrail.objects.get(entity_id="MR001").change_reason.startswith("evilreason")
    with audit_context(actor="ST001", reason="x\x00y", user_agent="agent\x00"):
        mr.vessel = "MV Tern"
        mr.description = "D" * 100_000
        mr.save()
    assert len(MaintenanceRequest.objects.get(pk=mr.pk).description) == 100_000
    row = UpdateHistory.objects.get(record_id="MR001", field_name="description", audit__action_type="update")
    assert len(row.new_value) <= 10_000 and row.change_reason == "xy"
    trail = AuditTrail.objects.get(entity_id="MR001", action_type="update")
    assert len(trail.new_value) <= 10_000 and len(trail.changes["description"]["new"]) <= 10_000


@pytest.mark.django_db(transaction=True)
def test_eight_threads_of_250_updates_give_exactly_2000_trail_rows():
    items = [InventoryItem.objects.create(code=f"INV{i:03d}", part_number=f"P-{i}", name="x") for i in range(8)]
    before = AuditTrail.objects.count()
    errors = []

    def worker(n):
        try:
            item = InventoryItem.objects.get(pk=items[n].pk)
            with audit_context(actor=f"T{n}"):
                for i in range(250):
                    item.quantity_on_hand = i + 1
                    item.save()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    close_old_connections()
    assert errors == []
    updates = AuditTrail.objects.filter(action_type="update")
    assert AuditTrail.objects.count() - before == updates.count() == 2000
    for n in range(8):
        assert updates.filter(user_id=f"T{n}").count() == 250
    history = UpdateHistory.objects.filter(audit__action_type="update")
    assert history.count() == 2000
    assert history.values("audit_id").distinct().count() == 2000
    assert not UpdateHistory.objects.filter(audit__isnull=True).exists()
    values = sorted(int(v) for v in history.filter(record_id="INV003").values_list("new_value", flat=True))
    assert values == list(range(1, 251))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("general", [False, True], ids=["one-statement path", "general path"])
def test_a_row_that_starts_to_match_during_a_queryset_update_is_not_changed_without_its_audit_row(
        staff, general, monkeypatch):
    """Another transaction commits a matching row right after the update has
    read (and locked) the rows it changes: that row is left alone, and every
    row that did change has exactly one audit row with its old value. The
    general path (models whose snapshots simple-history writes itself, or
    multi-table inheritance) reads, then updates by primary key."""
    from audit.capture.querysets import AuditedQuerySet
    from maintenance.models import MaintenanceRequest

    if general:
        monkeypatch.setattr(AuditedQuerySet, "_update_returning", lambda self, *args: None)

    for i in range(1, 4):
        MaintenanceRequest.objects.create(code=f"MR00{i}", vessel="MV Tern", title=f"Job {i}", requested_by=staff)
    committed = []

    def create_matching_row():
        MaintenanceRequest.objects.create(code="MR004", vessel="MV Tern", title="Job 4", requested_by_id=staff.pk)
        connection.close()

    def commit_in_between(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if " FOR UPDATE" in sql and not committed:
            committed.append(True)
            thread = threading.Thread(target=create_matching_row)
            thread.start()
            thread.join()
        return result

    with audit_context(actor="ST001", reason="Reprioritise"), connection.execute_wrapper(commit_in_between):
        count = MaintenanceRequest.objects.filter(priority="medium").update(priority="high")
    assert committed and count == 3
    assert MaintenanceRequest.objects.get(code="MR004").priority == "medium"
    updates = AuditTrail.objects.filter(action_type="update").order_by("entity_id")
    assert [(t.entity_id, t.changes) for t in updates] == [
        (f"MR00{i}", {"priority": {"old": "medium", "new": "high"}}) for i in range(1, 4)]
    assert set(MaintenanceRequest.objects.filter(priority="high").values_list("code", flat=True)) == {
        "MR001", "MR002", "MR003"}
