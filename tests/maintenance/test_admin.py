"""The maintenance admin writes through the services."""

from unittest import mock

import pytest

from maintenance import services
from maintenance.models import InventoryItem, MaintenanceRequest, StockAdjustment

pytestmark = pytest.mark.django_db

MR_URL = "/admin/maintenance/maintenancerequest/"
INV_URL = "/admin/maintenance/inventoryitem/"


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _action(client, action, objs, reason=""):
    return client.post(
        MR_URL,
        {"action": action, "_selected_action": [o.pk for o in objs], "index": 0, "select_across": 0, "reason": reason},
        follow=True,
    )


def _messages(response):
    return [str(m) for m in response.context["messages"]]


def test_admin_add_creates_through_the_service(admin_client, admin_user, staff):
    with mock.patch.object(services, "create_request", wraps=services.create_request) as spy:
        response = admin_client.post(
            f"{MR_URL}add/",
            {
                "vessel": "MV Aurora",
                "title": "Hull inspection",
                "description": "",
                "category": "hull",
                "priority": "high",
                "due_date": "",
                "estimated_cost": "200.00",
                "assigned_to": staff.pk,
                "change_reason": "Dry dock",
                "comments-TOTAL_FORMS": 0,
                "comments-INITIAL_FORMS": 0,
                "attachments-TOTAL_FORMS": 0,
                "attachments-INITIAL_FORMS": 0,
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert spy.call_args.kwargs["reason"] == "Dry dock"
    obj = MaintenanceRequest.objects.get()
    assert (obj.code, obj.status, obj.requested_by, obj.assigned_to) == ("MR001", "pending", admin_user, staff)


def test_admin_change_updates_through_the_service(admin_client, staff, make_request):
    obj = make_request(staff)
    with mock.patch.object(services, "update_request", wraps=services.update_request) as spy:
        response = admin_client.post(
            f"{MR_URL}{obj.pk}/change/",
            {
                "vessel": obj.vessel,
                "title": "Replace both bilge pumps",
                "description": "",
                "category": obj.category,
                "priority": obj.priority,
                "due_date": "",
                "estimated_cost": "",
                "assigned_to": "",
                "change_reason": "Second pump failing",
                "comments-TOTAL_FORMS": 0,
                "comments-INITIAL_FORMS": 0,
                "attachments-TOTAL_FORMS": 0,
                "attachments-INITIAL_FORMS": 0,
            },
        )
    assert response.status_code == 302
    assert spy.call_args.kwargs["reason"] == "Second pump failing"
    assert set(spy.call_args.kwargs) == {"request_obj", "actor", "reason", "title"}
    obj.refresh_from_db()
    assert obj.title == "Replace both bilge pumps"


def test_admin_cannot_edit_a_completed_request(admin_client, staff, make_request):
    obj = make_request(staff, status="completed")
    page = admin_client.get(f"{MR_URL}{obj.pk}/change/")
    assert page.status_code == 200
    assert 'name="title"' not in page.content.decode()  # shown read-only
    response = admin_client.post(
        f"{MR_URL}{obj.pk}/change/",
        {
            "change_reason": "x",
            "comments-TOTAL_FORMS": 0,
            "comments-INITIAL_FORMS": 0,
            "attachments-TOTAL_FORMS": 0,
            "attachments-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    assert "can no longer be edited" in response.content.decode()


def test_admin_approve_action_sets_approver(admin_client, admin_user, staff, make_request, signals_log):
    pending = make_request(staff)
    done = make_request(staff, status="completed")
    response = _action(admin_client, "approve_selected", [pending, done], reason="Budget approved")
    pending.refresh_from_db()
    done.refresh_from_db()
    assert pending.status == "approved"
    assert pending.approved_by == admin_user and pending.approved_at is not None
    assert done.status == "completed"
    msgs = _messages(response)
    assert f"Approved: {pending.code}." in msgs
    assert any(m.startswith(f"{done.code}: Cannot approve") for m in msgs)
    assert [e["event_type"] for e in signals_log["domain_event"]].count("request_approved") == 2  # fixture + action


def test_admin_reject_action_needs_a_reason(admin_client, staff, make_request):
    obj = make_request(staff)
    response = _action(admin_client, "reject_selected", [obj])
    obj.refresh_from_db()
    assert obj.status == "pending"
    assert "Enter a reason in the Reason box to reject requests." in _messages(response)
    _action(admin_client, "reject_selected", [obj], reason="Duplicate")
    obj.refresh_from_db()
    assert (obj.status, obj.rejection_reason) == ("rejected", "Duplicate")


@pytest.mark.parametrize(
    ("action", "status", "target"),
    [
        ("start_selected", "approved", "in_progress"),
        ("complete_selected", "in_progress", "completed"),
        ("cancel_selected", "pending", "cancelled"),
    ],
)
def test_admin_life_cycle_actions(admin_client, staff, make_request, action, status, target):
    obj = make_request(staff, status=status)
    wrong = make_request(staff, status="rejected")
    response = _action(admin_client, action, [obj, wrong])
    obj.refresh_from_db()
    wrong.refresh_from_db()
    assert (obj.status, wrong.status) == (target, "rejected")
    assert any(m.startswith(f"{wrong.code}: Cannot") for m in _messages(response))


def test_admin_pages_render(admin_client, staff, make_request):
    obj = make_request(staff)
    services.add_comment(request_obj=obj, actor=staff, body="Leaking again")
    changelist = admin_client.get(f"{MR_URL}?status__exact=pending")
    assert changelist.status_code == 200
    assert 'name="reason"' in changelist.content.decode()
    change = admin_client.get(f"{MR_URL}{obj.pk}/change/")
    assert "Leaking again" in change.content.decode()
    assert admin_client.get(f"{MR_URL}{obj.pk}/history/").status_code == 200


def test_admin_inventory_add_and_change_go_through_services(admin_client):
    response = admin_client.post(
        f"{INV_URL}add/",
        {
            "part_number": "FLT-1",
            "name": "Oil filter",
            "location": "Store A",
            "quantity_on_hand": 6,
            "minimum_stock": 2,
            "change_reason": "New part",
            "adjustments-TOTAL_FORMS": 0,
            "adjustments-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    item = InventoryItem.objects.get()
    assert item.code == "INV001"
    response = admin_client.post(
        f"{INV_URL}{item.pk}/change/",
        {
            "part_number": "FLT-1",
            "name": "Oil filter",
            "location": "Store A",
            "quantity_on_hand": 4,
            "minimum_stock": 2,
            "change_reason": "Stock count",
            "adjustments-TOTAL_FORMS": 1,
            "adjustments-INITIAL_FORMS": 1,
        },
    )
    assert response.status_code == 302
    ledger = list(StockAdjustment.objects.filter(item=item).values_list("quantity_change", "reason"))
    assert ledger == [(-2, "Stock count"), (6, "Initial stock")]


def test_admin_inventory_refuses_duplicate_part_number(admin_client, make_item):
    make_item("FLT-1")
    response = admin_client.post(
        f"{INV_URL}add/",
        {
            "part_number": "flt-1",
            "name": "Again",
            "quantity_on_hand": 0,
            "minimum_stock": 0,
            "adjustments-TOTAL_FORMS": 0,
            "adjustments-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    assert "already in the inventory" in response.content.decode()
    assert InventoryItem.objects.count() == 1


@pytest.mark.parametrize("model", ["comment", "attachment", "stockadjustment"])
def test_service_written_records_cannot_be_added_in_admin(admin_client, model):
    assert admin_client.get(f"/admin/maintenance/{model}/add/").status_code == 403
    assert admin_client.get(f"/admin/maintenance/{model}/").status_code == 200
