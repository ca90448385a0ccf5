"""The simple-history rows of tracked models are written by the capture path
(with the audit rows, one statement on PostgreSQL): they must be exactly the
rows simple-history itself would have written.

The reference is simple-history's own ``create_historical_record``, which the
capture path hands the row to whenever a receiver listens to
``pre_create_historical_record`` for the history model: each scenario runs
once on each path and the rows are compared column by column (all but
``history_id`` and ``history_date``)."""

import datetime
import decimal
import json
import warnings

import pytest
from django.db.models import signals
from django.test.utils import override_settings
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record

from accounts.models import User
from audit.context import audit_context
from audit.models import AuditTrail
from emergencies.models import Emergency
from maintenance.models import InventoryItem, MaintenanceRequest

pytestmark = pytest.mark.django_db


def history_rows(model, **filters):
    history = model.history.model
    names = [f.attname for f in history._meta.concrete_fields if f.attname not in ("history_id", "history_date")]
    return [tuple(row) for row in history.objects.filter(**filters).order_by("history_id").values_list(*names)]


def _noop(**kwargs):
    pass


def on_both_paths(model, scenario):
    """Run ``scenario(tag)`` on our path and on simple-history's; return the
    history rows of each, with the tag (part of codes and values) removed."""
    ours = scenario("A")
    pre_create_historical_record.connect(_noop, sender=model.history.model, dispatch_uid="test.reference")
    try:
        reference = scenario("B")
    finally:
        pre_create_historical_record.disconnect(dispatch_uid="test.reference", sender=model.history.model)
    return ours, reference


def normalized(rows, pk_map):
    """Rows with the scenario's own pk (the first column), tags and times replaced, so both runs compare."""
    def one(v):
        if isinstance(v, str):
            return v.replace("A", "?").replace("B", "?")
        if isinstance(v, datetime.datetime):  # created_at, updated_at, date_joined: the time of each run
            return "<time>"
        return v

    return [(pk_map.get(row[0], row[0]), *(one(v) for v in row[1:])) for row in rows]


def test_simple_history_post_save_and_post_delete_are_taken_over_for_tracked_models():
    for model in (MaintenanceRequest, InventoryItem, Emergency, User):
        for signal in (signals.post_save, signals.post_delete):
            receivers = signal._live_receivers(model)[0]
            assert not any(isinstance(getattr(r, "__self__", None), HistoricalRecords) for r in receivers), model
        # simple-history's pre_delete (loads deferred fields) stays
        assert any(isinstance(getattr(r, "__self__", None), HistoricalRecords)
                   for r in signals.pre_delete._live_receivers(model)[0])


def test_request_rows_match_simple_history_on_create_update_reason_revert_and_delete(staff, engineer):
    def scenario(tag):
        with audit_context(actor=engineer, reason=f"Survey {tag}"):
            mr = MaintenanceRequest.objects.create(
                code=f"MR{tag}1", vessel="MV Tern", title="Bilge", requested_by=staff, due_date=datetime.date(2025, 3, 1),
                estimated_cost=decimal.Decimal("12.50"))
            mr.title = "Bilge pump"
            mr.assigned_to = engineer
            mr.save()
            mr.save()  # nothing changed: simple-history still writes a "~" row
        with audit_context(actor=staff):  # no reason: NULL
            mr.priority = "high"
            mr.save(update_fields=["priority"])
        mr._change_reason = "explicit reason"
        mr._history_user = engineer
        mr.description = "from the instance's own hints"
        mr.save()
        del mr._change_reason, mr._history_user
        pk = mr.pk
        mr.delete()
        return pk, history_rows(MaintenanceRequest, id=pk)

    (pk_a, ours), (pk_b, reference) = on_both_paths(MaintenanceRequest, scenario)
    assert len(ours) == 6
    assert normalized(ours, {pk_a: "pk"}) == normalized(reference, {pk_b: "pk"})
    types = [h.history_type for h in MaintenanceRequest.history.filter(id=pk_a).order_by("history_id")]
    assert types == ["+", "~", "~", "~", "~", "-"]
    reasons = list(MaintenanceRequest.history.filter(id=pk_a).order_by("history_id")
                   .values_list("history_change_reason", "history_user_id"))
    assert reasons[0] == ("Survey A", engineer.pk) and reasons[3] == (None, staff.pk)
    assert reasons[4] == ("explicit reason", engineer.pk)


