"""The engine builds each change's rows in one place: a changed foreign key
reads as the related entity's code, looked up by the capture statement
itself on PostgreSQL; a delete and its cascade are written together.

Also (PostgreSQL): a captured save() update or create is one statement (the
UPDATE or INSERT with its snapshot and audit rows as data-modifying CTEs).
"""

import json

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.context import audit_context
from audit.models import AuditTrail, UpdateHistory
from maintenance.models import Attachment, Comment, MaintenanceRequest

pytestmark = pytest.mark.django_db


def _request(staff, code="MR700", **fields):
    return MaintenanceRequest.objects.create(code=code, vessel="MV Tern", title="Bilge", requested_by=staff, **fields)


def _field_rows(entity_id, action=None):
    trails = AuditTrail.objects.filter(entity_id=entity_id).exclude(action_type="create")
    trail = (trails.filter(action_type=action) if action else trails).latest("id")
    return dict((name, (old, new)) for name, old, new in
                trail.field_changes.values_list("field_name", "old_value", "new_value"))


def test_a_reassignment_records_both_assignees_by_code_whatever_is_cached(staff, engineer, other_staff):
    mr = _request(staff, assigned_to=engineer)
    mr = MaintenanceRequest.objects.get(pk=mr.pk)  # nothing cached: the old assignee is only a key
    mr.assigned_to_id = other_staff.pk  # the new one too
    mr.title = "Bilge pump"
    mr.save()
    assert _field_rows("MR700")["assigned_to"] == ("PE001", "ST002")
    trail = AuditTrail.objects.filter(entity_id="MR700").exclude(action_type="create").latest("id")
    assert trail.changes["assigned_to"] == {"old": "PE001", "new": "ST002"}
    assert json.loads(trail.old_value)["assigned_to"] == "PE001"
    assert json.loads(trail.new_value)["assigned_to"] == "ST002"


@pytest.mark.postgres
def test_the_realistic_edit_is_one_statement_with_no_select_of_the_old_assignee(staff, engineer, other_staff):
    mr = _request(staff, code="MR701", assigned_to=engineer)
    mr = MaintenanceRequest.objects.get(pk=mr.pk)
    with audit_context(actor=engineer, reason="Reassigned"), CaptureQueriesContext(connection) as queries:
        mr.status = "approved"
        mr.assigned_to = other_staff
        mr.title = "Bilge pump"
        mr.save()
    assert len(queries.captured_queries) == 1
    assert queries.captured_queries[0]["sql"].startswith("WITH u AS (UPDATE")
    rows = _field_rows("MR701")
    assert rows["assigned_to"] == ("PE001", "ST002") and rows["status"] == ("pending", "approved")
    # the old assignee's name read by the same statement as its code, the new one's from the instance
    trail = AuditTrail.objects.filter(entity_id="MR701").exclude(action_type="create").latest("id")
    assert trail.displays == {"assigned_to": {"old": "PE001 · PE001 Person", "new": "ST002 · ST002 Person"}}


@pytest.mark.postgres
def test_a_related_row_gone_meanwhile_is_recorded_by_its_key(staff, engineer, make_user):
    temp = make_user("ST009", role="staff")
    mr = _request(staff, code="MR702", assigned_to=temp)
    mr = MaintenanceRequest.objects.get(pk=mr.pk)
    key = temp.pk
    with audit_context(enabled=False):  # the old assignee's account goes while mr is in memory
        MaintenanceRequest.objects.filter(pk=mr.pk).update(assigned_to=None)
        temp.delete()
    mr.assigned_to = engineer
    mr.save()  # the statement cannot find the old code: the key, never NULL
    assert _field_rows("MR702", action="assign")["assigned_to"] == (str(key), "PE001")
    trail = AuditTrail.objects.filter(entity_id="MR702", action_type="assign").get()
    assert trail.displays == {"assigned_to": {"old": "", "new": "PE001 · PE001 Person"}}  # no name for it


def _with_children(staff, code):
    mr = _request(staff, code=code)
    Comment.objects.create(request=mr, author=staff, body="first")
    Comment.objects.create(request=mr, author=staff, body="second")
    Attachment.objects.create(request=mr, uploaded_by=staff, file="attachments/x.pdf", original_name="x.pdf",
                              content_type="application/pdf", size=10)
    return MaintenanceRequest.objects.get(pk=mr.pk)


