"""The audit_trail export: the API's streaming CSV (sync under WSGI, async
under ASGI), OWASP CSV-injection neutralising, the file name, the export
recorded before its first byte, and the ``export_audit`` command."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import AsyncClient
from django.utils import timezone

from audit import exports
from audit.models import ActivityLog, AuditTrail, UpdateHistory

EXPORT = "/api/realtime/export-audit"
#: the audit_trail columns (the JSON Lines keys and the order of the CSV's columns)
HEADER = ["id", "timestamp", "user_id", "action_type", "entity_type", "entity_id", "old_value", "new_value",
          "ip_address", "status", "error_message", "change_reason", "request_id", "source"]
#: the CSV's header row: the columns' labels, the actor as "User"
LABELS = ["ID", "Time (UTC)", "User", "Action", "Entity type", "Entity ID", "Old values", "New values", "IP address",
          "Status", "Error message", "Change reason", "Request ID", "Source"]
VECTORS = ["=cmd|' /C calc'!A0", "+1+1", "-1-1", "@SUM(1+1)*cmd|' /C calc'!A0", "\tTAB", "\rCR", "\nLF"]


@pytest.fixture
def clean_trail(db):
    UpdateHistory.objects.all().delete()
    AuditTrail.objects.all().delete()


def trail(entity_id="MR001", *, hours_ago=0.0, **fields):
    fields.setdefault("user_id", "PE001")
    fields.setdefault("action_type", "update")
    fields.setdefault("entity_type", "maintenance_request")
    row = AuditTrail.objects.create(entity_id=entity_id, **fields)
    AuditTrail.objects.filter(pk=row.pk).update(timestamp=timezone.now() - timedelta(hours=hours_ago))
    row.refresh_from_db()
    return row


def body_of(response) -> str:
    return b"".join(response.streaming_content).decode("utf-8")


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


# --- the API export ---------------------------------------------------------------------


def test_export_is_a_streamed_csv_attachment_with_header_and_quoted_cells(api, personas, clean_trail):
    row = trail("MR001", hours_ago=1, old_value='{"status": "pending"}', new_value='{"status": "approved"}',
                ip_address="10.1.2.3", change_reason="Checked, OK", request_id="req-1")
    older = trail("MR002", hours_ago=2, status="failed", error_message="Cannot approve")
    response = api(personas["engineer"]).get(EXPORT)
    assert response.status_code == 200
    assert response.streaming and not response.is_async  # WSGI / test client: a sync iterator
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = body_of(response)
    assert text.startswith('"' + '","'.join(LABELS) + '"\r\n')
    rows = parse(text)
    assert rows[0] == LABELS
    assert [r[0] for r in rows[1:]] == [str(row.pk), str(older.pk)]  # newest first
    first = dict(zip(HEADER, rows[1], strict=True))
    assert first == {
        "id": str(row.pk),
        "timestamp": exports.iso_ms(row.timestamp),
        "user_id": "PE001 (PE001 Person)",  # the actor as people read it
        "action_type": "update",
        "entity_type": "maintenance_request",
        "entity_id": "MR001",
        "old_value": '{"status": "pending"}',
        "new_value": '{"status": "approved"}',
        "ip_address": "10.1.2.3",
        "status": "completed",
        "error_message": "",
        "change_reason": "Checked, OK",
        "request_id": "req-1",
        "source": "captured",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["timestamp"])
    # every cell quoted, the empty ones too
    assert f'"{row.pk}","{first["timestamp"]}","PE001 (PE001 Person)","update"' in text
    assert '"completed","","Checked, OK","req-1","captured"\r\n' in text


@pytest.mark.parametrize("vector", VECTORS, ids=["equals", "plus", "minus", "at", "tab", "cr", "lf"])
def test_formula_like_cells_are_quoted_and_prefixed(api, personas, clean_trail, vector):
    trail(vector, user_id="ST001", change_reason=vector, new_value=vector, error_message=vector, status="failed")
    text = body_of(api(personas["admin"]).get(EXPORT))
    record = dict(zip(HEADER, parse(text)[1], strict=True))
    for column in ("entity_id", "new_value", "error_message", "change_reason"):
        assert record[column] == "'" + vector
    assert f'"\'{vector}"' in text  # quoted, with the prefix inside the quotes
    assert record["status"] == "failed"  # harmless cells untouched


def test_neutralise_leaves_other_values_alone():
    assert exports.neutralise("MR001") == "MR001"
    assert exports.neutralise("a=b") == "a=b"
    assert exports.neutralise(None) == ""
    assert exports.neutralise(-5) == -5  # numbers are not text cells
    assert exports.neutralise(" =x") == " =x"


def test_export_applies_the_audit_trail_filters(api, personas, clean_trail):
    trail("MR001", status="failed", hours_ago=1)
    trail("MR002", hours_ago=1)
    trail("MR003", status="failed", hours_ago=30)
    trail("EMG001", entity_type="emergency", status="failed", hours_ago=1)
    client = api(personas["admin"])
    ids = [r[5] for r in parse(body_of(client.get(EXPORT, {"status": "failed"})))[1:]]
    assert ids == ["MR001", "EMG001"] or ids == ["EMG001", "MR001"]
    rows = parse(body_of(client.get(EXPORT, {"status": "failed", "hours": "48",
                                             "entity_type": "maintenance_request"})))
    assert {r[5] for r in rows[1:]} == {"MR001", "MR003"}


def test_empty_export_still_has_its_header(api, personas, clean_trail):
    assert parse(body_of(api(personas["admin"]).get(EXPORT, {"hours": "0.01"}))) == [LABELS]


def test_file_name_carries_the_time_range(api, personas, clean_trail):
    response = api(personas["admin"]).get(EXPORT, {"hours": "48"})
    match = re.fullmatch(r'attachment; filename="audit-trail_(\d{8}T\d{4}Z)_(\d{8}T\d{4}Z)\.csv"',
                         response["Content-Disposition"])
    assert match
    start, end = (datetime.strptime(v, "%Y%m%dT%H%MZ") for v in match.groups())
    assert end - start == timedelta(hours=48)
    assert abs(datetime.now(UTC).replace(tzinfo=None) - end) < timedelta(minutes=2)
    body_of(response)


def test_export_filename_format():
    start = datetime(2025, 1, 20, 14, 30, 59, tzinfo=UTC)
    assert exports.export_filename(start=start, end=start + timedelta(days=1)) == (
        "audit-trail_20250120T1430Z_20250121T1430Z.csv")


def test_export_is_recorded_before_its_first_byte(api, personas, clean_trail):
    trail("MR001", hours_ago=1)
    response = api(personas["engineer"]).get(EXPORT, {"status": "completed", "hours": "2"})
    # the body has not been produced yet, the record is already there
    (record,) = ActivityLog.objects.filter(user_id="PE001", activity="Exported audit trail")
    assert json.loads(record.details) == {"hours": 2.0, "status": "completed", "format": "csv"}
    assert len(parse(body_of(response))) == 2


def test_export_that_cannot_be_recorded_is_refused(api, personas, clean_trail, monkeypatch):
    from audit import services

    trail("MR001")

    def broken(*args, **kwargs):
        raise RuntimeError("audit database down")

    monkeypatch.setattr(services, "log_activity", broken)
    response = api(personas["admin"]).get(EXPORT)
    assert response.status_code == 503
    assert not response.streaming
    assert response.json()["error"]["code"] == "audit_unavailable"


def test_bad_export_parameter_is_a_json_envelope_even_when_csv_is_asked_for(api, personas):
    response = api(personas["admin"]).get(EXPORT, {"hours": "-1"}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["hours"]


def test_csv_is_produced_in_pieces_not_at_once(clean_trail):
    AuditTrail.objects.bulk_create(
        AuditTrail(user_id="PE001", action_type="update", entity_type="maintenance_request", entity_id=f"MR{i:04d}")
        for i in range(1203)
    )
    chunks = list(exports.csv_chunks(AuditTrail.objects.order_by("-id"), rows_per_write=500))
    assert len(chunks) == 1 + 3  # header, 500, 500, 203
    assert sum(len(parse(c)) for c in chunks[1:]) == 1203


def test_under_asgi_the_body_is_an_async_iterator(api, personas, clean_trail):
    from knox.models import AuthToken

    trail("MR001", change_reason="=1+1")
    _, token = AuthToken.objects.create(personas["admin"])

    async def fetch():
        response = await AsyncClient().get(EXPORT, headers={"authorization": f"Bearer {token}"})
        chunks = [chunk async for chunk in response.streaming_content]
        return response, b"".join(chunks).decode()

    response, text = async_to_sync(fetch)()
    assert response.status_code == 200
    assert response.is_async
    rows = parse(text)
    assert rows[0] == LABELS and rows[1][11] == "'=1+1"


# --- the export_audit command ------------------------------------------------------------


def test_command_writes_csv_with_progress_and_final_count(clean_trail, tmp_path, capsys):
    trail("MR001", hours_ago=1, change_reason="-5 units")
    trail("MR002", hours_ago=3, status="failed")
    trail("MR003", hours_ago=30)
    target = tmp_path / "audit.csv"
    out = io.StringIO()
    call_command("export_audit", "--hours", "24", "--format", "csv", "--output", str(target), stdout=out)
    rows = parse(target.read_text(encoding="utf-8"))
    assert rows[0] == LABELS
    assert [r[5] for r in rows[1:]] == ["MR001", "MR002"]
    assert rows[1][11] == "'-5 units"
    assert f"Exported 2 audit_trail records to {target}." in out.getvalue()
    assert not (tmp_path / "audit.csv.part").exists()
    (record,) = ActivityLog.objects.filter(activity="Exported audit trail")
    assert record.user_id == "system" and "format=csv" in record.details and "rows=2" in record.details


def test_command_writes_jsonl_with_the_same_filters(clean_trail, tmp_path):
    trail("MR001", hours_ago=1, status="failed", error_message="=bad")
    trail("MR002", hours_ago=1)
    trail("MR003", hours_ago=1, status="failed", user_id="ST001")
    target = tmp_path / "audit.jsonl"
    out = io.StringIO()
    call_command("export_audit", "--hours", "2", "--format", "jsonl", "--output", str(target), "--status", "failed",
                 "--user-id", "PE001", stdout=out)
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert list(record) == HEADER
    assert record["entity_id"] == "MR001" and record["error_message"] == "=bad"  # JSON needs no prefix
    assert record["old_value"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    assert "Exported 1 audit_trail record to" in out.getvalue()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--hours", "0"], "--hours"),
        (["--hours", "abc"], "--hours"),
        (["--hours", "8761"], "--hours"),
        (["--hours", "nan"], "--hours"),
        (["--status", "bogus"], "--status"),
        (["--action-type", "hack"], "--action-type"),
        (["--entity-type", "vessel"], "--entity-type"),
        (["--user-id", "X" * 21], "--user-id"),
        (["--format", "xml"], "format"),
    ],
)
def test_command_refuses_bad_flags(db, tmp_path, flags, message):
    target = tmp_path / "out.csv"
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("export_audit", "--output", str(target), *flags, stdout=io.StringIO())
    assert not target.exists()
    assert not ActivityLog.objects.filter(activity="Exported audit trail").exists()


def test_command_refuses_a_missing_directory(db, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("export_audit", "--output", str(tmp_path / "no" / "out.csv"), stdout=io.StringIO())


@pytest.mark.parametrize(("flags", "code"), [(["--hours", "abc"], 1), (["--format", "xml"], 2), ([], 2)])
def test_command_exits_non_zero_on_bad_flags(flags, code, tmp_path):
    args = [sys.executable, str(settings.BASE_DIR / "manage.py"), "export_audit", *flags]
    if flags:
        args += ["--output", str(tmp_path / "x.csv")]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, env={**os.environ, "DEBUG": "1"},
                            cwd=settings.BASE_DIR)
    assert result.returncode == code, result.stderr[-500:]
    assert "Traceback" not in result.stderr
