"""purge_audit: retention per table, flags, archive, legal holds, batches, and its own record."""

import gzip
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import (
    AUDIT_MODELS,
    AUDIT_TABLES,
    ActivityLog,
    AuditSeal,
    AuditTrail,
    LegalHold,
    SealKind,
    SystemEvent,
    UpdateHistory,
)
from audit.operations import retention
from core.errors import DomainError

from .integrity_helpers import backdate, make_rows

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def seal_file(tmp_path, settings):
    settings.AUDIT_SEAL_FILE = str(tmp_path / "seal.json")
    settings.AUDIT_SEAL_KEY = "k" * 40


@pytest.fixture
def aged():
    """Rows 400 days old (past activity/event retention, within trail retention), 3000 days old
    (past every retention) and fresh ones."""
    old = make_rows(2, entity_prefix="OLD")
    backdate(3000, trails=old, activities=ActivityLog.objects.all(), events=SystemEvent.objects.all())
    mid = make_rows(2, entity_prefix="MID")
    backdate(400, trails=mid, activities=ActivityLog.objects.filter(details__startswith="MID"),
             events=SystemEvent.objects.filter(entity_id__startswith="MID"))
    fresh = make_rows(1, entity_prefix="NEW")
    return {"old": old, "mid": mid, "fresh": fresh}


def counts():
    return {table: model.objects.count() for table, model in AUDIT_MODELS.items()}


def test_each_table_keeps_its_own_retention(aged, capsys):
    call_command("purge_audit", "--yes")
    out = capsys.readouterr().out
    assert set(AuditTrail.objects.values_list("entity_id", flat=True)) == {"MID000", "MID001", "NEW000"}
    assert UpdateHistory.objects.count() == 3
    assert ActivityLog.objects.filter(details__in=["NEW000"]).count() == 1
    assert ActivityLog.objects.exclude(activity="Purged").count() == 1  # 365 days: OLD and MID gone
    assert set(SystemEvent.objects.exclude(event_type="audit_purged").values_list("entity_id", flat=True)) == {
        "NEW000"}
    assert "audit_trail: deleted 2" in out and "update_history: deleted 2" in out
    assert "activity_logs: deleted 4" in out and "system_events: deleted 4" in out
    assert "Purged 12 audit records." in out


def test_the_purge_records_itself_as_a_system_event_with_counts(aged):
    call_command("purge_audit", "--yes", "--table", "activity_logs")
    event = SystemEvent.objects.get(event_type="audit_purged")
    data = json.loads(event.event_data)
    assert data["deleted"] == {"activity_logs": 4}
    assert set(data["cutoffs"]) == {"activity_logs"}


def test_the_purge_deletes_a_trails_history_before_the_trail_and_covers_every_audit_table():
    order = retention.PURGE_ORDER
    assert sorted(order) == sorted(AUDIT_TABLES) and len(order) == len(AUDIT_TABLES)
    assert order.index("update_history") < order.index("audit_trail")
    # the tables without a foreign key between them keep the seal's order
    assert [t for t in order if t in ("activity_logs", "system_events")] == \
        [t for t in AUDIT_TABLES if t in ("activity_logs", "system_events")]


def test_dry_run_counts_and_deletes_nothing(aged, capsys):
    before = counts()
    call_command("purge_audit", "--dry-run")
    out = capsys.readouterr().out
    assert counts() == before
    assert "audit_trail: 2 records older than" in out and "activity_logs: 4 records older than" in out
    assert "Dry run: 12 records would be deleted; nothing was deleted." in out
    assert not AuditSeal.objects.exists()


def test_older_than_overrides_the_retention_and_table_is_repeatable(aged):
    call_command("purge_audit", "--yes", "--older-than", "100", "--table", "audit_trail", "--table",
                 "system_events")
    assert set(AuditTrail.objects.values_list("entity_id", flat=True)) == {"NEW000"}
    assert UpdateHistory.objects.count() == 1  # history went with its trail rows
    assert ActivityLog.objects.count() == 5  # not selected