def test_a_delete_records_the_request_and_its_cascade_with_codes(staff):
    mr = _with_children(staff, "MR703")
    comment_ids = [str(pk) for pk in mr.comments.values_list("pk", flat=True)]
    request_pk = mr.pk
    mr.delete()
    trails = AuditTrail.objects.filter(action_type="delete")
    assert trails.filter(entity_type="maintenance_request", entity_id="MR703").count() == 1
    for pk in comment_ids:
        trail = trails.get(entity_type="comment", entity_id=pk)
        assert trail.changes["request"] == {"old": "MR703", "new": None}  # its deleted parent, by code
        assert trail.changes["author"] == {"old": "ST001", "new": None}
    assert trails.filter(entity_type="attachment").count() == 1
    assert UpdateHistory.objects.filter(record_id="MR703", field_name="title", old_value="Bilge").exists()
    assert MaintenanceRequest.history.filter(code="MR703", history_type="-").count() == 1
    assert Comment.history.filter(history_type="-", request_id=request_pk).count() == 2


@pytest.mark.postgres
def test_a_delete_with_its_cascade_is_its_two_selects_and_one_statement(staff):
    mr = _with_children(staff, "MR704")
    with CaptureQueriesContext(connection) as queries:
        assert mr.delete() == (4, {"maintenance.Comment": 2, "maintenance.Attachment": 1,
                                   "maintenance.MaintenanceRequest": 1})
    sqls = [q["sql"] for q in queries.captured_queries]
    # the cascade's SELECTs of the comments and attachments, then the three DELETEs with the
    # audit and snapshot rows of all four in one statement: no SELECT of a related code
    assert len(sqls) == 3
    assert all(sql.startswith("SELECT") for sql in sqls[:2])
    statement = sqls[2]
    assert statement.startswith("WITH d0 AS (DELETE FROM")
    assert statement.count("DELETE FROM") == 3 and '"audit_trail"' in statement
    # the snapshots of each history table as one JSON parameter, not a parameter per column and row
    assert statement.count("jsonb_populate_recordset") == 3  # requests, comments, attachments
    assert AuditTrail.objects.filter(action_type="delete").count() == 4
    assert not MaintenanceRequest.objects.filter(code="MR704").exists()
    assert not Comment.objects.filter(request_id=mr.pk).exists()


@pytest.mark.postgres
def test_queryset_delete_is_its_selects_and_one_statement(staff):
    _with_children(staff, "MR708")
    _with_children(staff, "MR709")
    with CaptureQueriesContext(connection) as queries:
        deleted, per_model = MaintenanceRequest.objects.filter(code__in=["MR708", "MR709"]).delete()
    assert (deleted, per_model["maintenance.Comment"]) == (8, 4)
    # the requests, their comments, their attachments, then one statement
    assert len(queries.captured_queries) == 4
    assert queries.captured_queries[3]["sql"].startswith("WITH d0 AS (DELETE FROM")
    assert AuditTrail.objects.filter(action_type="delete").count() == 8


def test_a_queryset_delete_that_matches_nothing_deletes_and_records_nothing(staff):
    _with_children(staff, "MR713")
    assert MaintenanceRequest.objects.filter(code="MR999").delete() == (0, {})
    assert not AuditTrail.objects.filter(action_type="delete").exists()
    assert MaintenanceRequest.objects.filter(code="MR713").exists()


def test_a_queryset_delete_whose_audit_rows_take_two_statements_returns_django_s_counts(staff):
    """900 requests: on PostgreSQL their audit rows are more than one statement holds (the
    first one with the DELETE); the delete still answers Django's counts (it raised a
    ValueError when the second statement's trail ids were added to them) and records every row."""
    with audit_context(enabled=False):
        MaintenanceRequest.objects.bulk_create([
            MaintenanceRequest(code=f"MD{i:04d}", vessel="MV Tern", title=f"Job {i}", requested_by=staff)
            for i in range(900)])
    with CaptureQueriesContext(connection) as queries:
        assert MaintenanceRequest.objects.filter(code__startswith="MD").delete() == (
            900, {"maintenance.MaintenanceRequest": 900})
    if connection.vendor == "postgresql":
        statements = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("WITH")]
        assert len(statements) == 2 and statements[0].startswith("WITH d0 AS (DELETE FROM")
        assert "DELETE FROM" not in statements[1]
    assert AuditTrail.objects.filter(action_type="delete", entity_id__startswith="MD").count() == 900
    assert UpdateHistory.objects.filter(record_id__startswith="MD", field_name="title").count() == 900
    assert MaintenanceRequest.history.filter(code__startswith="MD", history_type="-").count() == 900
    assert not MaintenanceRequest.objects.filter(code__startswith="MD").exists()


