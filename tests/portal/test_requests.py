"""Maintenance requests in the portal: create, edit with a reason, action
buttons shown only to the roles allowed to use them, comments, uploads,
downloads, escaping of recorded data."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models.signals import pre_save

from audit.context import get_context
from maintenance.models import Attachment, MaintenanceRequest
from tests.files import HTML_PAGE, WINDOWS_EXE, pdf_bytes, png_bytes


def _html(response):
    return response.content.decode()


def _action_url(obj, action):
    return f'action="/requests/{obj.code}/{action}/"'


def test_staff_creates_a_request_and_lands_on_its_page(as_, world):
    response = as_("staff").post(
        "/requests/new/",
        {"title": "Fix the windlass", "vessel": "MV Borealis", "category": "deck", "priority": "urgent",
         "due_date": "2030-05-01", "estimated_cost": "1250.50", "description": "Brake slips", "reason": "Seen at drill"},
    )
    obj = MaintenanceRequest.objects.get(title="Fix the windlass")
    assert response.status_code == 302
    assert response["Location"] == f"/requests/{obj.code}/"
    assert obj.code.startswith("MR")
    assert (obj.requested_by, obj.status, obj.priority, str(obj.estimated_cost)) == (world["staff"], "pending", "urgent", "1250.50")
    page = as_("staff").get(response["Location"])
    assert f"Maintenance request {obj.code} was created" in _html(page)
    assert "Brake slips" in _html(page)


def test_staff_form_has_no_assignee_and_manager_form_has_one(as_, world):
    assert 'name="assigned_to"' not in _html(as_("staff").get("/requests/new/"))
    assert 'name="assigned_to"' in _html(as_("engineer").get("/requests/new/"))


def test_create_form_errors_are_shown_not_500(as_, world):
    response = as_("staff").post("/requests/new/", {"title": "", "vessel": "X", "category": "bogus", "priority": "low",
                                                   "estimated_cost": "-4"})
    assert response.status_code == 200
    html = _html(response)
    assert "This field is required." in html
    assert "Select a valid choice." in html
    assert "greater than or equal to 0" in html
    assert MaintenanceRequest.objects.count() == 1


def test_edit_passes_the_change_reason_to_the_service(as_, world):
    obj = world["request"]
    reasons = []

    def spy(sender, instance, **kwargs):
        reasons.append(get_context().reason)

    pre_save.connect(spy, sender=MaintenanceRequest, dispatch_uid="portal-reason-spy")
    try:
        response = as_("staff").post(
            f"/requests/{obj.code}/edit/",
            {"title": "Replace both bilge pumps", "vessel": obj.vessel, "category": obj.category,
             "priority": obj.priority, "description": "", "reason": "Second pump also worn"},
        )
    finally:
        pre_save.disconnect(dispatch_uid="portal-reason-spy")
    assert response.status_code == 302
    obj.refresh_from_db()
    assert obj.title == "Replace both bilge pumps"
    assert reasons == ["Second pump also worn"]


def test_requester_cannot_edit_once_approved(as_, world):
    obj = world["request"]
    as_("engineer").post(f"/requests/{obj.code}/approve/", {"reason": "ok"})
    assert as_("staff").get(f"/requests/{obj.code}/edit/").status_code == 403
    response = as_("staff").post(f"/requests/{obj.code}/edit/", {"title": "Hijack", "vessel": "X", "category": "other",
                                                                 "priority": "low"})
    assert response.status_code == 403
    obj.refresh_from_db()
    assert obj.title == "Replace bilge pump"


@pytest.mark.parametrize(
    "role,visible,hidden",
    [
        ("staff", {"cancel"}, {"approve", "reject", "assign", "start", "complete"}),
        ("engineer", {"approve", "reject", "assign", "cancel"}, {"start", "complete"}),
        ("admin", {"approve", "reject", "assign", "cancel"}, {"start", "complete"}),
    ],
)
def test_action_buttons_on_a_pending_request(role, visible, hidden, as_, world):
    obj = world["request"]
    html = _html(as_(role).get(f"/requests/{obj.code}/"))
    for action in visible:
        assert _action_url(obj, action) in html, action
    for action in hidden:
        assert _action_url(obj, action) not in html, action
    assert (f'href="/requests/{obj.code}/edit/"' in html) is True


def test_assignee_sees_start_then_complete(as_, world):
    obj = world["request"]
    manager = as_("engineer")
    manager.post(f"/requests/{obj.code}/assign/", {"assignee": "ST002", "reason": "Pump specialist"})
    manager.post(f"/requests/{obj.code}/approve/", {"reason": "Budget ok"})
    html = _html(as_("other_staff").get(f"/requests/{obj.code}/"))
    assert _action_url(obj, "start") in html
    assert _action_url(obj, "approve") not in html
    assert _action_url(obj, "cancel") not in html  # not the requester
    assert as_("other_staff").post(f"/requests/{obj.code}/start/", {"reason": "On board"}).status_code == 302
    html = _html(as_("other_staff").get(f"/requests/{obj.code}/"))
    assert _action_url(obj, "complete") in html
    assert _action_url(obj, "start") not in html
    assert as_("other_staff").post(f"/requests/{obj.code}/complete/", {}).status_code == 302
    obj.refresh_from_db()
    assert obj.status == "completed"
    html = _html(as_("engineer").get(f"/requests/{obj.code}/"))
    for action in ("approve", "reject", "assign", "start", "complete", "cancel"):
        assert _action_url(obj, action) not in html
    assert "No status change is available" in html


def test_reject_requires_a_reason(as_, world):
    obj = world["request"]
    response = as_("engineer").post(f"/requests/{obj.code}/reject/", {"reason": "  "}, follow=True)
    assert response.status_code == 200
    assert "Could not reject" in _html(response)
    obj.refresh_from_db()
    assert obj.status == "pending"
    as_("engineer").post(f"/requests/{obj.code}/reject/", {"reason": "Duplicate of MR000", "confirm": "on"})
    obj.refresh_from_db()
    assert (obj.status, obj.rejection_reason) == ("rejected", "Duplicate of MR000")


def test_illegal_transition_is_a_message_not_a_500(as_, world):
    obj = world["request"]
    as_("engineer").post(f"/requests/{obj.code}/approve/", {})
    response = as_("admin").post(f"/requests/{obj.code}/approve/", {}, follow=True)
    assert response.status_code == 200
    assert f"Cannot approve maintenance request {obj.code}" in _html(response)
    assert 'class="message message-error"' in _html(response)


def test_comment_is_posted_and_shown_escaped(as_, world):
    obj = world["request"]
    response = as_("engineer").post(f"/requests/{obj.code}/comments/", {"body": "Bring <b>spares</b>"})
    assert response.status_code == 302
    html = _html(as_("staff").get(f"/requests/{obj.code}/"))
    assert "Bring &lt;b&gt;spares&lt;/b&gt;" in html
    assert "<b>spares</b>" not in html
    assert as_("other_staff").post(f"/requests/{obj.code}/comments/", {"body": "sneaky"}).status_code == 404
    assert obj.comments.count() == 1


def test_upload_then_download_with_permission_checks(as_, world):
    obj = world["request"]
    upload = SimpleUploadedFile("survey.pdf", b"%PDF-1.4 survey", content_type="application/pdf")
    response = as_("engineer").post(f"/requests/{obj.code}/attachments/", {"file": upload})
    assert response.status_code == 302
    attachment = Attachment.objects.get(request=obj, original_name="survey.pdf")
    url = f"/requests/{obj.code}/attachments/{attachment.pk}/download/"
    assert f'href="{url}"' in _html(as_("staff").get(f"/requests/{obj.code}/"))
    download = as_("staff").get(url)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"%PDF-1.4 survey"
    assert 'attachment; filename="survey.pdf"' in download["Content-Disposition"]
    assert as_("other_staff").get(url).status_code == 404
    # an attachment id of another request is not reachable through this one
    other = as_("engineer").post("/requests/new/", {"title": "Other", "vessel": "V", "category": "other", "priority": "low"})
    other_code = other["Location"].split("/")[2]
    assert as_("engineer").get(f"/requests/{other_code}/attachments/{attachment.pk}/download/").status_code == 404


@pytest.mark.parametrize(
    "name,content,message",
    [("virus.exe", b"MZ", "are not allowed"), ("big.txt", b"x" * 2048, "too large")],
)
def test_refused_upload_is_a_message(name, content, message, as_, world):
    obj = world["request"]
    response = as_("staff").post(f"/requests/{obj.code}/attachments/", {"file": SimpleUploadedFile(name, content)},
                                 follow=True)
    assert response.status_code == 200
    assert message in _html(response)
    assert not Attachment.objects.filter(original_name=name).exists()


@pytest.mark.parametrize(
    "name,content,sentence",
    [("invoice.pdf", WINDOWS_EXE, "The content of invoice.pdf is not a PDF document, so it was not uploaded."),
     ("hull.png", HTML_PAGE, "The content of hull.png is not a PNG image, so it was not uploaded.")],
    ids=["exe-as-pdf", "html-as-png"],
)
def test_upload_whose_content_is_not_its_extension_is_refused_in_words(name, content, sentence, as_, world):
    """Issue 11.9 in the portal: the form's page says why, and nothing is stored or recorded."""
    from audit.models import AuditTrail

    obj = world["request"]
    recorded = AuditTrail.objects.filter(entity_type="attachment").count()
    response = as_("staff").post(f"/requests/{obj.code}/attachments/",
                                 {"file": SimpleUploadedFile(name, content, content_type="application/pdf")},
                                 follow=True)
    assert response.status_code == 200
    assert sentence in _html(response)
    assert not Attachment.objects.filter(original_name=name).exists()
    assert AuditTrail.objects.filter(entity_type="attachment").count() == recorded