def test_user_rows_leave_out_excluded_fields_like_simple_history(admin_user):
    def scenario(tag):
        with audit_context(actor=admin_user, reason="Onboarding"):
            user = User.objects.create_user(user_id=f"ST{tag}9", password="Secret-Pass-2025!", full_name="New")
            user.set_password("Other-Pass-2025!")
            user.failed_login_count = 3
            user.full_name = "New Name"
            user.save()
        return user.pk, history_rows(User, id=user.pk)

    (pk_a, ours), (pk_b, reference) = on_both_paths(User, scenario)
    assert len(ours) == 2
    columns = {f.attname for f in User.history.model._meta.concrete_fields}
    assert not {"password", "last_login", "failed_login_count"} & columns
    assert normalized(ours, {pk_a: "pk"}) == normalized(reference, {pk_b: "pk"})


def test_skip_history_when_saving_and_the_setting_are_honoured_while_audit_rows_are_still_written(staff):
    mr = MaintenanceRequest.objects.create(code="MR900", vessel="MV Tern", title="Bilge", requested_by=staff)
    mr.skip_history_when_saving = True
    mr.title = "Skipped"
    mr.save()
    del mr.skip_history_when_saving
    with override_settings(SIMPLE_HISTORY_ENABLED=False):
        mr.title = "Setting off"
        mr.save()
    assert MaintenanceRequest.history.filter(id=mr.pk).count() == 1  # the create only
    assert AuditTrail.objects.filter(entity_id="MR900", action_type="update").count() == 2


def test_a_rolled_back_save_leaves_no_history_row(staff):
    from django.db import transaction

    mr = MaintenanceRequest.objects.create(code="MR901", vessel="MV Tern", title="Bilge", requested_by=staff)
    with pytest.raises(RuntimeError), transaction.atomic():
        mr.title = "Rolled back"
        mr.save()
        raise RuntimeError
    assert MaintenanceRequest.history.filter(id=mr.pk).count() == 1


def test_capture_off_writes_no_snapshot_on_save_but_keeps_the_delete_row_as_before(staff):
    with audit_context(enabled=False):
        mr = MaintenanceRequest.objects.create(code="MR902", vessel="MV Tern", title="Bilge", requested_by=staff)
        mr.title = "Quiet"
        mr.save()
        pk = mr.pk
        mr.delete()
    assert list(MaintenanceRequest.history.filter(id=pk).values_list("history_type", flat=True)) == ["-"]
    assert not AuditTrail.objects.filter(entity_id="MR902").exists()


def test_as_of_and_revert_work_on_rows_written_by_the_capture_path(staff):
    mr = MaintenanceRequest.objects.create(code="MR903", vessel="MV Tern", title="First", requested_by=staff)
    first = mr.history.latest()
    mr.title = "Second"
    mr.save()
    assert MaintenanceRequest.history.as_of(first.history_date).get(id=mr.pk).title == "First"
    first.instance.save()  # simple-history's revert
    mr.refresh_from_db()
    assert mr.title == "First"
    assert mr.history.count() == 3
    diff = mr.history.latest().diff_against(mr.history.earliest())
    assert diff.changes == []