def test_deleting_a_row_someone_else_deleted_first_records_nothing_more(staff):
    """A stale instance (two people deleting the same request, or a shell holding it): Django's
    delete answers (0, {}); no second delete row, no second snapshot may be written for it. The
    rows are written only for the keys the DELETEs returned (PostgreSQL: in the same statement;
    SQLite: Django's DELETE per model with RETURNING, then post_delete records nothing)."""
    mr = _request(staff, "MR714")
    stale = MaintenanceRequest.objects.get(pk=mr.pk)
    assert MaintenanceRequest.objects.filter(pk=mr.pk).delete() == (1, {"maintenance.MaintenanceRequest": 1})
    assert stale.delete() == (0, {})
    assert list(AuditTrail.objects.filter(entity_id="MR714").order_by("id").values_list(
        "action_type", flat=True)) == ["create", "delete"]
    assert list(MaintenanceRequest.history.filter(id=mr.pk).order_by("history_id").values_list(
        "history_type", flat=True)) == ["+", "-"]


@pytest.mark.postgres
def test_a_delete_records_only_the_rows_its_deletes_removed_in_every_statement(staff):
    """Two of 900 collected requests vanish before the DELETE (a plain SQL delete from a
    pre_delete receiver stands for another transaction): the first statement's DELETE removes
    898, and neither it nor the second statement writes a row for the two."""
    from django.db.models.signals import pre_delete

    with audit_context(enabled=False):
        MaintenanceRequest.objects.bulk_create([
            MaintenanceRequest(code=f"MV{i:04d}", vessel="MV Tern", title=f"Job {i}", requested_by=staff)
            for i in range(900)])
    gone = ["MV0000", "MV0899"]  # one in each statement's rows

    def vanish(sender, instance, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM maintenance_maintenancerequest WHERE code = ANY(%s)", [gone])

    pre_delete.connect(vanish, sender=MaintenanceRequest, dispatch_uid="vanish")
    try:
        with CaptureQueriesContext(connection) as queries:
            assert MaintenanceRequest.objects.filter(code__startswith="MV").delete() == (
                898, {"maintenance.MaintenanceRequest": 898})
    finally:
        pre_delete.disconnect(dispatch_uid="vanish", sender=MaintenanceRequest)
    assert len([q for q in queries.captured_queries if q["sql"].startswith("WITH")]) == 2
    deleted = AuditTrail.objects.filter(action_type="delete", entity_id__startswith="MV")
    assert deleted.count() == 898 and not deleted.filter(entity_id__in=gone).exists()
    assert UpdateHistory.objects.filter(record_id__startswith="MV", field_name="title").count() == 898
    snapshots = MaintenanceRequest.history.filter(code__startswith="MV", history_type="-")
    assert snapshots.count() == 898 and not snapshots.filter(code__in=gone).exists()


def _written_by_deletes():
    """Every row the deletes wrote, without the columns a second run gives other values."""
    skip = {"id", "timestamp", "audit_id", "history_id", "history_date"}

    def rows(queryset):
        names = [f.attname for f in queryset.model._meta.concrete_fields if f.attname not in skip]
        return sorted(map(repr, queryset.values(*names)))

    return {
        "trail": rows(AuditTrail.objects.filter(action_type="delete")),
        "fields": rows(UpdateHistory.objects.filter(audit__action_type="delete")),
        "requests": rows(MaintenanceRequest.history.filter(history_type="-")),
        "comments": rows(Comment.history.filter(history_type="-")),
        "attachments": rows(Attachment.history.filter(history_type="-")),
    }


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["instance", "queryset"])
def test_the_one_statement_delete_writes_exactly_the_rows_of_django_s_delete_path(staff, engineer, monkeypatch,
                                                                                   how):
    from audit.capture import engine

    mr = _with_children(staff, "MR710")
    mr.assigned_to = engineer
    mr.save()
    other = _with_children(staff, "MR711")

    def delete():
        with audit_context(actor=engineer, reason="Duplicate request"):
            if how == "instance":
                return MaintenanceRequest.objects.get(pk=mr.pk).delete()
            return MaintenanceRequest.objects.filter(pk__in=[mr.pk, other.pk]).delete()

    written = {}
    for path in ("one statement", "django"):
        if path == "django":
            monkeypatch.setattr(engine, "one_statement_delete", lambda using: False)
        with transaction.atomic():
            with CaptureQueriesContext(connection) as queries:
                result = delete()
            written[path] = (result, _written_by_deletes(), len(queries.captured_queries))
            transaction.set_rollback(True)
    (one, rows_one, n_one), (django, rows_django, n_django) = written["one statement"], written["django"]
    assert one == django
    assert rows_one == rows_django
    assert rows_one["trail"] and rows_one["fields"] and rows_one["comments"] and rows_one["attachments"]
    assert n_one == n_django - 3  # three DELETEs and the audit statement became one statement