@pytest.mark.parametrize("name,content,content_type",
                         [("survey.pdf", pdf_bytes(), "application/pdf"), ("hull.png", png_bytes(), "image/png")],
                         ids=["pdf", "png"])
def test_real_pdf_and_png_upload_and_download_as_attachments(name, content, content_type, as_, world):
    obj = world["request"]
    response = as_("staff").post(f"/requests/{obj.code}/attachments/", {"file": SimpleUploadedFile(name, content)},
                                 follow=True)
    assert f"{name} was uploaded." in _html(response)
    attachment = Attachment.objects.get(request=obj, original_name=name)
    download = as_("engineer").get(f"/requests/{obj.code}/attachments/{attachment.pk}/download/")
    assert download.status_code == 200
    assert download["Content-Type"] == content_type
    assert download["Content-Disposition"] == f'attachment; filename="{name}"'
    assert download["X-Content-Type-Options"] == "nosniff"
    assert b"".join(download.streaming_content) == content


def test_script_in_title_is_escaped_everywhere(as_, world):
    payload = "<script>alert('x')</script>"
    response = as_("staff").post("/requests/new/", {"title": payload, "vessel": "<img src=x onerror=alert(1)>",
                                                   "category": "other", "priority": "low"})
    code = response["Location"].split("/")[2]
    for client, path in [(as_("staff"), f"/requests/{code}/"), (as_("staff"), "/requests/"), (as_("engineer"), "/"),
                         (as_("staff"), "/")]:
        html = _html(client.get(path))
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html, path
        assert "<script>" not in html, path
        assert "<img src=x" not in html, path


