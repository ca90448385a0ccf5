"""The maintenance and inventory API: permission matrix, transitions, bad input,
filters, comments, attachments and downloads."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models.signals import post_save
from rest_framework.test import APIClient

from maintenance import services
from maintenance.models import Attachment, Comment, InventoryItem, MaintenanceRequest, StockAdjustment
from tests.files import HTML_PAGE, WINDOWS_EXE, pdf_bytes, png_bytes

pytestmark = pytest.mark.django_db

ENVELOPE_CODES = {401: "not_authenticated", 403: "permission_denied", 404: "not_found", 405: "method_not_allowed"}


def assert_envelope(response, status, *, code=None, fields=()):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert set(body["error"]) >= {"code", "message"}
    assert body["error"]["message"]
    expected_code = code or ENVELOPE_CODES.get(status)
    if expected_code:
        assert body["error"]["code"] == expected_code
    for field in fields:
        assert field in body["error"].get("fields", {}), body
    return body


@pytest.fixture
def clients(personas, api):
    return {
        "anonymous": APIClient(),
        "staff": api(personas["staff"]),
        "other_staff": api(personas["other_staff"]),
        "engineer": api(personas["engineer"]),
        "admin": api(personas["admin"]),
    }


def _upload(name="report.pdf", content=b"%PDF-1.4 pump"):
    return SimpleUploadedFile(name, content, content_type="application/pdf")


# ---- permission matrix -----------------------------------------------------------------

WHO = ["anonymous", "staff", "other_staff", "engineer", "admin"]

# (label, method, url, body, status of ST001's request MR001, expected per WHO)
MATRIX = [
    ("list", "get", "/api/maintenance-requests/", None, "pending", [401, 200, 200, 200, 200]),
    (
        "create",
        "post",
        "/api/maintenance-requests/",
        {"vessel": "MV B", "title": "Radar"},
        "pending",
        [401, 201, 201, 201, 201],
    ),
    ("retrieve", "get", "/api/maintenance-requests/MR001/", None, "pending", [401, 200, 404, 200, 200]),
    ("patch", "patch", "/api/maintenance-requests/MR001/", {"title": "New"}, "pending", [401, 200, 404, 200, 200]),
    (
        "put",
        "put",
        "/api/maintenance-requests/MR001/",
        {"vessel": "MV C", "title": "New"},
        "pending",
        [401, 200, 404, 200, 200],
    ),
    (
        "patch-approved",
        "patch",
        "/api/maintenance-requests/MR001/",
        {"title": "New"},
        "approved",
        [401, 403, 404, 200, 200],
    ),
    ("approve", "post", "/api/maintenance-requests/MR001/approve/", {}, "pending", [401, 403, 404, 200, 200]),
    (
        "reject",
        "post",
        "/api/maintenance-requests/MR001/reject/",
        {"reason": "No budget"},
        "pending",
        [401, 403, 404, 200, 200],
    ),
    (
        "assign",
        "post",
        "/api/maintenance-requests/MR001/assign/",
        {"assigned_to": "ST001"},
        "pending",
        [401, 403, 404, 200, 200],
    ),
    ("start", "post", "/api/maintenance-requests/MR001/start/", {}, "approved", [401, 403, 404, 200, 200]),
    ("complete", "post", "/api/maintenance-requests/MR001/complete/", {}, "in_progress", [401, 403, 404, 200, 200]),
    ("cancel", "post", "/api/maintenance-requests/MR001/cancel/", {"change_reason": "Not needed"}, "pending",
     [401, 200, 404, 200, 200]),
    ("cancel-running", "post", "/api/maintenance-requests/MR001/cancel/", {"change_reason": "Not needed"},
     "in_progress", [401, 403, 404, 200, 200]),
    ("comments", "get", "/api/maintenance-requests/MR001/comments/", None, "pending", [401, 200, 404, 200, 200]),
    (
        "comment",
        "post",
        "/api/maintenance-requests/MR001/comments/",
        {"body": "Hello"},
        "pending",
        [401, 201, 404, 201, 201],
    ),
    ("attachments", "get", "/api/maintenance-requests/MR001/attachments/", None, "pending", [401, 200, 404, 200, 200]),
    ("upload", "upload", "/api/maintenance-requests/MR001/attachments/", None, "pending", [401, 201, 404, 201, 201]),
    (
        "download",
        "get",
        "/api/maintenance-requests/MR001/attachments/{att}/download/",
        None,
        "pending",
        [401, 200, 404, 200, 200],
    ),
    ("inventory-list", "get", "/api/inventory/", None, "pending", [401, 200, 200, 200, 200]),
    (
        "inventory-create",
        "post",
        "/api/inventory/",
        {"part_number": "NEW-1", "name": "Gasket"},
        "pending",
        [401, 403, 403, 201, 201],
    ),
    ("inventory-retrieve", "get", "/api/inventory/INV001/", None, "pending", [401, 200, 200, 200, 200]),
    ("inventory-patch", "patch", "/api/inventory/INV001/", {"name": "Filter v2"}, "pending", [401, 403, 403, 200, 200]),
    (
        "inventory-put",
        "put",
        "/api/inventory/INV001/",
        {"part_number": "FLT-1", "name": "Filter v3"},
        "pending",
        [401, 403, 403, 200, 200],
    ),
    (
        "inventory-adjust",
        "post",
        "/api/inventory/INV001/adjust/",
        {"quantity_change": -1, "reason": "Used"},
        "pending",
        [401, 403, 403, 200, 200],
    ),
    ("inventory-ledger", "get", "/api/inventory/INV001/adjustments/", None, "pending", [401, 200, 200, 200, 200]),
]


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(("label", "method", "url", "body", "status", "expected"), MATRIX, ids=[m[0] for m in MATRIX])
def test_permission_matrix(personas, clients, make_request, make_item, who, label, method, url, body, status, expected):
    obj = make_request(personas["staff"], status=status)
    make_item("FLT-1", quantity_on_hand=5)
    attachment = services.add_attachment(request_obj=obj, actor=personas["staff"], uploaded_file=_upload())
    url = url.format(att=attachment.pk)
    client = clients[who]
    if method == "upload":
        response = client.post(url, {"file": _upload("photo.png", png_bytes())}, format="multipart")
    elif body is None:
        response = getattr(client, method)(url)
    else:
        response = getattr(client, method)(url, body, format="json")
    want = expected[WHO.index(who)]
    if want >= 400:
        assert_envelope(response, want)
    else:
        assert response.status_code == want, response.content


def test_staff_list_shows_only_own_and_assigned_requests(personas, clients, make_request):
    mine = make_request(personas["staff"])
    assigned = make_request(personas["other_staff"], assignee=personas["staff"])
    make_request(personas["other_staff"])
    codes = [r["code"] for r in clients["staff"].get("/api/maintenance-requests/").json()["results"]]
    assert codes == [assigned.code, mine.code]  # newest first
    assert clients["engineer"].get("/api/maintenance-requests/").json()["total"] == 3


def test_assignee_may_see_start_and_complete(personas, clients, make_request):
    obj = make_request(personas["staff"], status="approved", assignee=personas["other_staff"])
    c = clients["other_staff"]
    assert c.get(f"/api/maintenance-requests/{obj.code}/").status_code == 200
    assert c.post(f"/api/maintenance-requests/{obj.code}/start/", {}, format="json").json()["status"] == "in_progress"
    data = c.post(f"/api/maintenance-requests/{obj.code}/complete/", {}, format="json").json()
    assert data["status"] == "completed"
    assert data["completed_at"].endswith("Z") and len(data["completed_at"]) == len("2025-01-20T14:30:45.123Z")


# ---- representation -------------------------------------------------------------------


def test_create_returns_codes_user_ids_and_display_fields(personas, clients):
    response = clients["engineer"].post(
        "/api/maintenance-requests/",
        {
            "vessel": "MV Aurora",
            "title": "Radar fault",
            "category": "navigation",
            "priority": "urgent",
            "due_date": "2030-01-31",
            "estimated_cost": "1500.00",
            "assigned_to": "st001",
            "change_reason": "Reported by bridge",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["code"] == "MR001"
    assert data["requested_by"] == "PE001"
    assert data["assigned_to"] == "ST001"
    assert data["assigned_to_name"] == "ST001 Person"
    assert (data["category_display"], data["priority_display"], data["status_display"]) == (
        "Navigation",
        "Urgent",
        "Pending",
    )
    assert data["estimated_cost"] == "1500.00"
    assert data["due_date"] == "2030-01-31"
    assert "change_reason" not in data
    assert sorted(data["allowed_actions"]) == ["approve", "assign", "cancel", "comment", "edit", "reject", "upload"]


def test_change_reason_reaches_the_audit_context(personas, clients, make_request):
    from audit.context import get_context

    obj = make_request(personas["staff"])
    seen = []

    def spy(sender, instance, **kwargs):
        seen.append(get_context().reason)

    post_save.connect(spy, sender=MaintenanceRequest, dispatch_uid="test-reason-spy")
    try:
        clients["staff"].patch(
            f"/api/maintenance-requests/{obj.code}/",
            {"title": "Bigger pump", "change_reason": "Pump too small"},
            format="json",
        )
        clients["engineer"].post(
            f"/api/maintenance-requests/{obj.code}/approve/", {"change_reason": "Budget ok"}, format="json"
        )
    finally:
        post_save.disconnect(dispatch_uid="test-reason-spy")
    assert seen == ["Pump too small", "Budget ok"]


# ---- transitions over the API -----------------------------------------------------------

LEGAL = {
    "approve": {"pending"},
    "reject": {"pending"},
    "start": {"approved"},
    "complete": {"in_progress"},
    "cancel": {"pending", "approved", "in_progress"},
}
TARGET = {
    "approve": "approved",
    "reject": "rejected",
    "start": "in_progress",
    "complete": "completed",
    "cancel": "cancelled",
}


@pytest.mark.parametrize("action", sorted(LEGAL))
@pytest.mark.parametrize("status", ["pending", "approved", "rejected", "in_progress", "completed", "cancelled"])
def test_transition_over_api(personas, clients, make_request, action, status):
    obj = make_request(personas["staff"], status=status)
    before = MaintenanceRequest.objects.filter(pk=obj.pk).values().get()
    body = {"reason": "No budget"} if action == "reject" else {"change_reason": "No longer needed"} if action == "cancel" else {}
    response = clients["admin"].post(f"/api/maintenance-requests/{obj.code}/{action}/", body, format="json")
    if status in LEGAL[action]:
        assert response.status_code == 200, response.content
        assert response.json()["status"] == TARGET[action]
    else:
        body = assert_envelope(response, 409, code="invalid_transition")
        assert obj.code in body["error"]["message"]
        assert MaintenanceRequest.objects.filter(pk=obj.pk).values().get() == before


def test_approve_over_api_stamps_approver(personas, clients, make_request):
    obj = make_request(personas["staff"])
    data = clients["engineer"].post(f"/api/maintenance-requests/{obj.code}/approve/", {}, format="json").json()
    assert data["approved_by"] == "PE001"
    assert data["approved_at"].endswith("Z")


def test_wrong_role_refusal_changes_nothing(personas, clients, make_request):
    obj = make_request(personas["staff"])
    before = MaintenanceRequest.objects.filter(pk=obj.pk).values().get()
    assert_envelope(clients["staff"].post(f"/api/maintenance-requests/{obj.code}/approve/", {}, format="json"), 403)
    assert_envelope(
        clients["staff"].post(f"/api/maintenance-requests/{obj.code}/assign/", {"assigned_to": "ST001"}, format="json"),
        403,
    )
    assert MaintenanceRequest.objects.filter(pk=obj.pk).values().get() == before


def test_edit_of_completed_request_is_409(personas, clients, make_request):
    obj = make_request(personas["staff"], status="completed")
    assert_envelope(
        clients["admin"].patch(f"/api/maintenance-requests/{obj.code}/", {"title": "Late"}, format="json"),
        409,
        code="invalid_transition",
    )
    obj.refresh_from_db()
    assert obj.title == "Replace bilge pump"


# ---- bad input ---------------------------------------------------------------------------


def test_malformed_json_is_400_envelope(clients):
    response = clients["staff"].post("/api/maintenance-requests/", data="{bad json", content_type="application/json")
    assert_envelope(response, 400, code="invalid")
    response = clients["staff"].post("/api/maintenance-requests/", data="[1, 2]", content_type="application/json")
    assert_envelope(response, 400)
    assert MaintenanceRequest.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "vessel"),
        ({"vessel": "MV A"}, "title"),
        ({"vessel": "MV A", "title": {"x": 1}}, "title"),
        ({"vessel": "MV A", "title": "T", "estimated_cost": "-5"}, "estimated_cost"),
        ({"vessel": "MV A", "title": "T", "estimated_cost": "abc"}, "estimated_cost"),
        ({"vessel": "MV A", "title": "T", "estimated_cost": "1.005"}, "estimated_cost"),
        ({"vessel": "MV A", "title": "T", "due_date": 12}, "due_date"),
        ({"vessel": "MV A", "title": "T", "priority": "asap"}, "priority"),
        ({"vessel": "MV A", "title": "T", "category": ["engine"]}, "category"),
        ({"vessel": "MV A", "title": "T", "status": "completed"}, "status"),
        ({"vessel": "MV A", "title": "T\x00"}, "title"),
        ({"vessel": "x" * 121, "title": "T"}, "vessel"),
    ],
)
def test_create_bad_fields_are_400_naming_the_field(clients, body, field):
    assert_envelope(clients["staff"].post("/api/maintenance-requests/", body, format="json"), 400, fields=[field])
    assert MaintenanceRequest.objects.count() == 0


def test_staff_assigning_at_creation_is_403(clients):
    response = clients["staff"].post(
        "/api/maintenance-requests/", {"vessel": "MV A", "title": "T", "assigned_to": "ST002"}, format="json"
    )
    assert_envelope(response, 403)
    assert MaintenanceRequest.objects.count() == 0


def test_patch_status_is_refused(personas, clients, make_request):
    obj = make_request(personas["staff"])
    assert_envelope(
        clients["admin"].patch(f"/api/maintenance-requests/{obj.code}/", {"status": "completed"}, format="json"),
        400,
        fields=["status"],
    )
    obj.refresh_from_db()
    assert obj.status == "pending"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/maintenance-requests/MR999/"),
        ("patch", "/api/maintenance-requests/MR999/"),
        ("post", "/api/maintenance-requests/MR999/approve/"),
        ("get", "/api/maintenance-requests/MR999/comments/"),
        ("get", "/api/maintenance-requests/MR001/attachments/999/download/"),
        ("get", "/api/inventory/INV999/"),
        ("post", "/api/inventory/INV999/adjust/"),
        ("get", "/api/maintenance-requests/MR-1/"),
    ],
)
def test_unknown_codes_are_404_envelope(personas, clients, make_request, method, url):
    make_request(personas["staff"])
    assert_envelope(getattr(clients["admin"], method)(url, {}, format="json"), 404)


def test_attachment_of_another_request_is_404(personas, clients, make_request):
    first = make_request(personas["staff"])
    second = make_request(personas["staff"])
    attachment = services.add_attachment(request_obj=second, actor=personas["staff"], uploaded_file=_upload())
    assert_envelope(
        clients["staff"].get(f"/api/maintenance-requests/{first.code}/attachments/{attachment.pk}/download/"), 404
    )


def test_delete_is_405_envelope(personas, clients, make_request):
    obj = make_request(personas["staff"])
    assert_envelope(clients["admin"].delete(f"/api/maintenance-requests/{obj.code}/"), 405)
    assert MaintenanceRequest.objects.filter(pk=obj.pk).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "assigned_to"),
        ({"assigned_to": "NOBODY"}, "assigned_to"),
        ({"assigned_to": 5}, "assigned_to"),
        ({"assigned_to": "ST010"}, "assigned_to"),
    ],
)
def test_assign_bad_user_is_400(personas, clients, make_request, make_user, body, field):
    make_user("ST010", approval_status="pending")
    obj = make_request(personas["staff"])
    assert_envelope(
        clients["admin"].post(f"/api/maintenance-requests/{obj.code}/assign/", body, format="json"), 400, fields=[field]
    )
    obj.refresh_from_db()
    assert obj.assigned_to is None


def test_reject_without_reason_is_400_and_changes_nothing(personas, clients, make_request):
    obj = make_request(personas["staff"])
    for body in ({}, {"reason": "   "}, {"change_reason": ""}, {"change_reason": "A", "reason": "B"}):
        assert_envelope(
            clients["admin"].post(f"/api/maintenance-requests/{obj.code}/reject/", body, format="json"),
            400,
            fields=["change_reason"],
        )
    obj.refresh_from_db()
    assert obj.status == "pending"
    data = (
        clients["admin"]
        .post(f"/api/maintenance-requests/{obj.code}/reject/", {"reason": "Duplicate"}, format="json")
        .json()
    )
    assert (data["status"], data["rejection_reason"]) == ("rejected", "Duplicate")


def test_reject_with_change_reason_alone_is_recorded_as_the_rejection_reason(personas, clients, make_request):
    from audit.models import AuditTrail

    obj = make_request(personas["staff"])
    response = clients["engineer"].post(f"/api/maintenance-requests/{obj.code}/reject/",
                                        {"change_reason": "Duplicate of MR002"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["rejection_reason"]) == ("rejected", "Duplicate of MR002")
    row = AuditTrail.objects.filter(entity_id=obj.code).latest("id")
    assert (row.user_id, row.change_reason, row.source) == ("PE001", "Duplicate of MR002", "captured")
    assert row.changes["status"] == {"old": "pending", "new": "rejected"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=bogus", "status"),
        ("priority=asap", "priority"),
        ("created_after=yesterday", "created_after"),
        ("ordering=password", "ordering"),
    ],
)
def test_bad_filters_are_400(clients, query, field):
    assert_envelope(clients["admin"].get(f"/api/maintenance-requests/?{query}"), 400, fields=[field])


@pytest.mark.parametrize(
    ("query", "field"), [("below_minimum=maybe", "below_minimum"), ("ordering=secret", "ordering")]
)
def test_bad_inventory_filters_are_400(clients, query, field):
    assert_envelope(clients["staff"].get(f"/api/inventory/?{query}"), 400, fields=[field])


# ---- filters -------------------------------------------------------------------------------


def test_request_filters(personas, clients, make_request):
    a = make_request(personas["staff"], vessel="MV Aurora", title="Bilge pump", priority="high", category="engine")
    b = make_request(
        personas["staff"], status="approved", vessel="MV Borealis", title="Radar", description="bridge radar"
    )
    c = make_request(personas["other_staff"], assignee=personas["staff"], vessel="MV Aurora", title="Winch")
    c_client = clients["engineer"]

    def codes(query):
        response = c_client.get(f"/api/maintenance-requests/?{query}")
        assert response.status_code == 200, response.content
        return [r["code"] for r in response.json()["results"]]

    assert codes("status=approved") == [b.code]
    assert codes("status=pending&status=approved") == [c.code, b.code, a.code]
    assert codes("priority=high") == [a.code]
    assert codes("category=engine") == [a.code]
    assert codes("vessel=aurora") == [c.code, a.code]
    assert codes("requested_by=st002") == [c.code]
    assert codes("assigned_to=ST001") == [c.code]
    assert codes("search=bridge") == [b.code]
    assert codes(f"search={a.code}") == [a.code]
    assert codes("created_after=2000-01-01&created_before=2999-12-31") == [c.code, b.code, a.code]
    assert codes("created_before=2000-01-01") == []
    assert codes("ordering=created_at") == [a.code, b.code, c.code]


def test_inventory_filters(clients, make_item):
    low = make_item("FLT-1", name="Oil filter", quantity_on_hand=1, minimum_stock=5, location="Store A")
    ok = make_item("GSK-2", name="Gasket", quantity_on_hand=9, minimum_stock=2, location="Store B")

    def codes(query):
        response = clients["staff"].get(f"/api/inventory/?{query}")
        assert response.status_code == 200, response.content
        return [r["code"] for r in response.json()["results"]]

    assert codes("") == [ok.code, low.code]
    assert codes("below_minimum=true") == [low.code]
    assert codes("below_minimum=false") == [ok.code]
    assert codes("location=store a") == [low.code]
    assert codes("search=gask") == [ok.code]
    assert clients["staff"].get(f"/api/inventory/{low.code}/").json()["below_minimum"] is True


# ---- comments ------------------------------------------------------------------------------


def test_comments_list_newest_first_and_post(personas, clients, make_request):
    obj = make_request(personas["staff"])
    url = f"/api/maintenance-requests/{obj.code}/comments/"
    assert clients["staff"].post(url, {"body": "First"}, format="json").status_code == 201
    created = clients["engineer"].post(url, {"body": "Second", "change_reason": "reply"}, format="json").json()
    assert (created["author"], created["request"], created["body"]) == ("PE001", obj.code, "Second")
    data = clients["staff"].get(url).json()
    assert data["success"] is True and data["total"] == 2
    assert [c["body"] for c in data["results"]] == ["Second", "First"]


@pytest.mark.parametrize("body", [{}, {"body": ""}, {"body": "x" * 5001}, {"body": ["a"]}])
def test_bad_comment_is_400(personas, clients, make_request, body):
    obj = make_request(personas["staff"])
    assert_envelope(
        clients["staff"].post(f"/api/maintenance-requests/{obj.code}/comments/", body, format="json"),
        400,
        fields=["body"],
    )
    assert Comment.objects.count() == 0


# ---- attachments ----------------------------------------------------------------------------


def test_upload_list_and_download(personas, clients, make_request, signals_log):
    obj = make_request(personas["staff"])
    url = f"/api/maintenance-requests/{obj.code}/attachments/"
    response = clients["staff"].post(
        url, {"file": _upload("../Pump Report.pdf", b"%PDF pump"), "change_reason": "evidence"}, format="multipart"
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["original_name"], data["content_type"], data["size"], data["uploaded_by"]) == (
        "Pump Report.pdf",
        "application/pdf",
        9,
        "ST001",
    )
    listing = clients["engineer"].get(url).json()
    assert [a["id"] for a in listing["results"]] == [data["id"]]

    download = clients["engineer"].get(data["download_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"] == 'attachment; filename="Pump Report.pdf"'
    assert b"".join(download.streaming_content) == b"%PDF pump"
    activities = [a["activity"] for a in signals_log["activity"]]
    assert activities.count("Uploaded attachment") == 1
    assert activities.count("Downloaded attachment") == 1


def test_download_refused_to_outsiders_without_activity(personas, clients, make_request, signals_log):
    obj = make_request(personas["staff"])
    attachment = services.add_attachment(request_obj=obj, actor=personas["staff"], uploaded_file=_upload())
    url = f"/api/maintenance-requests/{obj.code}/attachments/{attachment.pk}/download/"
    assert_envelope(clients["other_staff"].get(url), 404)
    assert_envelope(clients["anonymous"].get(url), 401)
    assert "Downloaded attachment" not in [a["activity"] for a in signals_log["activity"]]


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("big.pdf", b"x" * 1025, "file_too_large"),
        ("script.exe", b"MZ", "file_type"),
        ("page.html", b"<b>", "file_type"),
    ],
)
def test_upload_refusals_are_400(personas, clients, make_request, name, content, code):
    obj = make_request(personas["staff"])
    response = clients["staff"].post(
        f"/api/maintenance-requests/{obj.code}/attachments/",
        {"file": SimpleUploadedFile(name, content)},
        format="multipart",
    )
    assert_envelope(response, 400, code=code, fields=["file"])
    assert Attachment.objects.count() == 0


@pytest.mark.parametrize(
    ("name", "content", "sentence"),
    [
        ("invoice.pdf", WINDOWS_EXE, "The content of invoice.pdf is not a PDF document"),
        ("hull.png", HTML_PAGE, "The content of hull.png is not a PNG image"),
        ("notes.txt", WINDOWS_EXE, "The content of notes.txt is not plain text"),
        ("photo.jpg", png_bytes(), "The content of photo.jpg is not a JPEG image"),
    ],
    ids=["exe-as-pdf", "html-as-png", "exe-as-txt", "png-as-jpg"],
)
def test_upload_whose_content_is_not_its_extension_is_400_and_stores_nothing(
    personas, clients, make_request, signals_log, settings, name, content, sentence
):
    """Issue 11.9: the type is checked from the bytes, not the name (nor the client's Content-Type)."""
    from audit.models import AuditTrail

    obj = make_request(personas["staff"])
    response = clients["staff"].post(
        f"/api/maintenance-requests/{obj.code}/attachments/",
        {"file": SimpleUploadedFile(name, content, content_type="application/pdf")},
        format="multipart",
    )
    body = assert_envelope(response, 400, code="file_content", fields=["file"])
    assert body["error"]["message"].startswith(sentence)
    assert Attachment.objects.count() == 0
    assert not AuditTrail.objects.filter(entity_type="attachment").exists()
    assert "Uploaded attachment" not in [a["activity"] for a in signals_log["activity"]]
    stored = settings.MEDIA_ROOT / "attachments"
    assert not stored.exists() or not any(p.is_file() for p in stored.rglob("*"))


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [("survey.pdf", pdf_bytes(), "application/pdf"), ("hull.png", png_bytes(), "image/png")],
    ids=["pdf", "png"],
)
def test_real_pdf_and_png_are_accepted_and_downloaded_as_attachments(
    personas, clients, make_request, name, content, content_type
):
    from audit.models import AuditTrail

    obj = make_request(personas["staff"])
    response = clients["staff"].post(
        f"/api/maintenance-requests/{obj.code}/attachments/",
        {"file": SimpleUploadedFile(name, content, content_type="application/octet-stream")},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["content_type"] == content_type
    assert AuditTrail.objects.filter(entity_type="attachment", action_type="create").count() == 1
    download = clients["engineer"].get(response.json()["download_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == content_type
    assert download["Content-Disposition"] == f'attachment; filename="{name}"'
    assert download["X-Content-Type-Options"] == "nosniff"
    assert b"".join(download.streaming_content) == content


def test_upload_without_file_or_as_json_is_4xx(personas, clients, make_request):
    obj = make_request(personas["staff"])
    url = f"/api/maintenance-requests/{obj.code}/attachments/"
    assert_envelope(clients["staff"].post(url, {}, format="multipart"), 400, fields=["file"])
    assert_envelope(clients["staff"].post(url, {"file": "abc"}, format="json"), 415, code="unsupported_media_type")
    assert_envelope(clients["staff"].post(url, {"file": _upload("empty.pdf", b"")}, format="multipart"), 400)
    assert Attachment.objects.count() == 0


# ---- inventory -------------------------------------------------------------------------------


def test_inventory_create_update_and_adjust(personas, clients):
    c = clients["engineer"]
    created = c.post(
        "/api/inventory/",
        {
            "part_number": "FLT-1",
            "name": "Oil filter",
            "location": "Store A",
            "quantity_on_hand": 4,
            "minimum_stock": 2,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["code"] == "INV001"
    result = c.post("/api/inventory/INV001/adjust/", {"quantity_change": -3, "reason": "MR001 service"}, format="json")
    assert result.status_code == 200, result.content
    data = result.json()
    assert data["item"]["quantity_on_hand"] == 1
    assert data["item"]["below_minimum"] is True
    assert (data["adjustment"]["quantity_change"], data["adjustment"]["resulting_quantity"]) == (-3, 1)
    assert data["adjustment"]["adjusted_by"] == "PE001"
    ledger = c.get("/api/inventory/INV001/adjustments/").json()
    assert [(r["quantity_change"], r["reason"]) for r in ledger["results"]] == [
        (-3, "MR001 service"),
        (4, "Initial stock"),
    ]
    patched = c.patch("/api/inventory/INV001/", {"quantity_on_hand": 10, "change_reason": "Count"}, format="json")
    assert patched.json()["quantity_on_hand"] == 10
    assert StockAdjustment.objects.filter(item__code="INV001").count() == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantity_change": -6, "reason": "Too many"}, "quantity_change"),
        ({"quantity_change": 0, "reason": "Zero"}, "quantity_change"),
        ({"quantity_change": "abc", "reason": "Text"}, "quantity_change"),
        ({"quantity_change": 1.5, "reason": "Half"}, "quantity_change"),
        ({"quantity_change": 2}, "reason"),
        ({"quantity_change": 2, "reason": ""}, "reason"),
        ({"reason": "No number"}, "quantity_change"),
    ],
)
def test_bad_adjustments_are_400_and_change_nothing(clients, make_item, body, field):
    item = make_item("FLT-1", quantity_on_hand=5)
    assert_envelope(
        clients["admin"].post(f"/api/inventory/{item.code}/adjust/", body, format="json"), 400, fields=[field]
    )
    item.refresh_from_db()
    assert item.quantity_on_hand == 5
    assert StockAdjustment.objects.filter(item=item).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "No part number"}, "part_number"),
        ({"part_number": "P-1", "name": "X", "quantity_on_hand": -1}, "quantity_on_hand"),
        ({"part_number": "P-1", "name": "X", "minimum_stock": "lots"}, "minimum_stock"),
        ({"part_number": "flt-1", "name": "Duplicate"}, "part_number"),
        ({"part_number": "P-1", "name": "X", "code": "INV777"}, "code"),
    ],
)
def test_bad_inventory_items_are_400(clients, make_item, body, field):
    make_item("FLT-1")
    assert_envelope(clients["admin"].post("/api/inventory/", body, format="json"), 400, fields=[field])
    assert InventoryItem.objects.count() == 1


