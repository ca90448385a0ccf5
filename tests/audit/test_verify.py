"""verify_audit: every tamper scenario is detected and the row named; purges and unsealed rows are not tampering."""

import shutil

import pytest
from django.core.management import call_command
from django.db import connection

from audit.models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory
from audit.operations import integrity, retention

from .integrity_helpers import backdate, make_rows, raw

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def seal_file(tmp_path, settings):
    settings.AUDIT_SEAL_FILE = str(tmp_path / "seal.json")
    settings.AUDIT_SEAL_KEY = "k" * 40
    return tmp_path / "seal.json"


def run_verify(capsys):
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit")
    out = capsys.readouterr().out
    return exit_info.value.code, out


def findings():
    return {(f.table, f.row_id, f.problem.split(" ")[0]) for f in integrity.verify().findings}


def test_an_untouched_log_verifies_and_later_rows_are_unsealed_not_tampering(capsys):
    make_rows(3)
    integrity.seal()
    make_rows(1, entity_prefix="EMG")
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "Verification passed." in out
    assert "12 rows" not in out and "16 rows and 1 seals checked" in out
    assert "unsealed (written after the last seal, not verified): activity_logs 1, system_events 1, " \
           "audit_trail 1, update_history 1." in out


def test_an_altered_value_is_named(capsys):
    trails = make_rows(3)
    integrity.seal()
    raw("UPDATE audit_trail SET change_reason = 'nothing to see' WHERE id = %s", [trails[1].pk])
    code, out = run_verify(capsys)
    assert code == 1
    assert f"TAMPERED audit_trail id {trails[1].pk}: altered (differs from seal #1)" in out
    assert findings() == {("audit_trail", trails[1].pk, "altered")}


def test_an_altered_json_value_and_timestamp_are_named():
    make_rows(2)
    integrity.seal()
    event = SystemEvent.objects.order_by("pk").first()
    raw("UPDATE system_events SET event_data = %s WHERE id = %s", ['{"n": 9}', event.pk])
    activity = ActivityLog.objects.order_by("pk").last()
    raw("UPDATE activity_logs SET timestamp = timestamp + interval '1 microsecond' WHERE id = %s"
        if connection.vendor == "postgresql" else
        "UPDATE activity_logs SET timestamp = replace(timestamp, '.', '.9') WHERE id = %s", [activity.pk])
    assert findings() == {("system_events", event.pk, "altered"), ("activity_logs", activity.pk, "altered")}


def test_a_deleted_row_is_named(capsys):
    trails = make_rows(3)
    integrity.seal()
    history = UpdateHistory.objects.get(audit_id=trails[0].pk)
    raw("DELETE FROM update_history WHERE id = %s", [history.pk])
    code, out = run_verify(capsys)
    assert code == 1
    assert f"TAMPERED update_history id {history.pk}: deleted (sealed in #1, not purged)" in out
    assert findings() == {("update_history", history.pk, "deleted")}


def test_a_row_inserted_with_raw_sql_into_the_sealed_range_is_named():
    make_rows(2)
    gap = ActivityLog.objects.order_by("pk").last()
    gap_id = gap.pk
    raw("DELETE FROM activity_logs WHERE id = %s", [gap_id])  # before sealing: a gap, as sequences leave
    make_rows(1, entity_prefix="EMG")
    integrity.seal()
    xact = ", xact_id" if connection.vendor == "postgresql" else ""
    forged = ", 1" if connection.vendor == "postgresql" else ""  # an old transaction id, inside the sealed range
    raw(f"INSERT INTO activity_logs (id, user_id, activity, details, timestamp, request_id, user_agent, method, "
        f"path{xact}) VALUES (%s, 'ADM001', 'backdated', '', '2024-01-01 00:00:00', '', '', '', ''{forged})",
        [gap_id])
    assert findings() == {("activity_logs", gap_id, "inserted")}


def test_an_altered_seal_is_named():
    make_rows(2)
    first = integrity.seal()
    make_rows(1, entity_prefix="EMG")
    integrity.seal()
    raw("UPDATE audit_seals SET row_count = row_count + 1 WHERE seq = %s", [first.seq])
    problems = integrity.verify().findings
    assert [(f.table, f.row_id) for f in problems] == [("audit_seals", first.seq)]
    assert "hash does not match its content (seal altered)" in problems[0].problem


