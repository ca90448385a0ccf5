"""verify_audit on a fresh installation, and the critical event a failed verification records."""

import json

import pytest
from django.core.management import call_command

from audit.models import AuditSeal, SystemEvent
from audit.operations import integrity, jobs
from core.background import run_pending

from .integrity_helpers import make_rows, raw

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.tasks]


@pytest.fixture(autouse=True)
def seal_file(tmp_path, settings):
    settings.AUDIT_SEAL_FILE = str(tmp_path / "seal.json")
    settings.AUDIT_SEAL_KEY = "k" * 40
    return tmp_path / "seal.json"


def failures():
    return list(SystemEvent.objects.filter(event_type="integrity_check_failed"))


def run_verify(capsys):
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit")
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out + captured.err


def test_a_never_sealed_installation_has_nothing_to_verify(capsys):
    make_rows(2)
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "Nothing sealed yet" in out and "TAMPERED" not in out
    assert failures() == []


def test_a_seal_file_without_seal_rows_is_tampering(seal_file, capsys):
    make_rows(1)
    integrity.seal()
    raw("DELETE FROM audit_seals")
    code, out = run_verify(capsys)
    assert code == 1
    assert "TAMPERED seal file: the file names seal #1 but the database has no seal" in out


def test_seal_rows_without_the_seal_file_are_tampering(seal_file, capsys):
    make_rows(1)
    integrity.seal()
    seal_file.unlink()
    code, out = run_verify(capsys)
    assert code == 1
    assert f"TAMPERED seal file: seal file {seal_file} is missing" in out
    assert "integrity_check_failed" in out


def test_a_tampered_row_records_a_critical_event_with_counts_and_findings(capsys):
    trails = make_rows(2)
    integrity.seal()
    raw("UPDATE audit_trail SET change_reason = 'forged' WHERE id = %s", [trails[0].pk])
    code, _ = run_verify(capsys)
    assert code == 1
    [event] = failures()
    assert (event.severity, event.entity_type) == ("critical", "audit_seals")
    data = json.loads(event.event_data)
    assert data["source"] == "verify_audit" and data["findings"] == 1 and data["seals_checked"] == 1
    assert data["first_findings"] == [f"audit_trail id {trails[0].pk}: altered (differs from seal #1)"]


def test_the_scheduled_verification_records_the_event_too():
    trails = make_rows(1)
    jobs.seal_audit.enqueue()
    run_pending(queues=["ops"])
    assert AuditSeal.objects.count() == 1
    raw("DELETE FROM update_history WHERE audit_id = %s", [trails[0].pk])
    result = jobs.verify_audit.enqueue()
    run_pending(queues=["ops"])
    result.refresh()
    assert result.return_value["ok"] is False and result.return_value["findings"] == 1
    [event] = failures()
    assert json.loads(event.event_data)["source"] == "schedule"
    assert "deleted (sealed in #1, not purged)" in json.loads(event.event_data)["first_findings"][0]


@pytest.mark.database_tasks
def test_a_passing_scheduled_verification_records_nothing():
    make_rows(1)
    jobs.seal_audit.enqueue()
    jobs.verify_audit.enqueue()
    assert run_pending(queues=["ops"]) == 2
    assert failures() == []