def test_cancel_without_change_reason_is_400_and_changes_nothing(personas, clients, make_request):
    obj = make_request(personas["staff"])
    for body in ({}, {"change_reason": "  "}):
        assert_envelope(clients["staff"].post(f"/api/maintenance-requests/{obj.code}/cancel/", body, format="json"),
                        400, fields=["change_reason"])
    obj.refresh_from_db()
    assert obj.status == "pending"
    response = clients["staff"].post(f"/api/maintenance-requests/{obj.code}/cancel/",
                                     {"change_reason": "Fixed by the crew"}, format="json")
    assert response.json()["status"] == "cancelled"
    from audit.models import ActivityLog, AuditTrail

    row = AuditTrail.objects.filter(entity_id=obj.code, status="completed").latest("id")
    assert (row.user_id, row.change_reason) == ("ST001", "Fixed by the crew")
    assert ActivityLog.objects.filter(user_id="ST001", activity=f"Cancelled maintenance request {obj.code}",
                                      details="Reason: Fixed by the crew").count() == 1


def test_four_eyes_nobody_approves_their_own_request(personas, clients):
    from audit.models import AuditTrail

    created = clients["engineer"].post("/api/maintenance-requests/", {"vessel": "MV C", "title": "Own"},
                                       format="json").json()
    code = created["code"]
    refused = clients["engineer"].post(f"/api/maintenance-requests/{code}/approve/",
                                       {"change_reason": "Looks fine"}, format="json")
    assert_envelope(refused, 403)
    assert "your own maintenance request" in refused.json()["error"]["message"]
    failed = AuditTrail.objects.get(entity_id=code, status="failed")
    assert (failed.user_id, failed.action_type) == ("PE001", "approve")
    assert "your own maintenance request" in failed.error_message
    # another manager may
    assert clients["admin"].post(f"/api/maintenance-requests/{code}/approve/", {}, format="json").status_code == 200


def test_an_admin_overrides_four_eyes_only_with_a_reason_and_it_is_recorded(personas, clients):
    from audit.models import ActivityLog, AuditTrail

    code = clients["admin"].post("/api/maintenance-requests/", {"vessel": "MV C", "title": "Own"},
                                 format="json").json()["code"]
    assert_envelope(clients["admin"].post(f"/api/maintenance-requests/{code}/approve/", {}, format="json"), 403)
    ok = clients["admin"].post(f"/api/maintenance-requests/{code}/approve/",
                               {"change_reason": "Only manager on duty"}, format="json")
    assert ok.status_code == 200 and ok.json()["status"] == "approved"
    row = AuditTrail.objects.get(entity_id=code, action_type="approve", status="completed")
    assert row.change_reason == "Four-eyes override (own request): Only manager on duty"
    assert ActivityLog.objects.filter(
        user_id="ADM001",
        activity=f"Approved maintenance request {code} (four-eyes override of an own request)").count() == 1
