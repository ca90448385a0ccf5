"""History in words in the admin (issue 13, items 2 and 3): the audit-trail changelist's change
column and the field-history changelist say field labels, choice labels and people, as the
portal's pages do, with the people of a whole page looked up at once (never a query per row)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def assigned(personas):
    from maintenance import services

    obj = services.create_request(actor=personas["staff"], vessel="MV A", title="Pump", category="deck")
    services.approve_request(request_obj=obj, actor=personas["engineer"], reason="Budget confirmed")
    services.assign_request(request_obj=obj, actor=personas["engineer"], assignee=personas["engineer"],
                            reason="on board")
    return obj


def _page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_trail_changelist_says_the_change_in_words(portal, admin_user, assigned):
    html = _page(portal(admin_user), "/admin/audit/audittrail/?q=MR001")
    assert "Status: Pending → Approved; Approved by: empty → PE001 · PE001 Person; Approved at: empty → " in html
    assert "Assigned to: empty → PE001 · PE001 Person" in html
    assert "assigned_to:" not in html and "approved_by:" not in html


def test_field_history_changelist_says_labels_choices_and_people(portal, admin_user, assigned):
    html = _page(portal(admin_user), "/admin/audit/updatehistory/?q=MR001")
    assert '<span title="assigned_to">Assigned to</span>' in html
    assert '<span class="audit-cell-value" title="PE001 · PE001 Person">PE001 · PE001 Person</span>' in html
    assert '<span title="category">Category</span>' in html
    assert 'title="Deck machinery">Deck machinery</span>' in html  # the choice's label, not "deck"
    assert 'title="deck"' not in html


def test_a_user_flag_reads_yes_or_no(portal, admin_user, personas):
    from audit.context import audit_context

    staff = personas["staff"]
    with audit_context(actor=admin_user, reason="left the company"):
        staff.is_active = False
        staff.save()
    html = _page(portal(admin_user), "/admin/audit/updatehistory/?q=ST001")
    assert '<span title="is_active">Is active</span>' in html
    assert 'title="Yes">Yes</span>' in html and 'title="No">No</span>' in html


@pytest.mark.parametrize("url", ["/admin/audit/audittrail/", "/admin/audit/updatehistory/"])
def test_people_of_a_page_are_looked_up_once_not_per_row(portal, admin_user, personas, url):
    from maintenance import services

    client = portal(admin_user)

    def queries() -> int:
        client.get(url)  # warm caches (sessions, content types)
        with CaptureQueriesContext(connection) as ctx:
            _page(client, url)
        return len(ctx.captured_queries)

    services.create_request(actor=personas["staff"], vessel="MV A", title="Pump")
    few = queries()
    for n in range(6):
        obj = services.create_request(actor=personas["other_staff"], vessel="MV B", title=f"Valve {n}")
        services.assign_request(request_obj=obj, actor=personas["engineer"], assignee=personas["engineer"])
    assert queries() == few


# --- people captured at write time (item 1) -------------------------------------------------------


@pytest.fixture
def reassigned(personas):
    """MR001 assigned to PE001 "Priya Eriksen", then reassigned to ST002 "Sam Staff" from an instance
    on which neither account is loaded (both are resolved by the capture itself), then both renamed."""
    from audit.context import audit_context
    from maintenance import services
    from maintenance.models import MaintenanceRequest

    engineer, other = personas["engineer"], personas["other_staff"]
    User = type(engineer)  # noqa: N806
    User.objects.filter(pk=engineer.pk).update(full_name="Priya Eriksen")
    User.objects.filter(pk=other.pk).update(full_name="Sam Staff")
    engineer.refresh_from_db()
    obj = services.create_request(actor=personas["staff"], vessel="MV A", title="Winch")
    services.approve_request(request_obj=obj, actor=engineer, reason="Budget confirmed")
    services.assign_request(request_obj=obj, actor=engineer, assignee=engineer)
    fresh = MaintenanceRequest.objects.get(pk=obj.pk)
    with audit_context(actor=engineer, reason="crew change"):
        fresh.assigned_to_id = other.pk
        fresh.save()
    with audit_context(actor=personas["admin"], reason="married"):
        User.objects.filter(pk=engineer.pk).update(full_name="Priya Renamed")
        User.objects.filter(pk=other.pk).update(full_name="Sam Renamed")
    return obj


def _reassignment(obj):
    from audit.models import AuditTrail

    return AuditTrail.objects.filter(entity_id=obj.code, action_type="assign").latest("id")


def test_the_names_of_both_assignees_are_captured_with_the_change(reassigned):
    trail = _reassignment(reassigned)
    assert trail.displays == {"assigned_to": {"old": "PE001 · Priya Eriksen", "new": "ST002 · Sam Staff"}}
    # the raw codes stay what the API and the exports give
    assert trail.changes["assigned_to"] == {"old": "PE001", "new": "ST002"}
    assert trail.field_changes.get(field_name="assigned_to").new_value == "ST002"


DIFF_CELLS = ('<td class="before"><del>PE001 · Priya Eriksen</del></td>'
              '<td class="after"><ins>ST002 · Sam Staff</ins></td>')


@pytest.mark.parametrize("url", ["/requests/MR001/", "/admin/audit-log?entity_id=MR001&hours=24"])
def test_a_rename_does_not_rewrite_history_on_the_portal_pages(portal, personas, reassigned, url):
    html = _page(portal(personas["admin"]), url)
    assert DIFF_CELLS in html
    # the approval's actor and approver as they were named then
    assert ("PE001 · Priya Eriksen approved maintenance request MR001: Status, approved by, approved at"
            " — &#x27;Budget confirmed&#x27;") in html
    assert "<del>PE001 · Priya Renamed</del>" not in html and "<ins>ST002 · Sam Renamed</ins>" not in html


def test_a_rename_does_not_rewrite_history_in_the_admin(portal, personas, reassigned):
    client = portal(personas["admin"])
    trail = _reassignment(reassigned)
    assert DIFF_CELLS in _page(client, f"/admin/audit/audittrail/{trail.pk}/change/")
    changelist = _page(client, "/admin/audit/audittrail/?q=MR001")
    assert "Assigned to: PE001 · Priya Eriksen → ST002 · Sam Staff" in changelist
    assert "Approved by: empty → PE001 · Priya Eriksen" in changelist
    # the rows (the user filter beside them names the accounts as they are now)
    assert "Renamed" not in changelist.split("<tbody>")[1].split("</tbody>")[0]
    history = _page(client, "/admin/audit/updatehistory/?q=MR001")
    assert 'title="PE001 · Priya Eriksen">PE001 · Priya Eriksen</span>' in history
    assert 'title="ST002 · Sam Staff">ST002 · Sam Staff</span>' in history
    assert "Renamed" not in history.split("<tbody>")[1].split("</tbody>")[0]


def test_an_emergency_keeps_its_reporter_and_assignee_as_named_then(portal, personas):
    from audit.context import audit_context
    from emergencies import services

    engineer = personas["engineer"]
    emergency = services.report_emergency(actor=personas["staff"], vessel="MV B", emergency_type="fire",
                                          description="Smoke in the engine room")
    services.assign_emergency(emergency=emergency, actor=engineer, assignee=engineer)
    with audit_context(actor=personas["admin"]):
        type(engineer).objects.filter(pk=engineer.pk).update(full_name="Someone Else")
        type(engineer).objects.filter(user_id="ST001").update(full_name="Nobody")
    html = _page(portal(personas["admin"]), f"/emergencies/{emergency.code}/")
    assert '<td class="after"><ins>PE001 · PE001 Person</ins></td>' in html  # assigned to
    assert "<td>ST001 · ST001 Person</td>" in html  # reported by, inside "Created with N fields"


def test_an_account_keeps_its_approver_as_named_then(portal, personas, make_user):
    from accounts import services

    newcomer = make_user("ST010", approval_status="pending")
    services.approve_user(user=newcomer, actor=personas["admin"], reason="known crew")
    type(newcomer).objects.filter(user_id="ADM001").update(full_name="Admin Renamed")
    html = _page(portal(personas["admin"]), "/users/ST010/")
    assert '<td class="after"><ins>ADM001 · ADM001 Person</ins></td>' in html


def test_a_delete_and_its_cascade_keep_the_names_of_what_they_referred_to(personas):
    from audit.models import AuditTrail
    from maintenance import services

    obj = services.create_request(actor=personas["staff"], vessel="MV A", title="Winch")
    services.add_comment(request_obj=obj, actor=personas["staff"], body="first")
    obj.refresh_from_db()
    obj.delete()
    comment = AuditTrail.objects.get(entity_type="comment", action_type="delete")
    assert comment.displays == {"request": {"old": "MR001 · Winch", "new": None},
                                "author": {"old": "ST001 · ST001 Person", "new": None}}


def test_a_queryset_update_captures_the_names_with_its_one_lookup(personas):
    from audit.context import audit_context
    from audit.models import AuditTrail
    from maintenance import services
    from maintenance.models import MaintenanceRequest

    for title in ("Winch", "Crane"):
        services.create_request(actor=personas["staff"], vessel="MV A", title=title)
    with audit_context(actor=personas["admin"]):
        MaintenanceRequest.objects.update(assigned_to=personas["engineer"])
    rows = AuditTrail.objects.filter(entity_type="maintenance_request", action_type="assign")
    assert [r.displays for r in rows] == [{"assigned_to": {"old": None, "new": "PE001 · PE001 Person"}}] * 2


def test_a_save_resolving_both_assignees_reads_their_names_with_their_codes(personas):
    """No query more than the codes took: on PostgreSQL none (the save is one statement, pinned in
    tests/audit/capture/test_engine.py), elsewhere the one SELECT of both related rows."""
    from audit.context import audit_context
    from maintenance import services
    from maintenance.models import MaintenanceRequest

    obj = services.create_request(actor=personas["staff"], vessel="MV A", title="Winch")
    MaintenanceRequest.objects.filter(pk=obj.pk).update(assigned_to=personas["engineer"])
    fresh = MaintenanceRequest.objects.get(pk=obj.pk)
    with audit_context(actor=personas["admin"]), CaptureQueriesContext(connection) as ctx:
        fresh.assigned_to_id = personas["other_staff"].pk
        fresh.save()
    users = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT") and "accounts_user" in q["sql"]]
    assert len(users) == (0 if connection.vendor == "postgresql" else 1)
    if connection.vendor == "postgresql":
        assert len(ctx.captured_queries) == 1
    assert _reassignment(obj).displays["assigned_to"] == {"old": "PE001 · PE001 Person",
                                                           "new": "ST002 · ST002 Person"}


@pytest.mark.parametrize("name", ["  Priya Eriksen  ", "   "])
def test_a_name_read_by_the_statement_reads_as_one_read_from_the_object(personas, name):
    """The statement's name (PostgreSQL) and the object's (elsewhere) are one text: trimmed,
    and the code alone for a blank name."""
    from audit.capture.engine import display_text
    from audit.context import audit_context
    from maintenance import services
    from maintenance.models import MaintenanceRequest

    type(personas["other_staff"]).objects.filter(pk=personas["other_staff"].pk).update(full_name=name)
    obj = services.create_request(actor=personas["staff"], vessel="MV A", title="Winch")
    fresh = MaintenanceRequest.objects.get(pk=obj.pk)
    with audit_context(actor=personas["admin"]):
        fresh.assigned_to_id = personas["other_staff"].pk
        fresh.save()
    assert _reassignment(obj).displays["assigned_to"]["new"] == display_text("ST002", name)


# --- people in the CSV exports (item 4) ---------------------------------------------------------


def _csv(response) -> list[list[str]]:
    import csv
    import io

    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_api_export_names_the_actor_as_captured_with_labels_in_the_header(api, personas, reassigned):
    rows = _csv(api(personas["admin"]).get("/api/realtime/export-audit", {"entity_id": "MR001"}))
    assert rows[0][:4] == ["ID", "Time (UTC)", "User", "Action"]
    actors = {row[2] for row in rows[1:] if row and row[5] == "MR001"}
    # PE001 was renamed after approving and reassigning: the file names them as they were then
    assert actors == {"ST001 (ST001 Person)", "PE001 (Priya Eriksen)"}
    # the values themselves stay raw
    reassignment = next(row for row in rows[1:] if row and '"ST002"' in row[7])
    assert '"assigned_to": "PE001"' in reassignment[6]


def test_the_admin_exports_name_people_as_captured_or_as_named_now(portal, personas, reassigned):
    from audit.models import ActivityLog

    client = portal(personas["admin"])
    trail = _csv(client.get("/admin/audit/audittrail/export-csv/", {"q": "MR001"}))
    assert trail[0][2] == "User"
    assert {row[2] for row in trail[1:] if row} == {"ST001 (ST001 Person)", "PE001 (Priya Eriksen)"}
    history = _csv(client.get("/admin/audit/updatehistory/export-csv/", {"q": "MR001"}))
    user = history[0].index("User")
    assert {row[user] for row in history[1:] if row} == {"ST001 (ST001 Person)", "PE001 (Priya Eriksen)"}
    ActivityLog.objects.create(user_id="PE001", activity="=HYPERLINK(\"x\")")
    activities = _csv(client.get("/admin/audit/activitylog/export-csv/", {"user_id": "PE001"}))
    row = next(r for r in activities[1:] if r and r[3].startswith("'="))  # formula-safe
    assert row[2] == "PE001 (Priya Renamed)"  # an activity row captures no name: as named now


def test_an_admin_export_looks_people_up_once_per_chunk_not_per_row(portal, personas):
    from audit.models import ActivityLog

    client = portal(personas["admin"])

    def queries(n: int) -> int:
        ActivityLog.objects.bulk_create([ActivityLog(user_id=f"ST00{1 + i % 2}", activity="Opened page")
                                         for i in range(n)])
        with CaptureQueriesContext(connection) as ctx:
            _csv(client.get("/admin/audit/activitylog/export-csv/"))
        return len(ctx.captured_queries)

    assert queries(3) == queries(30)
