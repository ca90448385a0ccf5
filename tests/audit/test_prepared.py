"""PostgreSQL: the capture's own statements run as server-side prepared
statements from their second use on a connection (``AUDIT_PREPARED_STATEMENTS``,
on by default), so the server parses and plans a captured save() once per
connection."""

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings

from audit.models import AuditTrail
from maintenance.models import MaintenanceRequest

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
