"""Issue 12.6: every audit_trail row says where it came from (``source``): ``captured`` for a
change the capture saw happen, ``manual`` for a hand entry through ``log_entity_change()``,
in the API, the exports, the audit-log page and the entity timelines; rows sealed before the
column existed keep verifying."""

import csv
import io
import json

import pytest
from django.core.management import call_command

from audit.context import audit_context
from audit.models import AuditTrail
from audit.operations import integrity
from audit.services import log_entity_change
from maintenance import services as maintenance

from .integrity_helpers import make_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def captured_and_manual(personas):
    """MR001 really approved by PE001 (captured), and a hand entry claiming an approval of it."""
    request_obj = maintenance.create_request(actor=personas["staff"], vessel="MV Aurora", title="Replace bilge pump")
    maintenance.approve_request(request_obj=request_obj, actor=personas["engineer"], reason="Checked on board")
    with audit_context(actor=personas["admin"]):
        manual = log_entity_change("maintenance_request", request_obj.code, "priority", "low", "high",
                                   action_type="update", change_reason="typed in by hand")
    captured = AuditTrail.objects.get(entity_id=request_obj.code, action_type="approve")
    return request_obj, captured, manual


def test_the_row_itself_says_captured_or_manual(captured_and_manual):
    _, captured, manual = captured_and_manual
    assert AuditTrail.objects.get(pk=captured.pk).source == "captured"
    assert AuditTrail.objects.get(pk=manual.pk).source == "manual"
    assert AuditTrail.objects.get(pk=manual.pk).get_source_display() == "Manual entry"


def test_api_audit_trail_and_entity_history_carry_the_source(api, personas, captured_and_manual):
    request_obj, captured, manual = captured_and_manual
    client = api(personas["admin"])
    records = {r["id"]: r for r in client.get("/api/realtime/audit-trail", {"entity_id": request_obj.code}).json()["records"]}
    assert records[captured.pk]["source"] == "captured"
    assert records[manual.pk]["source"] == "manual"
    changes = client.get(f"/api/realtime/entity-history/maintenance_request/{request_obj.code}").json()["changes"]
    by_field = {(c["field_name"], c["action_type"]): c["source"] for c in changes}
    assert by_field[("priority", "update")] == "manual"
    assert by_field[("status", "approve")] == "captured"


def test_csv_and_json_lines_exports_carry_the_source(api, personas, captured_and_manual, tmp_path):
    request_obj, captured, manual = captured_and_manual
    body = b"".join(api(personas["admin"]).get("/api/realtime/export-audit", {"hours": "1"}).streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    header = rows[0]
    assert header[-1] == "Source"  # the column's label
    sources = {int(r[0]): r[header.index("Source")] for r in rows[1:]}
    assert (sources[captured.pk], sources[manual.pk]) == ("captured", "manual")

    target = tmp_path / "audit.jsonl"
    call_command("export_audit", "--hours", "1", "--format", "jsonl", "--output", str(target))
    lines = {r["id"]: r for r in map(json.loads, target.read_text().splitlines())}
    assert (lines[captured.pk]["source"], lines[manual.pk]["source"]) == ("captured", "manual")


def test_audit_log_page_and_request_timeline_label_the_manual_entry(portal, personas, captured_and_manual):
    request_obj, captured, manual = captured_and_manual
    client = portal(personas["admin"])
    html = client.get("/admin/audit-log", {"entity_id": request_obj.code}).content.decode()
    manual_row = html.split(f'data-id="{manual.pk}"')[1].split("</li>")[0]
    captured_row = html.split(f'data-id="{captured.pk}"')[1].split("</li>")[0]
    assert "manual entry" in manual_row and "captured" not in manual_row
    assert "captured" in captured_row and "manual entry" not in captured_row

    page = client.get(f"/requests/{request_obj.code}/").content.decode()
    timeline = page.split('id="history"')[1]
    assert timeline.count("manual entry") == 1


@pytest.mark.django_db(transaction=True)
def test_rows_sealed_before_the_source_column_keep_verifying(settings, tmp_path, monkeypatch):
    """Seal in form 2 (no source), add rows, seal in the current form: both verify, and a
    sealed row whose source is forged afterwards is named as altered."""
    settings.AUDIT_SEAL_FILE = str(tmp_path / "seal.json")
    settings.AUDIT_SEAL_KEY = "k" * 40
    make_rows(2)
    monkeypatch.setattr(integrity, "CURRENT_FORM", 2)
    old = integrity.seal()
    monkeypatch.undo()
    newer = make_rows(2, entity_prefix="EMG")
    new = integrity.seal()
    assert (old.details["form"], new.details["form"]) == (2, integrity.CURRENT_FORM)
    assert "source" in integrity.CANONICAL_FORMS[integrity.CURRENT_FORM]["audit_trail"]
    assert "source" not in integrity.CANONICAL_FORMS[2]["audit_trail"]
    assert integrity.verify().ok

    from .integrity_helpers import raw

    raw("UPDATE audit_trail SET source = 'captured' WHERE id = %s", [newer[0].pk])
    problems = {(f.table, f.row_id, f.problem.split(" ")[0]) for f in integrity.verify().findings}
    assert problems == {("audit_trail", newer[0].pk, "altered")}
