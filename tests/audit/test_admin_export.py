"""CSV exports from every admin changelist (audit.admin.export.CsvExportMixin):
the "Export selected … as CSV" action and the "Export this list as CSV" link
that keeps the changelist's filters and search. Labels in the header, the
values people read in the cells, formula-like text neutralised, streamed, and
each export one activity row with its filters and row count."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from audit.models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory

pytestmark = pytest.mark.django_db

# The OWASP CSV-injection vectors: each must reach the file with a leading '.
CMD = "=cmd|' /C calc'!A0"
PLUS = "+SUM(1,2)"
MINUS = "-2+3"
AT = "@SUM(A1:A2)"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _parse(response) -> list[list[str]]:
    assert response.status_code == 200, response.content[:300]
    assert response.streaming, "the export is streamed"
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    body = b"".join(response.streaming_content).decode()
    assert body.count('"') % 2 == 0
    return list(csv.reader(io.StringIO(body)))


def _assert_formula_safe(rows: list[list[str]], vectors: list[str]) -> None:
    cells = [cell for row in rows for cell in row]
    for vector in vectors:
        assert "'" + vector in cells, f"{vector!r} not neutralised"
    for cell in cells:
        if cell.startswith(FORMULA_PREFIXES):
            float(cell)  # only a number may start with - or +


# --- one record with formula-like text per changelist ------------------------------------


def _requests(p):
    from maintenance import services

    obj = services.create_request(actor=p["staff"], vessel=PLUS, title=CMD, description=MINUS, category="deck",
                                  priority="high")
    services.update_request(request_obj=obj, actor=p["engineer"], description=AT, reason="re-worded")
    other = services.create_request(actor=p["staff"], vessel="MV Other", title="Paint", priority="low")
    return [obj], [other], "priority__exact=high", [CMD, PLUS, AT]


def _emergencies(p):
    from emergencies import services

    obj = services.report_emergency(actor=p["staff"], vessel=CMD, emergency_type="fire", description=AT,
                                    location=MINUS, severity="critical")
    other = services.report_emergency(actor=p["staff"], vessel="MV Other", emergency_type="medical",
                                      description="Cut hand", severity="low")
    return [obj], [other], "severity__exact=critical", [CMD, AT, MINUS]


def _items(p):
    from maintenance import services

    obj = services.create_item(actor=p["admin"], part_number="PN-1", name=CMD, location=AT, quantity_on_hand=5)
    other = services.create_item(actor=p["admin"], part_number="PN-2", name="Filter", location="Store B")
    return [obj], [other], f"q={obj.code}", [CMD, AT]


def _adjustments(p):
    from maintenance import services

    item = services.create_item(actor=p["admin"], part_number="PN-1", name="Impeller", quantity_on_hand=5)
    obj = services.adjust_stock(item=item, actor=p["admin"], quantity_change=-2, reason=CMD)
    other_item = services.create_item(actor=p["admin"], part_number="PN-2", name="Filter", quantity_on_hand=1)
    other = services.adjust_stock(item=other_item, actor=p["admin"], quantity_change=3, reason="Delivery")
    assert obj in item.adjustments.all()  # beside the "Initial stock" one
    return list(item.adjustments.all()), [other], "q=PN-1", [CMD]


def _users(p, make_user):
    obj = make_user("ST009", full_name=CMD, department=PLUS, phone=MINUS)
    other = make_user("PE009", role="port_engineer", full_name="Pat Engineer")
    return [obj], [other], "q=ST009", [CMD, PLUS, MINUS]


def _activities(p):
    obj = ActivityLog.objects.create(user_id="ST001", activity=CMD, details=AT, path="/x")
    other = ActivityLog.objects.create(user_id="PE001", activity="Opened page", details="")
    return [obj], [other], "user_id=ST001", [CMD, AT]


def _events(p):
    obj = SystemEvent.objects.create(event_type=CMD, severity="critical", event_data=PLUS)
    other = SystemEvent.objects.create(event_type="heartbeat", severity="info")
    return [obj], [other], "severity__exact=critical", [CMD, PLUS]


def _history(p):
    from maintenance import services

    obj = services.create_request(actor=p["staff"], vessel="MV A", title="Pump", reason="new")
    services.update_request(request_obj=obj, actor=p["engineer"], title=CMD, reason=AT)
    other = services.create_request(actor=p["staff"], vessel="MV B", title="Paint")
    mine = list(UpdateHistory.objects.filter(record_id=obj.code))
    theirs = list(UpdateHistory.objects.filter(record_id=other.code))
    return mine, theirs, f"q={obj.code}", [CMD, AT]


def _trail(p):
    from maintenance import services

    obj = services.create_request(actor=p["staff"], vessel="MV A", title="Pump", reason="new")
    services.update_request(request_obj=obj, actor=p["engineer"], title="Pump and seal", reason=CMD)
    mine = list(AuditTrail.objects.filter(entity_id=obj.code, action_type="update"))
    theirs = list(AuditTrail.objects.filter(entity_id=obj.code, action_type="create"))
    return mine, theirs, "action_type__exact=update", [CMD]


@dataclass(frozen=True)
class Case:
    url: str
    make: Callable
    header: list[str]  # labels that must head the file, in this order (a prefix of the header)
    cells: list[str]  # display values that must appear in the selected record's row


CASES = {
    "requests": Case("/admin/maintenance/maintenancerequest/", _requests,
                     ["Code", "Title", "Vessel", "Description", "Status", "Priority", "Category", "Requested by"],
                     ["Pending", "High", "Deck machinery", "ST001 (ST001 Person)"]),
    "emergencies": Case("/admin/emergencies/emergency/", _emergencies,
                        ["Code", "Vessel", "Emergency type", "Severity", "Status"],
                        ["Fire", "Critical", "Reported"]),
    "items": Case("/admin/maintenance/inventoryitem/", _items,
                  ["Code", "Part number", "Name", "Location", "Quantity on hand", "Minimum stock", "Below minimum"],
                  ["PN-1", "5", "No"]),
    "adjustments": Case("/admin/maintenance/stockadjustment/", _adjustments,
                        ["ID", "Item", "Quantity change", "Resulting quantity", "Reason", "Adjusted by"],
                        ["-2", "3", "ADM001 (ADM001 Person)"]),
    "users": Case("/admin/accounts/user/", _users,
                  ["User ID", "Full name", "Email", "Phone", "Department", "Role", "Approval status"],
                  ["ST009", "Staff", "Yes"]),
    "activities": Case("/admin/audit/activitylog/", _activities,
                       ["ID", "Timestamp", "User", "Activity", "Details", "IP address"],
                       ["ST001 (ST001 Person)", "/x"]),
    "events": Case("/admin/audit/systemevent/", _events,
                   ["ID", "Timestamp", "Severity", "Event type"], ["Critical", "No"]),
    "history": Case("/admin/audit/updatehistory/", _history,
                    ["ID", "Timestamp", "Table name", "Record ID", "Field name", "Old value", "New value", "User"],
                    ["title", "PE001 (PE001 Person)"]),
    "trail": Case("/admin/audit/audittrail/", _trail,
                  ["ID", "Timestamp", "User", "Action type", "Entity type", "Entity ID", "Old value"],
                  ["Update", "PE001 (PE001 Person)"]),
}


@pytest.fixture
def case_records(request, personas, make_user):
    case = CASES[request.param]
    if case.make is _users:
        return case, *case.make(personas, make_user)
    return case, *case.make(personas)


def _export_rows(rows):
    return [row for row in rows[1:] if row]


@pytest.mark.parametrize("case_records", list(CASES), indirect=True)
def test_export_selected_from_each_changelist(portal, admin_user, case_records):
    case, selected, _, _, vectors = case_records
    client = portal(admin_user)
    html = client.get(case.url).content.decode()
    assert 'value="export_selected_csv"' in html
    assert "Export selected" in html and "as CSV" in html
    response = client.post(case.url, {"action": "export_selected_csv", "index": 0,
                                      "_selected_action": [obj.pk for obj in selected]})
    rows = _parse(response)
    assert rows[0][:len(case.header)] == case.header
    data = _export_rows(rows)
    assert len(data) == len(selected)
    cells = {cell for row in data for cell in row}
    for value in case.cells:
        assert value in cells, (value, data)
    _assert_formula_safe(rows, vectors)


@pytest.mark.parametrize("case_records", list(CASES), indirect=True)
def test_export_of_the_filtered_list_keeps_the_filter(portal, admin_user, case_records):
    case, selected, others, query, vectors = case_records
    client = portal(admin_user)
    html = client.get(f"{case.url}?{query}").content.decode()
    link = f"{case.url}export-csv/?{query}"
    assert f'href="{link}"' in html and "Export this list as CSV" in html
    before = ActivityLog.objects.count()
    rows = _parse(client.get(link))
    data = _export_rows(rows)
    assert len(data) == len(selected), data
    _assert_formula_safe(rows, vectors)
    # the other records were filtered out: none of their first cells is in the file
    first_column = rows[0].index(case.header[0])
    exported = {row[first_column] for row in data}
    assert exported.isdisjoint({_first_cell(case, obj) for obj in others})
    # the export itself is one activity row, with its filter and its row count
    logged = ActivityLog.objects.order_by("-id")[: ActivityLog.objects.count() - before]
    exports = [row for row in logged if row.activity.startswith("Exported")]
    assert len(exports) == 1
    details = json.loads(exports[0].details)
    key, _, value = query.partition("=")
    assert details["filters"] == {key: value}
    assert details["rows"] == len(selected) and details["scope"] == "filtered" and details["via"] == "admin"
    assert exports[0].user_id == "ADM001"


def _first_cell(case, obj) -> str:
    return {"Code": lambda: obj.code, "User ID": lambda: obj.user_id}.get(case.header[0], lambda: str(obj.pk))()


def test_the_selected_export_is_one_activity_row_naming_the_list(portal, admin_user, personas):
    from maintenance import services

    obj = services.create_request(actor=personas["staff"], vessel="MV A", title="Pump")
    client = portal(admin_user)
    before = set(ActivityLog.objects.values_list("id", flat=True))
    response = client.post("/admin/maintenance/maintenancerequest/?status__exact=pending",
                           {"action": "export_selected_csv", "index": 0, "_selected_action": [obj.pk]})
    assert len(_export_rows(_parse(response))) == 1
    new = ActivityLog.objects.exclude(id__in=before).filter(activity__startswith="Exported")
    assert [row.activity for row in new] == ["Exported maintenance requests"]
    details = json.loads(new[0].details)
    assert details == {"format": "csv", "via": "admin", "list": "maintenance.maintenancerequest",
                       "scope": "selected", "filters": {"status__exact": "pending"}, "rows": 1}


def test_user_export_never_carries_passwords(portal, admin_user, personas):
    response = portal(admin_user).get("/admin/accounts/user/export-csv/")
    rows = _parse(response)
    body = "\n".join(",".join(row) for row in rows)
    assert "Password" not in rows[0] and "pbkdf2" not in body and "md5$" not in body
    assert {row[0] for row in _export_rows(rows)} == {"ADM001", "PE001", "ST001", "ST002"}


def test_a_bad_filter_is_a_400_with_a_sentence(portal, admin_user):
    response = portal(admin_user).get("/admin/maintenance/maintenancerequest/export-csv/?nonsense__in=1")
    assert response.status_code == 400
    assert "cannot be filtered that way" in response.content.decode()


def test_staff_cannot_export(portal, personas):
    client = portal(personas["staff"])
    response = client.get("/admin/maintenance/maintenancerequest/export-csv/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_search_is_kept_in_the_export_link(portal, admin_user, personas):
    from maintenance import services

    wanted = services.create_request(actor=personas["staff"], vessel="MV Searched", title="Pump")
    services.create_request(actor=personas["staff"], vessel="MV Elsewhere", title="Paint")
    client = portal(admin_user)
    html = client.get("/admin/maintenance/maintenancerequest/?q=Searched").content.decode()
    assert 'href="/admin/maintenance/maintenancerequest/export-csv/?q=Searched"' in html
    rows = _parse(client.get("/admin/maintenance/maintenancerequest/export-csv/?q=Searched"))
    assert [row[0] for row in _export_rows(rows)] == [wanted.code]
