"""Reverting from the admin history tells the truth (issue 12.5), for every tracked model whose
history the admin shows: maintenance requests, inventory items and emergencies revert through
their services and are recorded as a ``revert`` with the admin's reason; a version with
another status, and every account, is refused on the page and on the POST."""

import pytest
from django.contrib import admin

from audit.admin.revert import RevertHistoryAdmin
from audit.capture import registry
from audit.models import ActivityLog, AuditTrail, UpdateHistory
from emergencies import services as emergency_services
from emergencies.models import Emergency
from maintenance import services
from maintenance.models import Comment, InventoryItem, MaintenanceRequest

pytestmark = pytest.mark.django_db

IP = "198.51.100.40"


def _revert_url(obj, record):
    opts = obj._meta
    return f"/admin/{opts.app_label}/{opts.model_name}/{obj.pk}/history/{record.history_id}/"


def _as_submitted(page, **overrides):
    """The revert form as the browser would send it: every field's shown value."""
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        data[name] = "" if value is None else value
    return {**data, **overrides}


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _reverts(entity_id):
    return AuditTrail.objects.filter(entity_id=entity_id, action_type="revert")


# ---- maintenance requests -----------------------------------------------------------------------


@pytest.fixture
def edited_request(staff, engineer):
    mr = services.create_request(actor=staff, vessel="MV Tern", title="Pump seal", description="Leaks",
                                 priority="medium")
    services.update_request(request_obj=mr, actor=engineer, reason="Looked at it", title="Pump seal and shaft",
                            priority="high")
    return MaintenanceRequest.objects.get(pk=mr.pk)


def test_a_request_reverts_through_its_service_and_is_recorded_as_a_revert_with_its_reason(
        portal, admin_user, edited_request):
    c = portal(admin_user)
    first = edited_request.history.earliest("history_date")
    page = c.get(_revert_url(edited_request, first))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' in html and "Reason for this revert" in html
    assert "read-only fields are not changed" in html

    before = ActivityLog.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = c.post(_revert_url(edited_request, first),
                      _as_submitted(page, change_reason="The shaft is fine after all"), REMOTE_ADDR=IP, follow=True)

    mr = MaintenanceRequest.objects.get(pk=edited_request.pk)
    assert (mr.title, mr.priority, mr.status) == ("Pump seal", "medium", "pending")
    [message] = _messages(response)
    assert message.startswith("Maintenance request MR001 was reverted to its version of ")
    assert message.endswith(": Title and priority restored. Reason: The shaft is fine after all")
    assert "changed successfully" not in response.content.decode()
    [row] = _reverts("MR001")
    assert (row.entity_type, row.status, row.user_id, row.ip_address, row.change_reason, row.source) == (
        "maintenance_request", "completed", "ADM001", IP, "The shaft is fine after all", "captured")
    assert row.changes == {"title": {"old": "Pump seal and shaft", "new": "Pump seal"},
                           "priority": {"old": "high", "new": "medium"}}
    fields = {(h.field_name, h.old_value, h.new_value, h.user_id, h.change_reason)
              for h in UpdateHistory.objects.filter(audit=row)}
    assert fields == {("title", "Pump seal and shaft", "Pump seal", "ADM001", "The shaft is fine after all"),
                      ("priority", "high", "medium", "ADM001", "The shaft is fine after all")}
    latest = mr.history.latest("history_date")
    assert (latest.history_change_reason, latest.history_user_id) == ("The shaft is fine after all", admin_user.pk)
    [said] = ActivityLog.objects.filter(user_id="ADM001", activity__startswith="Reverted ")
    assert said.activity.startswith("Reverted maintenance request MR001 to its version of ")
    # one action, one sentence: the service the revert went through adds no "Edited ..." of its own
    assert not ActivityLog.objects.filter(user_id="ADM001", activity__startswith="Edited ", id__gt=before).exists()
    assert said.activity.endswith(" (title and priority)") and said.details == "Reason: The shaft is fine after all"


def test_a_revert_needs_its_reason(portal, admin_user, edited_request):
    c = portal(admin_user)
    first = edited_request.history.earliest("history_date")
    page = c.get(_revert_url(edited_request, first))
    response = c.post(_revert_url(edited_request, first), _as_submitted(page, change_reason="  "))
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert MaintenanceRequest.objects.get(pk=edited_request.pk).title == "Pump seal and shaft"
    assert not _reverts("MR001").exists()


def test_a_revert_to_the_version_the_request_already_has_says_nothing_changed(portal, admin_user, edited_request):
    c = portal(admin_user)
    latest = edited_request.history.latest("history_date")
    page = c.get(_revert_url(edited_request, latest))
    response = c.post(_revert_url(edited_request, latest), _as_submitted(page, change_reason="Check"), follow=True)
    [message] = _messages(response)
    assert message.startswith("Maintenance request MR001 already matched its version of ") and message.endswith("nothing was changed.")
    assert not _reverts("MR001").exists()


