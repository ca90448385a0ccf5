"""The audit admin is read-only; admin saves and simple-history reverts are
captured like any change."""

import pytest

from audit.capture.writer import write_change
from audit.context import audit_context
from audit.models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory

pytestmark = pytest.mark.django_db

MODELS = ["activitylog", "audittrail", "systemevent", "updatehistory"]


@pytest.mark.parametrize("model", MODELS)
def test_audit_records_cannot_be_added_changed_or_deleted(portal, admin_user, model):
    trail = write_change(action_type="update", entity_type="emergency", entity_id="EMG001",
                         changes={"status": {"old": "reported", "new": "acknowledged"}}, table_name="t")
    rows = {"audittrail": trail, "updatehistory": trail.field_changes.get(),
            "activitylog": ActivityLog.objects.create(user_id="PE001", activity="Login"),
            "systemevent": SystemEvent.objects.create(event_type="x")}
    pk = rows[model].pk
    c = portal(admin_user)
    assert c.get(f"/admin/audit/{model}/").status_code == 200
    assert c.get(f"/admin/audit/{model}/add/").status_code == 403
    assert c.post(f"/admin/audit/{model}/{pk}/delete/", {"post": "yes"}).status_code == 403
    page = c.get(f"/admin/audit/{model}/{pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    c.post(f"/admin/audit/{model}/{pk}/change/", {"user_id": "HACKER"})
    model_cls = {"activitylog": ActivityLog, "audittrail": AuditTrail, "systemevent": SystemEvent,
                 "updatehistory": UpdateHistory}[model]
    assert model_cls.objects.filter(pk=pk).exists()
    assert not model_cls.objects.filter(user_id="HACKER").exists() if hasattr(model_cls, "user_id") else True


def test_trail_and_field_rows_link_to_each_other(portal, admin_user):
    trail = write_change(action_type="update", entity_type="emergency", entity_id="EMG001",
                         changes={"status": {"old": "reported", "new": "acknowledged"}}, table_name="t")
    row = trail.field_changes.get()
    c = portal(admin_user)
    assert f"/admin/audit/updatehistory/{row.pk}/change/".encode() in c.get(
        f"/admin/audit/audittrail/{trail.pk}/change/").content
    assert f"/admin/audit/audittrail/{trail.pk}/change/".encode() in c.get(
        f"/admin/audit/updatehistory/{row.pk}/change/").content


def test_audit_admin_is_closed_to_non_admins(portal, engineer):
    assert portal(engineer).get("/admin/audit/audittrail/").status_code == 302


def test_admin_save_and_history_revert_are_captured_with_actor_ip_and_reason(portal, admin_user):
    from maintenance import services
    from maintenance.models import InventoryItem

    with audit_context(actor=admin_user):
        item = services.create_item(actor=admin_user, part_number="P-7", name="Seal kit", location="A1",
                                    minimum_stock=2)
    first_version = item.history.earliest("history_date")
    c = portal(admin_user)
    form = {"part_number": "P-7", "name": "Seal kit XL", "location": "B2", "quantity_on_hand": 0,
            "minimum_stock": 2, "change_reason": "Wrong bin"}
    url = f"/admin/maintenance/inventoryitem/{item.pk}/change/"
    response = c.post(url, {**form, **_inline_management()}, REMOTE_ADDR="198.51.100.30")
    assert response.status_code == 302, response.content[:2000]
    edit = AuditTrail.objects.get(entity_id=item.code, action_type="update")
    assert edit.changes == {"name": {"old": "Seal kit", "new": "Seal kit XL"}, "location": {"old": "A1", "new": "B2"}}
    assert (edit.user_id, edit.ip_address, edit.change_reason) == ("ADM001", "198.51.100.30", "Wrong bin")

    revert_url = f"/admin/maintenance/inventoryitem/{item.pk}/history/{first_version.history_id}/"
    page = c.get(revert_url)
    assert page.status_code == 200
    response = c.post(revert_url, {"part_number": "P-7", "name": "Seal kit", "location": "A1",
                                   "quantity_on_hand": 0, "minimum_stock": 2, "change_reason": "Undo rename"},
                      REMOTE_ADDR="198.51.100.31")
    assert response.status_code == 302, response.content[:2000]
    revert = AuditTrail.objects.get(entity_id=item.code, action_type="revert")
    assert revert.changes == {"name": {"old": "Seal kit XL", "new": "Seal kit"}, "location": {"old": "B2", "new": "A1"}}
    assert (revert.user_id, revert.ip_address, revert.change_reason) == ("ADM001", "198.51.100.31", "Undo rename")
    assert InventoryItem.objects.get(pk=item.pk).name == "Seal kit"
    latest = item.history.latest("history_date")
    assert latest.history_change_reason == "Undo rename" and latest.history_user_id == admin_user.pk


def _inline_management():
    prefix = "adjustments"
    return {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0", f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000"}


def test_system_check_reports_bad_trusted_proxy_entries(settings):
    from audit.checks import check_audit_settings

    settings.AUDIT_TRUSTED_PROXIES = ["10.0.0.1", "not-an-ip", "0.0.0.0/0"]
    ids = [m.id for m in check_audit_settings()]
    assert ids == ["audit.E001", "audit.W001"]
    settings.AUDIT_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert check_audit_settings() == []


def test_the_trail_change_page_says_the_record_in_words_first(portal, admin_user):
    from audit.context import audit_context

    with audit_context(actor=admin_user, reason="Crew on board"):
        trail = write_change(action_type="status_change", entity_type="emergency", entity_id="EMG001",
                             changes={"status": {"old": "reported", "new": "acknowledged"}}, table_name="t")
    html = portal(admin_user).get(f"/admin/audit/audittrail/{trail.pk}/change/").content.decode()
    sentence = ("ADM001 · ADM001 Person changed the status of emergency EMG001: Status — &#x27;Crew on board&#x27;")
    assert sentence in html
    assert "<del>Reported</del></td><td class=\"after\"><ins>Acknowledged</ins>" in html
    assert html.index("field-in_words") < html.index("field-user_id")  # first, before the raw columns
    assert "audit/timeline.css" in html