@pytest.mark.parametrize("flags, message", [
    (["--older-than", "0"], "--older-than: 0 is out of range"),
    (["--older-than", "ten"], "--older-than: 'ten' is not a whole number"),
    (["--table", "users"], "--table: unknown table 'users'"),
    (["--batch-size", "0"], "--batch-size: 0 is out of range"),
    (["--batch-size", "1e9"], "--batch-size: '1e9' is not a whole number"),
    (["--archive", "/no/such/dir/a.jsonl.gz"], "--archive: directory '/no/such/dir' does not exist"),
])
def test_bad_flags_are_refused_and_delete_nothing(aged, flags, message):
    before = counts()
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        call_command("purge_audit", "--yes", *flags)
    assert counts() == before


def test_an_existing_archive_is_never_overwritten(aged, tmp_path):
    target = tmp_path / "a.jsonl.gz"
    target.write_bytes(b"earlier")
    before = counts()
    with pytest.raises(CommandError, match="already exists"):
        call_command("purge_audit", "--yes", "--archive", str(target))
    assert counts() == before and target.read_bytes() == b"earlier"


def test_without_yes_and_without_a_terminal_it_refuses(aged, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    before = counts()
    with pytest.raises(CommandError, match="standard input is not a terminal"):
        call_command("purge_audit")
    assert counts() == before


def test_on_a_terminal_it_asks_and_a_no_deletes_nothing(aged, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    before = counts()
    with pytest.raises(CommandError, match="Cancelled"):
        call_command("purge_audit")
    assert counts() == before


def test_the_archive_holds_every_deleted_row_including_history(aged, tmp_path):
    target = tmp_path / "purge.jsonl.gz"
    old_ids = {t.pk for t in aged["old"]}
    history_ids = set(UpdateHistory.objects.filter(audit_id__in=old_ids).values_list("pk", flat=True))
    call_command("purge_audit", "--yes", "--archive", str(target), "--batch-size", "1")
    lines = [json.loads(line) for line in gzip.open(target, "rt", encoding="utf-8")]
    by_table = {}
    for line in lines:
        by_table.setdefault(line["table"], set()).add(line["row"]["id"])
    assert by_table["audit_trail"] == old_ids
    assert by_table["update_history"] == history_ids
    assert len(by_table["activity_logs"]) == 4 and len(by_table["system_events"]) == 4
    trail = next(line["row"] for line in lines if line["table"] == "audit_trail")
    assert trail["change_reason"].startswith("ok ") and trail["timestamp"].endswith("Z")


def test_batches_are_separate_transactions_recorded_in_the_chain(aged):
    call_command("purge_audit", "--yes", "--table", "activity_logs", "--batch-size", "3")
    links = list(AuditSeal.objects.filter(kind=SealKind.PURGE).order_by("seq"))
    assert [link.row_count for link in links] == [3, 1]
    assert links[1].prev_hash == links[0].hash


@pytest.mark.parametrize("hold, kept", [
    ({"entity_type": "maintenance_request", "entity_id": "OLD001"}, {"OLD001"}),
    ({"user_id": "PE001"}, {"OLD000", "OLD001"}),
    ({"starts_at": "-3001", "ends_at": "-2999"}, {"OLD000", "OLD001"}),
])
def test_records_under_legal_hold_are_never_purged(aged, hold, kept):
    from datetime import timedelta

    from django.utils import timezone

    for key in ("starts_at", "ends_at"):
        if key in hold:
            hold[key] = timezone.now() + timedelta(days=int(hold[key]))
    retention.place_hold(actor="ADM001", reason="court order 17", **hold)
    call_command("purge_audit", "--yes", "--older-than", "1000")
    remaining = set(AuditTrail.objects.values_list("entity_id", flat=True))
    assert remaining == kept | {"MID000", "MID001", "NEW000"}
    # history rows of held trail rows stay with them
    assert UpdateHistory.objects.filter(audit__entity_id__in=kept).count() == len(kept)


def test_a_lifted_hold_no_longer_protects(aged):
    hold = retention.place_hold(actor="ADM001", reason="audit", user_id="PE001")
    retention.lift_hold(hold=hold, actor="ADM001", reason="case closed")
    call_command("purge_audit", "--yes", "--older-than", "1000")
    assert not AuditTrail.objects.filter(entity_id__startswith="OLD").exists()


def test_placing_and_lifting_a_hold_is_recorded(db):
    hold = retention.place_hold(actor="ADM001", reason="litigation 42", entity_type="emergency",
                                entity_id="EMG007")
    retention.lift_hold(hold=hold, actor="PE001", reason="settled")
    placed = SystemEvent.objects.get(event_type="legal_hold_placed")
    lifted = SystemEvent.objects.get(event_type="legal_hold_lifted")
    assert placed.entity_id == lifted.entity_id == str(hold.pk)
    assert "entity emergency EMG007" in placed.event_data and "litigation 42" in placed.event_data
    activities = list(ActivityLog.objects.order_by("pk").values_list("user_id", "activity"))
    assert activities == [("ADM001", "Placed legal hold"), ("PE001", "Lifted legal hold")]
    hold.refresh_from_db()
    assert (hold.lifted_by, hold.lift_reason, hold.active) == ("PE001", "settled", False)


@pytest.mark.parametrize("fields, message", [
    ({}, "Say what to hold"),
    ({"entity_type": "emergency"}, "both the entity type and the entity id"),
    ({"user_id": "ST001", "reason": ""}, "needs a reason"),
])
def test_a_hold_must_say_what_and_why(db, fields, message):
    fields.setdefault("reason", "why")
    with pytest.raises(DomainError, match=message):
        retention.place_hold(actor="ADM001", **fields)
    assert not LegalHold.objects.exists()


def test_legal_hold_command_places_lists_and_lifts(db, capsys):
    call_command("legal_hold", "place", "--entity", "maintenance_request:MR001", "--reason", "claim",
                 "--actor", "ADM001")
    hold = LegalHold.objects.get()
    call_command("legal_hold", "list")
    assert f"#{hold.pk} entity maintenance_request MR001 — claim" in capsys.readouterr().out
    with pytest.raises(CommandError, match="--entity: use TYPE:ID"):
        call_command("legal_hold", "place", "--entity", "MR001", "--reason", "x")
    with pytest.raises(CommandError, match="needs a reason"):
        call_command("legal_hold", "lift", "--id", str(hold.pk))
    call_command("legal_hold", "lift", "--id", str(hold.pk), "--reason", "done", "--actor", "ADM001")
    assert not LegalHold.objects.get().active


def test_admins_place_and_lift_holds_in_the_admin_and_it_is_recorded(admin_user, engineer, portal):
    client = portal(admin_user)
    response = client.post("/admin/audit/legalhold/add/", {"user_id": "ST001", "reason": "inquiry"})
    assert response.status_code == 302, response.content[:500]
    hold = LegalHold.objects.get()
    assert (hold.user_id, hold.placed_by, hold.active) == ("ST001", "ADM001", True)
    refused = client.post("/admin/audit/legalhold/add/", {"entity_type": "emergency", "reason": "x"})
    assert refused.status_code == 200 and b"both the entity type and the entity id" in refused.content
    client.post("/admin/audit/legalhold/", {"action": "lift_holds", "_selected_action": [hold.pk],
                                            "lift_reason": ""})
    assert LegalHold.objects.get().active
    client.post("/admin/audit/legalhold/", {"action": "lift_holds", "_selected_action": [hold.pk],
                                            "lift_reason": "closed"})
    hold.refresh_from_db()
    assert (hold.active, hold.lifted_by, hold.lift_reason) == (False, "ADM001", "closed")
    assert SystemEvent.objects.filter(event_type__in=["legal_hold_placed", "legal_hold_lifted"]).count() == 2
    assert portal(engineer).get("/admin/audit/legalhold/").status_code in (302, 403)
    assert client.get("/admin/audit/auditseal/").status_code == 200