def test_list_filters_search_and_pagination(as_, world):
    from maintenance import services

    for i in range(25):
        services.create_request(actor=world["engineer"], vessel=f"Tug {i}", title=f"Paint hull {i}",
                                priority="low" if i % 2 else "urgent", category="hull")
    client = as_("engineer")
    page1 = _html(client.get("/requests/"))
    assert "Showing 1–20 of 26" in page1
    assert "page=2" in page1
    page2 = _html(client.get("/requests/?page=2"))
    assert "Showing 21–26 of 26" in page2
    urgent = _html(client.get("/requests/?priority=urgent&category=hull"))
    assert "of 13" in urgent
    assert _html(client.get("/requests/?q=Tug+7")).count("Paint hull 7") == 1
    assert "Replace bilge pump" in _html(client.get(f"/requests/?q={world['request'].code}"))
    # an unknown filter value is a form error, not a 500, and filters nothing
    bad = client.get("/requests/?status=exploded&page=abc")
    assert bad.status_code == 200
    assert "Select a valid choice" in _html(bad)


def test_staff_list_shows_only_their_own_requests(as_, world):
    as_("other_staff").post("/requests/new/", {"title": "Other staff thing", "vessel": "V", "category": "other",
                                              "priority": "low"})
    mine = _html(as_("staff").get("/requests/"))
    assert "Replace bilge pump" in mine
    assert "Other staff thing" not in mine
    assert "Other staff thing" in _html(as_("engineer").get("/requests/"))