def test_a_version_with_another_status_is_refused_on_the_page_and_on_the_post(
        portal, admin_user, engineer, edited_request):
    services.approve_request(request_obj=edited_request, actor=engineer, reason="Go ahead")
    c = portal(admin_user)
    pending = edited_request.history.earliest("history_date")
    url = _revert_url(edited_request, pending)
    page = c.get(url)
    html = page.content.decode()
    sentence = ("In this version MR001 has the status pending; it is approved now. A revert never changes the "
                "status, which moves only through its actions: pick a version whose status is approved.")
    assert sentence in html and 'name="_save"' not in html

    response = c.post(url, _as_submitted(page, change_reason="Undo everything"), follow=True)

    assert _messages(response) == [f"Maintenance request MR001 was not reverted: {sentence}"]
    mr = MaintenanceRequest.objects.get(pk=edited_request.pk)
    assert (mr.status, mr.title, mr.priority) == ("approved", "Pump seal and shaft", "high")
    [failed] = _reverts("MR001")
    assert (failed.status, failed.error_message, failed.user_id, failed.change_reason, failed.changes) == (
        "failed", sentence, "ADM001", "Undo everything", {})
    assert not UpdateHistory.objects.filter(audit=failed).exists()
    assert not ActivityLog.objects.filter(activity__startswith="Reverted ").exists()


def test_a_request_that_can_no_longer_be_edited_is_not_reverted(portal, admin_user, engineer, staff):
    mr = services.create_request(actor=staff, vessel="MV Tern", title="Paint", description="")
    services.update_request(request_obj=mr, actor=staff, title="Paint the hull")
    services.cancel_request(request_obj=mr, actor=engineer, reason="Not needed")
    cancelled = mr.history.filter(status="cancelled").earliest("history_date")
    c = portal(admin_user)
    # the cancelled version has the current status, but a cancelled request cannot be edited, so nor reverted
    page = c.get(_revert_url(mr, cancelled))
    assert page.status_code == 200
    response = c.post(_revert_url(mr, cancelled), _as_submitted(page, title="Paint", change_reason="x"), follow=True)
    assert _messages(response) == ["Maintenance request MR001 was not reverted: MR001 is cancelled and can no longer be edited by you, "
                                   "so it cannot be reverted either."]
    assert MaintenanceRequest.objects.get(pk=mr.pk).title == "Paint the hull"


# ---- inventory items ------------------------------------------------------------------------------


def test_an_item_reverts_its_description_but_never_its_quantity(portal, admin_user, engineer):
    item = services.create_item(actor=engineer, part_number="P-9", name="Filter", location="A1", minimum_stock=1)
    services.update_item(item=item, actor=engineer, reason="Moved", name="Oil filter", location="C3")
    services.adjust_stock(item=item, actor=engineer, quantity_change=5, reason="Delivery")
    first = item.history.earliest("history_date")
    c = portal(admin_user)
    page = c.get(_revert_url(item, first))
    assert "quantity_on_hand" not in page.context["adminform"].form.fields  # shown read-only
    response = c.post(_revert_url(item, first),
                      {**_as_submitted(page, change_reason="Wrong shelf"), "quantity_on_hand": 0},
                      REMOTE_ADDR=IP, follow=True)
    item = InventoryItem.objects.get(pk=item.pk)
    assert (item.name, item.location, item.quantity_on_hand) == ("Filter", "A1", 5)
    assert _messages(response)[0].endswith(": Name and location restored. Reason: Wrong shelf")
    [row] = _reverts(item.code)
    assert row.changes == {"name": {"old": "Oil filter", "new": "Filter"}, "location": {"old": "C3", "new": "A1"}}
    assert (row.user_id, row.ip_address, row.change_reason) == ("ADM001", IP, "Wrong shelf")
    assert UpdateHistory.objects.filter(audit=row).count() == 2
    assert item.adjustments.count() == 1


# ---- emergencies ------------------------------------------------------------------------------------


@pytest.fixture
def edited_emergency(staff, engineer):
    emergency = emergency_services.report_emergency(actor=staff, vessel="MV Kite", emergency_type="fire",
                                                    description="Smoke in the galley", severity="high")
    emergency_services.update_emergency(emergency=emergency, actor=engineer, reason="Crew report",
                                        severity="low", location="Galley")
    return Emergency.objects.get(pk=emergency.pk)


def test_an_emergency_reverts_through_its_service_and_is_recorded_as_a_revert(
        portal, admin_user, edited_emergency):
    c = portal(admin_user)
    first = edited_emergency.history.earliest("history_date")
    page = c.get(_revert_url(edited_emergency, first))
    assert 'name="_save"' in page.content.decode()
    response = c.post(_revert_url(edited_emergency, first),
                      _as_submitted(page, change_reason="Severity was right"), REMOTE_ADDR=IP, follow=True)
    emergency = Emergency.objects.get(pk=edited_emergency.pk)
    assert (emergency.severity, emergency.location, emergency.status) == ("high", "", "reported")
    assert _messages(response)[0].endswith(": Location and severity restored. Reason: Severity was right")
    [row] = _reverts("EMG001")
    assert (row.entity_type, row.status, row.user_id, row.ip_address, row.change_reason, row.source) == (
        "emergency", "completed", "ADM001", IP, "Severity was right", "captured")
    assert row.changes == {"severity": {"old": "low", "new": "high"}, "location": {"old": "Galley", "new": ""}}
    assert {h.field_name for h in UpdateHistory.objects.filter(audit=row)} == {"severity", "location"}