def test_a_delete_sends_pre_and_post_delete_for_each_row_the_row_gone_at_post_delete(staff):
    from django.db.models import signals

    mr = _with_children(staff, "MR712")
    request_pk = mr.pk
    seen = []

    def pre(sender, instance, **kwargs):
        seen.append(("pre", sender.__name__, instance.pk, sender.objects.filter(pk=instance.pk).exists()))

    def post(sender, instance, **kwargs):
        seen.append(("post", sender.__name__, instance.pk, sender.objects.filter(pk=instance.pk).exists()))

    for model in (MaintenanceRequest, Comment, Attachment):
        signals.pre_delete.connect(pre, sender=model, dispatch_uid=f"test.pre.{model.__name__}")
        signals.post_delete.connect(post, sender=model, dispatch_uid=f"test.post.{model.__name__}")
    try:
        mr.delete()
    finally:
        for model in (MaintenanceRequest, Comment, Attachment):
            signals.pre_delete.disconnect(sender=model, dispatch_uid=f"test.pre.{model.__name__}")
            signals.post_delete.disconnect(sender=model, dispatch_uid=f"test.post.{model.__name__}")
    pres = [s for s in seen if s[0] == "pre"]
    posts = [s for s in seen if s[0] == "post"]
    assert seen == pres + posts  # every pre_delete before the first post_delete
    assert sorted(s[1] for s in pres) == ["Attachment", "Comment", "Comment", "MaintenanceRequest"]
    assert all(exists for *_, exists in pres)  # the rows are there at pre_delete...
    assert [s[1:3] for s in posts if s[1] == "MaintenanceRequest"] == [("MaintenanceRequest", request_pk)]
    assert posts[-1][1] == "MaintenanceRequest"  # the children first, as Django sends them
    assert sorted(s[1:3] for s in posts) == sorted(s[1:3] for s in pres)
    assert not any(exists for *_, exists in posts)  # ...and gone at post_delete


def test_a_failed_delete_writes_nothing(staff):
    from django.db.models import signals

    mr = _with_children(staff, "MR705")

    def refuse(sender, instance, **kwargs):
        raise RuntimeError("refused")

    signals.post_delete.connect(refuse, sender=MaintenanceRequest, dispatch_uid="test.refuse")
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            mr.delete()
    finally:
        signals.post_delete.disconnect(sender=MaintenanceRequest, dispatch_uid="test.refuse")
    assert not AuditTrail.objects.filter(action_type="delete").exists()
    assert MaintenanceRequest.objects.filter(code="MR705").exists()
    assert Comment.objects.filter(request__code="MR705").count() == 2
    assert not MaintenanceRequest.history.filter(code="MR705", history_type="-").exists()


