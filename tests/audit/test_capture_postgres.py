"""PostgreSQL-only: concurrency, NUL bytes and oversized values."""

import threading

import pytest
from django.db import close_old_connections, connection

from audit.context import audit_context
from audit.models import AuditTrail, UpdateHistory
from maintenance.models import InventoryItem

pytestmark = pytest.mark.postgres


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