def test_a_rewritten_chain_is_caught_by_the_seal_file_and_the_signature():
    """A superuser alters a row and recomputes the row hash, digest and seal hash:
    the signed file outside the database and the link's signature (he has no
    private key) show it."""
    trails = make_rows(2)
    link = integrity.seal()
    sealed_hash = link.hash
    raw("UPDATE audit_trail SET user_id = 'ST002' WHERE id = %s", [trails[0].pk])
    # recompute everything the database holds
    hashes = bytearray()
    for table in integrity.TABLES:
        with connection.cursor() as cursor:
            cursor.execute(integrity._select(table, connection))
            for row in cursor.fetchall():
                hashes += integrity.row_leaf(table, row)
    link.row_hashes = bytes(hashes)
    link.rows_digest = integrity.rows_digest(link)
    link.hash = integrity.link_hash(link)
    raw("UPDATE audit_seals SET row_hashes = %s, rows_digest = %s, hash = %s WHERE seq = %s",
        [bytes(hashes), link.rows_digest, link.hash, link.seq])
    problems = [str(f) for f in integrity.verify().findings]
    assert problems == ["audit_seals id 1: seal #1: the signature does not verify (link forged or altered)",
                        f"seal file: the file's seal #1 ({sealed_hash[:12]}) is not in the database chain: "
                        "the chain was rewritten"]


def test_a_seal_file_rolled_back_to_an_older_seal_is_detected(seal_file, capsys):
    make_rows(1)
    integrity.seal()
    shutil.copy(seal_file, seal_file.with_suffix(".old"))
    make_rows(1, entity_prefix="EMG")
    integrity.seal()
    shutil.copy(seal_file.with_suffix(".old"), seal_file)
    code, out = run_verify(capsys)
    assert code == 1
    assert "TAMPERED seal file: the file names seal #1 but the chain goes on to #2" in out


def test_a_seal_file_signed_with_another_key_or_edited_is_refused(seal_file, settings):
    make_rows(1)
    integrity.seal()
    settings.AUDIT_SEAL_KEY = "another-key-" * 4
    assert [str(f) for f in integrity.verify().findings] == [
        f"seal file: seal file {seal_file}: HMAC mismatch (the file was altered or signed with another key)"]
    settings.AUDIT_SEAL_KEY = "k" * 40
    seal_file.write_text(seal_file.read_text().replace('"seq": 1', '"seq": 2'))
    assert "HMAC mismatch" in str(integrity.verify().findings[0])
    seal_file.unlink()
    assert "is missing" in str(integrity.verify().findings[0])


def test_verification_passes_after_a_purge_and_still_catches_tampering(capsys):
    old = make_rows(3)
    backdate(4000, trails=old, activities=ActivityLog.objects.all(), events=SystemEvent.objects.all())
    recent = make_rows(2, entity_prefix="EMG")
    integrity.seal()
    call_command("purge_audit", "--yes", "--batch-size", "2")
    assert not AuditTrail.objects.filter(pk__in=[t.pk for t in old]).exists()
    capsys.readouterr()
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "Verification passed." in out and "12 rows purged by retention" in out
    survivor = ActivityLog.objects.order_by("pk").last()
    raw("DELETE FROM activity_logs WHERE id = %s", [survivor.pk])
    assert findings() == {("activity_logs", survivor.pk, "deleted")}
    assert recent


def test_held_rows_survive_a_purge_and_verify(capsys):
    old = make_rows(2)
    backdate(4000, trails=old)
    retention.place_hold(actor="ADM001", reason="litigation", entity_type="maintenance_request",
                         entity_id="MR000")
    integrity.seal()
    call_command("purge_audit", "--yes", "--table", "audit_trail")
    assert list(AuditTrail.objects.filter(pk__in=[t.pk for t in old]).values_list("entity_id", flat=True)) == [
        "MR000"]
    assert integrity.verify().ok


def _process_every_event():
    raw("UPDATE system_events SET processed = %s", [True])


