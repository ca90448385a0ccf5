"""The maintenance services: the rules every entry point shares."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile

from core.errors import DomainError, TransitionError
from maintenance import services
from maintenance.models import Attachment, Comment, InventoryItem, MaintenanceRequest, StockAdjustment

pytestmark = pytest.mark.django_db

ALL = ["pending", "approved", "rejected", "in_progress", "completed", "cancelled"]
LEGAL_FROM = {
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


def _do(action, obj, actor):
    func = getattr(services, f"{action}_request")
    if action == "reject":
        return func(request_obj=obj, actor=actor, reason="Out of budget")
    return func(request_obj=obj, actor=actor)


# ---- create -------------------------------------------------------------------------


def test_create_request_assigns_sequential_codes_and_starts_pending(personas):
    first = services.create_request(actor=personas["staff"], vessel="MV Aurora", title="Bilge pump")
    second = services.create_request(
        actor=personas["staff"],
        vessel=" MV Borealis ",
        title="Radar",
        category="navigation",
        priority="urgent",
        due_date="2030-05-01",
        estimated_cost="1250.50",
    )
    assert (first.code, second.code) == ("MR001", "MR002")
    assert first.status == "pending"
    assert first.requested_by == personas["staff"]
    second.refresh_from_db()
    assert second.vessel == "MV Borealis"
    assert second.due_date == dt.date(2030, 5, 1)
    assert second.estimated_cost == Decimal("1250.50")
    assert (second.category, second.priority) == ("navigation", "urgent")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": "  "}, "title"),
        ({"vessel": ""}, "vessel"),
        ({"category": "spaceship"}, "category"),
        ({"priority": "asap"}, "priority"),
        ({"estimated_cost": "-1"}, "estimated_cost"),
        ({"estimated_cost": "abc"}, "estimated_cost"),
        ({"estimated_cost": "1.234"}, "estimated_cost"),
        ({"due_date": "next tuesday"}, "due_date"),
        ({"title": "x" * 201}, "title"),
    ],
)
def test_create_request_refuses_bad_values_naming_the_field(personas, fields, field):
    values = {"vessel": "MV Aurora", "title": "Bilge pump", **fields}
    with pytest.raises(DomainError) as exc:
        services.create_request(actor=personas["staff"], **values)
    assert exc.value.field == field
    assert MaintenanceRequest.objects.count() == 0


def test_staff_cannot_assign_at_creation(personas):
    with pytest.raises(PermissionDenied):
        services.create_request(
            actor=personas["staff"], vessel="MV Aurora", title="Pump", assigned_to=personas["other_staff"]
        )
    assert MaintenanceRequest.objects.count() == 0


def test_manager_can_assign_at_creation(personas):
    obj = services.create_request(
        actor=personas["engineer"], vessel="MV Aurora", title="Pump", assigned_to=personas["staff"]
    )
    assert obj.assigned_to == personas["staff"]


# ---- transitions ----------------------------------------------------------------------


@pytest.mark.parametrize("action", sorted(LEGAL_FROM))
@pytest.mark.parametrize("status", ALL)
def test_every_transition_from_every_status(personas, make_request, action, status):
    obj = make_request(personas["staff"], status=status, assignee=personas["other_staff"])
    before = MaintenanceRequest.objects.filter(pk=obj.pk).values().get()
    if status in LEGAL_FROM[action]:
        _do(action, obj, personas["admin"])
        obj.refresh_from_db()
        assert obj.status == TARGET[action]
    else:
        with pytest.raises(TransitionError) as exc:
            _do(action, obj, personas["admin"])
        assert obj.code in str(exc.value)
        assert MaintenanceRequest.objects.filter(pk=obj.pk).values().get() == before


def test_approve_stamps_approver_and_time_and_signals(personas, make_request, signals_log):
    obj = make_request(personas["staff"])
    signals_log["activity"].clear()  # the create's own sentence
    services.approve_request(request_obj=obj, actor=personas["engineer"], reason="Budget ok")
    obj.refresh_from_db()
    assert obj.status == "approved"
    assert obj.approved_by == personas["engineer"]
    assert obj.approved_at is not None
    assert [e["event_type"] for e in signals_log["domain_event"]] == ["request_approved"]
    event = signals_log["domain_event"][0]
    assert (event["severity"], event["entity_type"], event["entity_id"]) == ("info", "maintenance_request", obj.code)
    assert [(a["activity"], a["details"]) for a in signals_log["activity"]] == [
        (f"Approved maintenance request {obj.code}", "Reason: Budget ok")]


def test_start_and_complete_stamp_their_times(personas, make_request):
    obj = make_request(personas["staff"], status="approved", assignee=personas["other_staff"])
    services.start_request(request_obj=obj, actor=personas["other_staff"])
    assert obj.status == "in_progress" and obj.started_at is not None and obj.completed_at is None
    services.complete_request(request_obj=obj, actor=personas["other_staff"])
    obj.refresh_from_db()
    assert obj.status == "completed" and obj.completed_at >= obj.started_at


def test_reject_requires_a_reason_and_keeps_it(personas, make_request):
    obj = make_request(personas["staff"])
    with pytest.raises(DomainError) as exc:
        services.reject_request(request_obj=obj, actor=personas["admin"], reason="  ")
    assert exc.value.field == "reason"
    obj.refresh_from_db()
    assert obj.status == "pending"
    services.reject_request(request_obj=obj, actor=personas["admin"], reason="Duplicate of MR007")
    obj.refresh_from_db()
    assert (obj.status, obj.rejection_reason) == ("rejected", "Duplicate of MR007")


@pytest.mark.parametrize("action", ["approve", "reject", "assign"])
def test_staff_cannot_do_manager_actions(personas, make_request, action):
    obj = make_request(personas["staff"])
    with pytest.raises(PermissionDenied):
        if action == "assign":
            services.assign_request(request_obj=obj, actor=personas["staff"], assignee=personas["staff"])
        else:
            _do(action, obj, personas["staff"])
    obj.refresh_from_db()
    assert obj.status == "pending" and obj.assigned_to is None


@pytest.mark.parametrize("action,status", [("start", "approved"), ("complete", "in_progress")])
def test_only_assignee_or_manager_starts_and_completes(personas, make_request, action, status):
    obj = make_request(personas["staff"], status=status, assignee=personas["other_staff"])
    with pytest.raises(PermissionDenied):
        _do(action, obj, personas["staff"])  # the requester is not the assignee
    obj.refresh_from_db()
    assert obj.status == status
    _do(action, obj, personas["other_staff"])
    obj.refresh_from_db()
    assert obj.status == TARGET[action]


def test_requester_cancels_while_pending_or_approved_but_not_in_progress(personas, make_request):
    pending = make_request(personas["staff"])
    approved = make_request(personas["staff"], status="approved")
    running = make_request(personas["staff"], status="in_progress")
    services.cancel_request(request_obj=pending, actor=personas["staff"])
    services.cancel_request(request_obj=approved, actor=personas["staff"])
    with pytest.raises(PermissionDenied):
        services.cancel_request(request_obj=running, actor=personas["staff"])
    with pytest.raises(PermissionDenied):
        services.cancel_request(request_obj=make_request(personas["staff"]), actor=personas["other_staff"])
    services.cancel_request(request_obj=running, actor=personas["engineer"])
    assert set(MaintenanceRequest.objects.values_list("status", flat=True)) == {"cancelled", "pending"}


def test_assign_only_to_approved_active_users(personas, make_request, make_user):
    from accounts.models import User

    obj = make_request(personas["staff"])
    pending_user = make_user("ST010", approval_status="pending")
    inactive = make_user("ST011", is_active=False)
    for bad in (pending_user, inactive):
        with pytest.raises(DomainError) as exc:
            services.assign_request(request_obj=obj, actor=personas["admin"], assignee=bad)
        assert exc.value.field == "assigned_to"
    obj.refresh_from_db()
    assert obj.assigned_to is None
    services.assign_request(request_obj=obj, actor=personas["admin"], assignee=personas["other_staff"])
    obj.refresh_from_db()
    assert obj.assigned_to == personas["other_staff"]
    assert User.objects.get(user_id="ST010").approval_status == "pending"


def test_assign_refused_on_closed_request(personas, make_request):
    obj = make_request(personas["staff"], status="completed")
    with pytest.raises(TransitionError):
        services.assign_request(request_obj=obj, actor=personas["admin"], assignee=personas["other_staff"])


# ---- update -------------------------------------------------------------------------


def test_requester_edits_while_pending_only(personas, make_request):
    obj = make_request(personas["staff"])
    services.update_request(request_obj=obj, actor=personas["staff"], title="New pump", priority="high")
    obj.refresh_from_db()
    assert (obj.title, obj.priority) == ("New pump", "high")
    services.approve_request(request_obj=obj, actor=personas["admin"])
    with pytest.raises(PermissionDenied):
        services.update_request(request_obj=obj, actor=personas["staff"], title="Sneaky")
    services.update_request(request_obj=obj, actor=personas["engineer"], title="Manager edit")
    obj.refresh_from_db()
    assert obj.title == "Manager edit"


def test_nobody_edits_a_completed_request(personas, make_request):
    obj = make_request(personas["staff"], status="completed")
    with pytest.raises(TransitionError):
        services.update_request(request_obj=obj, actor=personas["admin"], title="Late edit")
    obj.refresh_from_db()
    assert obj.title == "Replace bilge pump"


def test_update_refuses_status_and_unknown_fields(personas, make_request):
    obj = make_request(personas["staff"])
    with pytest.raises(DomainError) as exc:
        services.update_request(request_obj=obj, actor=personas["admin"], status="completed")
    assert exc.value.field == "status"
    obj.refresh_from_db()
    assert obj.status == "pending"


def test_staff_cannot_change_the_assignee_by_editing(personas, make_request):
    obj = make_request(personas["staff"])
    with pytest.raises(PermissionDenied):
        services.update_request(request_obj=obj, actor=personas["staff"], assigned_to=personas["staff"])
    obj.refresh_from_db()
    assert obj.assigned_to is None


def test_update_without_changes_does_not_save(personas, make_request):
    obj = make_request(personas["staff"])
    stamp = obj.updated_at
    services.update_request(request_obj=obj, actor=personas["staff"], title=obj.title)
    obj.refresh_from_db()
    assert obj.updated_at == stamp


# ---- comments and attachments ----------------------------------------------------------


def test_comment_by_participant_sends_message_activity(personas, make_request, signals_log):
    obj = make_request(personas["staff"])
    comment = services.add_comment(request_obj=obj, actor=personas["staff"], body="  Pump is leaking  ")
    assert comment.body == "Pump is leaking"
    assert comment.author == personas["staff"]
    assert signals_log["activity"][-1]["activity"] == "Sent message"
    assert obj.code in signals_log["activity"][-1]["details"]


def test_comment_refused_for_outsider_and_blank_body(personas, make_request):
    obj = make_request(personas["staff"])
    with pytest.raises(PermissionDenied):
        services.add_comment(request_obj=obj, actor=personas["other_staff"], body="hi")
    with pytest.raises(DomainError):
        services.add_comment(request_obj=obj, actor=personas["staff"], body=" ")
    assert Comment.objects.count() == 0


def test_attachment_name_is_sanitized_and_type_from_extension(personas, make_request, signals_log):
    obj = make_request(personas["staff"])
    upload = SimpleUploadedFile("../../etc/pump report (v2).PDF", b"%PDF-1.4 data", content_type="text/html")
    attachment = services.add_attachment(request_obj=obj, actor=personas["staff"], uploaded_file=upload)
    assert attachment.original_name == "pump report (v2).PDF"
    assert attachment.content_type == "application/pdf"
    assert attachment.size == len(b"%PDF-1.4 data")
    assert attachment.file.name.startswith(f"attachments/{obj.code}/")
    assert ".." not in attachment.file.name and " " not in attachment.file.name
    assert attachment.file.name.endswith(".pdf")
    with attachment.file.open("rb") as fh:
        assert fh.read() == b"%PDF-1.4 data"
    assert signals_log["activity"][-1]["activity"] == "Uploaded attachment"


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("big.pdf", b"x" * 1025, "file_too_large"),
        ("virus.exe", b"MZ", "file_type"),
        ("noext", b"data", "file_type"),
        ("empty.txt", b"", "file_empty"),
        ("double.pdf.exe", b"MZ", "file_type"),
    ],
)
def test_attachment_refusals(personas, make_request, name, content, code):
    obj = make_request(personas["staff"])
    with pytest.raises(DomainError) as exc:
        services.add_attachment(
            request_obj=obj, actor=personas["staff"], uploaded_file=SimpleUploadedFile(name, content)
        )
    assert (exc.value.field, exc.value.code) == ("file", code)
    assert Attachment.objects.count() == 0


def test_download_checks_visibility_and_records_activity(personas, make_request, signals_log):
    obj = make_request(personas["staff"])
    attachment = services.add_attachment(
        request_obj=obj, actor=personas["staff"], uploaded_file=SimpleUploadedFile("a.txt", b"hello")
    )
    with pytest.raises(PermissionDenied):
        services.download_attachment(attachment=attachment, actor=personas["other_staff"])
    handle = services.download_attachment(attachment=attachment, actor=personas["engineer"])
    with handle:
        assert handle.read() == b"hello"
    assert signals_log["activity"][-1]["activity"] == "Downloaded attachment"
    assert [a["activity"] for a in signals_log["activity"]].count("Downloaded attachment") == 1


# ---- inventory ------------------------------------------------------------------------


def test_create_item_books_opening_stock(personas):
    item = services.create_item(actor=personas["engineer"], part_number="FLT-1", name="Oil filter", quantity_on_hand=5)
    assert item.code == "INV001"
    ledger = list(item.adjustments.values_list("quantity_change", "resulting_quantity", "reason"))
    assert ledger == [(5, 5, "Initial stock")]


def test_create_item_refuses_duplicates_and_staff(personas, make_item):
    make_item("FLT-1")
    with pytest.raises(DomainError) as exc:
        services.create_item(actor=personas["admin"], part_number="flt-1", name="Again")
    assert exc.value.field == "part_number"
    with pytest.raises(PermissionDenied):
        services.create_item(actor=personas["staff"], part_number="NEW-1", name="New")
    assert InventoryItem.objects.count() == 1


def test_adjust_stock_updates_quantity_and_writes_ledger(personas, make_item):
    item = make_item(quantity_on_hand=10)
    adjustment = services.adjust_stock(
        item=item, actor=personas["engineer"], quantity_change=-4, reason="Used on MR001"
    )
    assert (adjustment.quantity_change, adjustment.resulting_quantity) == (-4, 6)
    assert adjustment.adjusted_by == personas["engineer"]
    assert item.quantity_on_hand == 6
    item.refresh_from_db()
    assert item.quantity_on_hand == 6


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        (-11, "Too many", "quantity_change"),
        (0, "Nothing", "quantity_change"),
        (3, "  ", "reason"),
        ("2", "x", "quantity_change"),
    ],
)
def test_adjust_stock_refusals_change_nothing(personas, make_item, change, reason, field):
    item = make_item(quantity_on_hand=10)
    with pytest.raises(DomainError) as exc:
        services.adjust_stock(item=item, actor=personas["admin"], quantity_change=change, reason=reason)
    assert exc.value.field == field
    item.refresh_from_db()
    assert item.quantity_on_hand == 10
    assert StockAdjustment.objects.filter(item=item).count() == 1  # the opening stock only


def test_staff_cannot_adjust_stock(personas, make_item):
    item = make_item(quantity_on_hand=10)
    with pytest.raises(PermissionDenied):
        services.adjust_stock(item=item, actor=personas["staff"], quantity_change=-1, reason="Took one")
    item.refresh_from_db()
    assert item.quantity_on_hand == 10


def test_update_item_books_quantity_change_as_adjustment(personas, make_item):
    item = make_item(quantity_on_hand=10)
    services.update_item(item=item, actor=personas["admin"], quantity_on_hand=7, name="Renamed", reason="Stock count")
    item.refresh_from_db()
    assert (item.quantity_on_hand, item.name) == (7, "Renamed")
    assert item.adjustments.first().quantity_change == -3
    assert item.adjustments.first().reason == "Stock count"


def test_services_name_actor_and_reason_in_the_audit_context(personas, make_request):
    from django.db.models.signals import post_save

    from audit.context import get_context

    obj = make_request(personas["staff"])
    seen = []

    def spy(sender, instance, **kwargs):
        context = get_context()
        seen.append((getattr(context.actor, "user_id", context.actor), context.reason))

    post_save.connect(spy, sender=MaintenanceRequest, dispatch_uid="test-context-spy")
    try:
        services.update_request(request_obj=obj, actor=personas["staff"], title="Bigger pump", reason="Too small")
        services.approve_request(request_obj=obj, actor=personas["engineer"])
    finally:
        post_save.disconnect(dispatch_uid="test-context-spy")
    assert seen == [("ST001", "Too small"), ("PE001", "")]
    assert get_context().actor is None  # nothing leaks out of the service