def test_queryset_delete_writes_its_rows_together(staff):
    _with_children(staff, "MR706")
    _with_children(staff, "MR707")
    MaintenanceRequest.objects.filter(code__in=["MR706", "MR707"]).delete()
    trails = AuditTrail.objects.filter(action_type="delete")
    assert sorted(trails.filter(entity_type="maintenance_request").values_list("entity_id", flat=True)) == [
        "MR706", "MR707"]
    assert trails.filter(entity_type="comment").count() == 4
    assert set(trails.filter(entity_type="comment").values_list("changes__request__old", flat=True)) == {
        "MR706", "MR707"}


# -- PostgreSQL: a captured save() update or create is one statement (the UPDATE



@pytest.mark.postgres
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


@pytest.mark.postgres
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


@pytest.mark.postgres
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


@pytest.mark.postgres
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


@pytest.mark.postgres
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


def _row(pk):
    return MaintenanceRequest.objects.filter(pk=pk).values(
        "title", "status", "assigned_to", "estimated_cost", "description", "due_date").get()


@pytest.mark.postgres
def test_repeated_saves_reuse_the_update_django_wrote_and_store_what_django_s_path_stores(
        staff, engineer, monkeypatch):
    """A save of the same fields as an earlier one reuses the UPDATE text Django's compiler wrote
    for it (compat.update_sql); fields set to NULL, values that are expressions and
    ``update_fields`` each give the same row and the same captured change as Django's compiler
    compiling every save (the cache turned off)."""
    import datetime as dt
    from decimal import Decimal

    from audit.capture import compat

    def edits(code):
        mr = _request(staff, code=code)
        steps = []
        for i in range(3):  # the same shape three times: the second and third reuse the text
            mr.title, mr.status, mr.assigned_to = f"Bilge {i}", ("approved", "in_progress")[i % 2], engineer
            mr.save()
            steps.append(_row(mr.pk))
        mr.assigned_to, mr.due_date = None, dt.date(2026, 12, 24)  # NULL: written in the text, not bound
        mr.save()
        mr.save()
        steps.append(_row(mr.pk))
        mr.estimated_cost = Decimal("10.50")
        mr.save()
        mr.estimated_cost = Decimal("11.50")
        mr.save()
        steps.append(_row(mr.pk))
        mr.description = "O'Brien said \"no\"; DROP TABLE x; -- %s %(x)s"
        mr.save(update_fields=["description"])
        steps.append(_row(mr.pk))
        own = {"id", "code", "created_at", "updated_at"}  # each request's own key, code and times
        trails = AuditTrail.objects.filter(entity_id=code).order_by("id")
        return steps, [(t.action_type, {k: v for k, v in t.changes.items() if k not in own}) for t in trails]

    compat._PLAIN_UPDATES.clear()
    with CaptureQueriesContext(connection) as queries:
        reused = edits("MR720")
    assert compat._PLAIN_UPDATES and all(compat._PLAIN_UPDATES.values())  # every plain shape checked and kept
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("WITH u AS (UPDATE")]
    assert len(updates) == 8  # one statement per save, as before

    monkeypatch.setattr(compat, "_plain_update_key", lambda *args: None)
    compiled = edits("MR721")
    assert reused[0] == compiled[0]
    assert reused[0][-1]["description"] == "O'Brien said \"no\"; DROP TABLE x; -- %s %(x)s"
    assert reused[0][-2]["estimated_cost"] == Decimal("11.50")
    assert reused[1] == compiled[1] and len(reused[1]) == 8  # the create and 7 updates (one save changed nothing)


@pytest.mark.postgres
def test_a_shape_whose_parameters_differ_from_django_s_keeps_django_s_compiler(staff, monkeypatch):
    from audit.capture import compat

    compat._PLAIN_UPDATES.clear()
    monkeypatch.setattr(compat, "_plain_update_params", lambda *args: ["not", "django's"])
    mr = _request(staff, code="MR722")
    for i in range(2):
        mr.title = f"Bilge {i}"
        mr.save()
    assert list(compat._PLAIN_UPDATES.values()) == [False]
    assert MaintenanceRequest.objects.get(pk=mr.pk).title == "Bilge 1"