def test_a_delete_snapshot_keeps_every_value_exactly_times_to_the_microsecond(staff, engineer):
    # the delete's snapshot rows travel as JSON on PostgreSQL (jsonb_populate_recordset): nothing may be lost
    approved = datetime.datetime(2026, 3, 1, 8, 15, 30, 123456, tzinfo=datetime.UTC)
    mr = MaintenanceRequest.objects.create(
        code="MR9JS", vessel="MV Tern", title="Winch 'brake' \"pads\" \\ ünïcode", requested_by=staff,
        assigned_to=engineer, approved_by=engineer, approved_at=approved, due_date=datetime.date(2026, 4, 30),
        estimated_cost=decimal.Decimal("1234567.05"), description="", rejection_reason="line one\nline two")
    pk = mr.pk
    mr.delete()
    history = MaintenanceRequest.history.model
    names = [f.attname for f in MaintenanceRequest._meta.concrete_fields]
    created, deleted = (history.objects.filter(id=pk, history_type=t).values(*names).get() for t in ("+", "-"))
    assert deleted == created
    assert deleted["approved_at"] == approved and deleted["estimated_cost"] == decimal.Decimal("1234567.05")
    assert deleted["title"] == "Winch 'brake' \"pads\" \\ ünïcode" and deleted["assigned_to_id"] == engineer.pk


@pytest.mark.parametrize("model", [MaintenanceRequest, InventoryItem, Emergency, User])
def test_snapshot_values_are_prepared_as_the_historical_fields_prepare_them(model, staff):
    """``history.prepared`` for JSON rows passes a value on as it is where the field would return it unchanged
    (text for a text field, an int for an integer or a key, None) and asks the field otherwise:
    the same parameters as ``get_db_prep_save`` for every field, with values of the right type,
    of other types (an int for a text field, text and a bool for an integer) and None."""
    from django.db import connection

    from audit.capture import history

    spec = history.spec_for(model)
    samples = [None, "5", 7, True, "", "Bilge ✓", decimal.Decimal("1.50"),
               datetime.datetime(2026, 3, 1, 8, 15, 30, 123456, tzinfo=datetime.UTC), datetime.date(2026, 4, 30)]
    for value in samples:
        values = []
        for field, _ in spec.fields:
            try:
                with warnings.catch_warnings():  # a date for a date-time field warns: not a value it takes
                    warnings.simplefilter("error")
                    field.get_db_prep_save(value, connection)
            except Exception:  # noqa: BLE001 - a value this field cannot take: give it None instead
                value_for_field = None
            else:
                value_for_field = value
            values.append(value_for_field)
        item = {"spec": spec, "values": values, "date": timezone_now(), "type": "-", "user": staff.pk, "reason": ""}
        expected = [f.get_db_prep_save(v, connection) for (f, _), v in zip(spec.fields, values, strict=True)]
        got = history.prepared(item, connection, for_json=True)[:len(values)]
        # on PostgreSQL the fields wrap integers for binding (psycopg's Int8, an int): the same in JSON
        kinds = [int if isinstance(v, int) and not isinstance(v, bool) else type(v) for v in (*got, *expected)]
        assert got == expected and kinds[:len(got)] == kinds[len(got):], value
        assert json.dumps(got, default=str) == json.dumps(expected, default=str)


def timezone_now():
    from django.utils import timezone

    return timezone.now()


def test_a_snapshot_table_indexes_only_what_its_reads_use():
    """Every tracked model's snapshot table is indexed on its own key, the object's id, the time
    and the acting user only: not on its copies of the model's code and foreign keys, which no
    read of it uses and which cost an index entry per snapshot row."""
    from django.db import connection

    from audit.capture import registry

    wanted = {"id", "history_date", "history_user_id"}
    seen = 0
    with connection.cursor() as cursor:
        for config in registry.tracked_models():
            manager = getattr(config.model._meta, "simple_history_manager_attribute", None)
            if manager is None:
                continue
            table = getattr(config.model, manager).model._meta.db_table
            constraints = connection.introspection.get_constraints(cursor, table)
            indexed = {tuple(c["columns"]) for c in constraints.values()
                       if (c["index"] or c["unique"]) and not c["primary_key"]}
            assert indexed == {(column,) for column in wanted}, (table, indexed)
            seen += 1
    assert seen == 7  # users, requests, comments, attachments, items, adjustments, emergencies