def test_processing_an_event_after_it_was_sealed_is_not_tampering(monkeypatch):
    """The current canonical form leaves the event-state columns out of the hash."""
    make_rows(2)
    assert SystemEvent.objects.exists()
    integrity.seal()
    _process_every_event()
    assert integrity.verify().ok


def test_rows_sealed_in_an_older_form_keep_verifying_after_the_upgrade(monkeypatch):
    """A seal made in form 1 (which hashed ``processed``) verifies after the upgrade to the
    current form, before and after its events are processed; a real change is still found."""
    make_rows(2)
    monkeypatch.setattr(integrity, "CURRENT_FORM", 1)
    old = integrity.seal()
    monkeypatch.undo()
    assert old.details["form"] == 1
    make_rows(1, entity_prefix="EMG")
    new = integrity.seal()
    assert new.details["form"] == integrity.CURRENT_FORM > 1
    assert integrity.verify().ok
    _process_every_event()
    assert integrity.verify().ok
    event = SystemEvent.objects.order_by("id").first()
    raw("UPDATE system_events SET severity = %s WHERE id = %s", ["info" if event.severity != "info" else "error",
                                                                   event.id])
    assert ("system_events", event.id, "altered") in findings()


def test_the_form_version_is_inside_the_chain_hash():
    make_rows(1)
    link = integrity.seal()
    raw("UPDATE audit_seals SET details = %s WHERE seq = %s", ['{"window": "id", "form": 1}', link.seq])
    assert any("seal altered" in f.problem for f in integrity.verify().findings)


def test_rows_sealed_before_user_display_keep_verifying_and_it_is_sealed_from_form_4(monkeypatch):
    """Form 4 adds audit_trail.user_display (the actor's name captured at write time): a seal made in
    form 3 keeps verifying whatever that column holds; one made in form 4 catches a rewritten name."""
    make_rows(1)
    monkeypatch.setattr(integrity, "CURRENT_FORM", 3)
    old = integrity.seal()
    monkeypatch.undo()
    assert old.details["form"] == 3
    make_rows(1, entity_prefix="EMG")
    new = integrity.seal()
    assert new.details["form"] == integrity.CURRENT_FORM >= 4
    assert "user_display" in integrity.CANONICAL_FORMS[4]["audit_trail"]
    assert "user_display" not in integrity.CANONICAL_FORMS[3]["audit_trail"]
    assert integrity.verify().ok
    first, last = AuditTrail.objects.order_by("id").first(), AuditTrail.objects.order_by("id").last()
    raw("UPDATE audit_trail SET user_display = %s WHERE id = %s", ["XX · Somebody Else", last.id])
    assert ("audit_trail", last.id, "altered") in findings()
    assert ("audit_trail", first.id, "altered") not in findings()


def test_rows_sealed_before_displays_keep_verifying_and_they_are_sealed_from_form_5(monkeypatch):
    """Form 5 adds audit_trail.displays (the related entities as named when a change was written):
    a seal made in form 4 keeps verifying whatever that column holds; one made in form 5 catches a
    rewritten name."""
    make_rows(1)
    monkeypatch.setattr(integrity, "CURRENT_FORM", 4)
    old = integrity.seal()
    monkeypatch.undo()
    assert old.details["form"] == 4
    make_rows(1, entity_prefix="EMG")
    new = integrity.seal()
    assert new.details["form"] == integrity.CURRENT_FORM >= 5
    assert "displays" in integrity.CANONICAL_FORMS[5]["audit_trail"]
    assert "displays" not in integrity.CANONICAL_FORMS[4]["audit_trail"]
    assert integrity.verify().ok
    first, last = AuditTrail.objects.order_by("id").first(), AuditTrail.objects.order_by("id").last()
    rewritten = '{"assigned_to": {"old": null, "new": "PE001 · Somebody Else"}}'
    raw("UPDATE audit_trail SET displays = %s WHERE id = %s", [rewritten, first.id])
    assert ("audit_trail", first.id, "altered") not in findings()  # sealed in form 4: not covered
    raw("UPDATE audit_trail SET displays = %s WHERE id = %s", [rewritten, last.id])
    assert ("audit_trail", last.id, "altered") in findings()