@pytest.mark.postgres
def test_repeated_creates_reuse_the_insert_django_wrote_and_store_what_django_s_path_stores(
        staff, engineer, monkeypatch):
    """A create of the same fields as an earlier one reuses the INSERT text Django's compiler
    wrote for it (compat.insert_sql): rows with NULLs, decimals, dates, keys and text that looks
    like SQL or placeholders, and their captured changes and snapshots, are those of Django's
    compiler compiling every create (the cache turned off); auto_now and auto_now_add are set."""
    import datetime as dt
    from decimal import Decimal

    from audit.capture import compat

    def creates(prefix):
        made = []
        for i, (assignee, cost, due, text) in enumerate([
                (None, None, None, "Bilge"), (engineer, Decimal("10.50"), dt.date(2026, 12, 24), "Winch"),
                (engineer, Decimal("0.05"), None, "O'Brien said \"no\"; DROP TABLE x; -- %s %(x)s")]):
            mr = MaintenanceRequest.objects.create(code=f"{prefix}{i}", vessel="MV Tern", title=text,
                                                   requested_by=staff, assigned_to=assignee, estimated_cost=cost,
                                                   due_date=due, description=text)
            assert mr.created_at is not None and mr.updated_at is not None and mr.pk is not None
            made.append(mr)
        names = ["title", "status", "assigned_to", "estimated_cost", "due_date", "description", "requested_by"]
        rows = [MaintenanceRequest.objects.filter(pk=mr.pk).values(*names).get() for mr in made]
        own = {"id", "code", "created_at", "updated_at"}
        trails = [(t.action_type, {k: v for k, v in t.changes.items() if k not in own}, t.displays)
                  for t in AuditTrail.objects.filter(entity_id__startswith=prefix).order_by("id")]
        snapshots = [MaintenanceRequest.history.filter(id=mr.pk).values(*names, "history_type").get() for mr in made]
        return rows, trails, snapshots

    compat._PLAIN_INSERTS.clear()
    with CaptureQueriesContext(connection) as queries:
        reused = creates("MR73")
    assert list(compat._PLAIN_INSERTS.values()) and all(compat._PLAIN_INSERTS.values())  # checked and kept
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("WITH i AS (INSERT")]
    assert len(inserts) == 3  # one statement per create, as before

    monkeypatch.setattr(compat, "_plain_insert_key", lambda *args: None)
    compiled = creates("MR74")
    assert reused == compiled
    assert reused[0][2]["description"] == "O'Brien said \"no\"; DROP TABLE x; -- %s %(x)s"
    assert reused[0][1]["estimated_cost"] == Decimal("10.50") and reused[0][0]["assigned_to"] is None


@pytest.mark.postgres
def test_an_insert_shape_whose_parameters_differ_from_django_s_keeps_django_s_compiler(staff, monkeypatch):
    from audit.capture import compat

    compat._PLAIN_INSERTS.clear()
    monkeypatch.setattr(compat, "_plain_insert_params", lambda *args, **kwargs: ["not", "django's"])
    for i in range(2):
        _request(staff, code=f"MR75{i}")
    assert list(compat._PLAIN_INSERTS.values()) == [False]
    assert MaintenanceRequest.objects.filter(code__startswith="MR75").count() == 2


@pytest.mark.parametrize("how", ["save", "update_fields"])
def test_a_field_saved_as_an_expression_is_recorded_with_the_value_the_database_stored(staff, how):
    """``F("estimated_cost") + 1`` is computed by the database: the change records the stored
    value (the save used to fail on PostgreSQL after its UPDATE, leaving the change unrecorded in
    autocommit), and the instance holds that value afterwards, so a second save does not add 1 again."""
    from decimal import Decimal

    from django.db.models import F

    mr = _request(staff, code="MR730", estimated_cost=Decimal("10.00"))
    mr.estimated_cost = F("estimated_cost") + 1
    mr.save(**({"update_fields": ["estimated_cost"]} if how == "update_fields" else {}))
    assert mr.estimated_cost == Decimal("11.00")
    trail = AuditTrail.objects.filter(entity_id="MR730", action_type="update").latest("id")
    assert trail.changes["estimated_cost"] == {"old": "10.00", "new": "11.00"}
    mr.title = "Bilge pump"
    mr.save()
    assert MaintenanceRequest.objects.get(pk=mr.pk).estimated_cost == Decimal("11.00")
    assert MaintenanceRequest.history.filter(code="MR730").latest("history_id").estimated_cost == Decimal("11.00")