def test_an_emergency_version_with_another_status_is_refused(portal, admin_user, engineer, edited_emergency):
    emergency_services.acknowledge_emergency(emergency=edited_emergency, actor=engineer)
    c = portal(admin_user)
    reported = edited_emergency.history.earliest("history_date")
    url = _revert_url(edited_emergency, reported)
    page = c.get(url)
    assert 'name="_save"' not in page.content.decode()
    assert "it is acknowledged now. A revert never changes the status" in page.content.decode()
    response = c.post(url, _as_submitted(page, change_reason="Back"), follow=True)
    assert _messages(response)[0].startswith("Emergency EMG001 was not reverted: In this version EMG001 has the status reported")
    emergency = Emergency.objects.get(pk=edited_emergency.pk)
    assert (emergency.status, emergency.severity) == ("acknowledged", "low")
    assert list(_reverts("EMG001").values_list("status", flat=True)) == ["failed"]


# ---- accounts -----------------------------------------------------------------------------------------


def test_an_account_is_never_reverted_the_page_says_so_and_the_post_is_refused(portal, admin_user, staff):
    from accounts import services as account_services

    account_services.update_profile(user=staff, actor=admin_user, reason="Married", full_name="Sam Other")
    account_services.change_role(user=staff, actor=admin_user, role="port_engineer", reason="Promoted")
    c = portal(admin_user)
    first = staff.history.earliest("history_date")
    url = _revert_url(staff, first)
    page = c.get(url)
    html = page.content.decode()
    assert page.status_code == 200 and 'name="_save"' not in html
    assert "Accounts are not reverted from their history" in html
    assert "View history" in c.get(f"/admin/accounts/user/{staff.pk}/history/").content.decode()

    response = c.post(url, {"full_name": "ST001 Person", "role": "staff", "change_reason": "Undo"}, follow=True)

    [message] = _messages(response)
    assert message.startswith("User ST001 was not reverted: Accounts are not reverted from their history")
    staff.refresh_from_db()
    assert (staff.full_name, staff.role) == ("Sam Other", "port_engineer")
    [failed] = _reverts("ST001")
    assert (failed.status, failed.user_id, failed.changes) == ("failed", "ADM001", {})
    assert "changed successfully" not in response.content.decode()


# ---- every tracked model ----------------------------------------------------------------------------------


def test_every_tracked_model_whose_history_the_admin_can_revert_uses_the_honest_revert():
    """simple-history's revert view is only ever served by RevertHistoryAdmin; the other
    tracked models' admins (comments, attachments, stock adjustments, groups, alert rules)
    have no revert view at all."""
    from simple_history.admin import SimpleHistoryAdmin

    from accounts.models import User

    tracked = {config.model for config in registry.tracked_models()}
    with_revert = {model for model, model_admin in admin.site._registry.items()
                   if model in tracked and isinstance(model_admin, SimpleHistoryAdmin)}
    assert with_revert == {MaintenanceRequest, InventoryItem, Emergency, User}
    assert all(isinstance(admin.site._registry[model], RevertHistoryAdmin) for model in with_revert)


def test_a_post_to_a_history_url_of_a_model_without_revert_changes_nothing(portal, admin_user, edited_request, staff):
    comment = services.add_comment(request_obj=edited_request, actor=staff, body="Seen it")
    record = comment.history.earliest("history_date")
    before = AuditTrail.objects.count()
    response = portal(admin_user).post(f"/admin/maintenance/comment/{comment.pk}/history/{record.history_id}/",
                                       {"body": "Changed"})
    assert response.status_code in (302, 404)
    assert Comment.objects.get(pk=comment.pk).body == "Seen it"
    assert AuditTrail.objects.count() == before


def test_a_malformed_version_id_is_a_404_not_a_500(portal, admin_user, edited_request):
    response = portal(admin_user).get(f"/admin/maintenance/maintenancerequest/{edited_request.pk}/history/x9/")
    assert response.status_code == 404


def test_a_revert_needs_the_change_history_permission_not_only_the_view(portal, admin_user, edited_request,
                                                                        monkeypatch):
    """simple-history saves a POST with the view permission alone; the honest revert does not."""
    from maintenance.admin import MaintenanceRequestAdmin

    monkeypatch.setattr(MaintenanceRequestAdmin, "has_change_history_permission", lambda self, request, obj=None: False)
    c = portal(admin_user)
    first = edited_request.history.earliest("history_date")
    page = c.get(_revert_url(edited_request, first))
    html = page.content.decode()
    assert page.status_code == 200 and 'name="_save"' not in html
    assert "You may look at it but not revert to it." in html
    response = c.post(_revert_url(edited_request, first), _as_submitted(page, change_reason="Sneaky"))
    assert response.status_code == 403
    assert MaintenanceRequest.objects.get(pk=edited_request.pk).title == "Pump seal and shaft"
    assert not _reverts("MR001").exists()
