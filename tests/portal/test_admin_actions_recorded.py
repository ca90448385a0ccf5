"""Issue 12.1, 12.3 and 12.11 (the admin half): every action an administrator takes in the admin
(change-form add and edit, delete, every changelist action) is an activity row in words, with
the reason given, shown in their "My activity", and each change is an audit_trail row carrying
that reason; an admin action a service refuses is a failed audit_trail row with the error
message, no update_history row, and the admin shows the message.

The table covers every action the admin site offers an administrator: a newly registered
model admin or a new changelist action without a row here makes the coverage test fail.
"""

from __future__ import annotations

import html

import pytest
from django import forms
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory

from accounts import services as account_services
from accounts.models import User
from alerts.models import AlertRule
from audit.models import ActivityLog, AuditTrail, LegalHold, SystemEvent, UpdateHistory
from core.errors import DomainError
from emergencies.models import Emergency
from maintenance import services as maintenance
from maintenance.models import InventoryItem, MaintenanceRequest

MR = "/admin/maintenance/maintenancerequest/"
EMG = "/admin/emergencies/emergency/"
INV = "/admin/maintenance/inventoryitem/"
USERS = "/admin/accounts/user/"
GROUPS = "/admin/auth/group/"
RULES = "/admin/alerts/alertrule/"
HOLDS = "/admin/audit/legalhold/"


# ---- helpers: what a person's browser sends -------------------------------------------------


def form_data(page) -> dict:
    """The POST a browser sends for an admin add or change page as shown (fields as filled in,
    inline management forms), to be amended by the step."""
    data = {}
    form = page.context["adminform"].form
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
            continue
        if value is None:
            value = ""
        if isinstance(value, list | tuple):
            data[name] = [str(v) for v in value]
        else:
            data[name] = str(value)
    for formset in page.context.get("inline_admin_formsets") or []:
        management = formset.formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
    return data


def _form_errors(response):
    adminform = (response.context or {}).get("adminform") if response.context else None
    return adminform.form.errors if adminform is not None else {}


def changelist_action(client, url, action, objs, reason="", **extra):
    return client.post(url, {"action": action, "_selected_action": [o.pk for o in objs], "index": 0,
                             "select_across": 0, "reason": reason, **extra}, follow=True)


def shown_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# ---- the world the steps act on --------------------------------------------------------------


@pytest.fixture
def admin_world(world):
    staff, engineer = world["staff"], world["engineer"]
    extra = {
        "to_reject": maintenance.create_request(actor=staff, vessel="MV Polar", title="Paint the mast"),
        "to_cancel": maintenance.create_request(actor=staff, vessel="MV Polar", title="Rig a new flag"),
        "to_delete": maintenance.create_request(actor=staff, vessel="MV Polar", title="Polish the bell"),
        "to_bulk_delete": maintenance.create_request(actor=engineer, vessel="MV Polar", title="Oil the winch"),
        "spare_item": maintenance.create_item(actor=world["admin"], part_number="SP-1", name="Spare fuse",
                                              quantity_on_hand=0, minimum_stock=0),
        "bulk_item": maintenance.create_item(actor=world["admin"], part_number="SP-2", name="Spare bulb",
                                             quantity_on_hand=0, minimum_stock=0),
        "second_pending": account_services.register_user(user_id="ST010", password="Newbie-Pass-2025",
                                                         full_name="Ola Other", email="ola@example.com"),
        "crew": Group.objects.create(name="Deck crew"),
        "old_crew": Group.objects.create(name="Old crew"),
        "event": SystemEvent.objects.create(event_type="integrity_failure", severity="critical",
                                            entity_type="audit", entity_id="seal"),
    }
    return {**world, **extra}


def _perm(codename):
    return Permission.objects.get(content_type__app_label="maintenance", codename=codename)


# ---- the table ------------------------------------------------------------------------------
#
# Each step: (the admin actions it covers as (model label, action name), how it is done, the
# sentence in the administrator's activity, the audit_trail row it leaves as (entity type,
# entity id, action type), or None when it changes no tracked record). "How" is a function of
# (client, world, reason) returning the final response; sentence and row may be functions of the
# world, which steps that add something extend. Each step gives its own reason.


def _add(url, key, find, **fields):
    def run(client, w, reason):
        data = {**form_data(client.get(f"{url}add/")), **fields, "change_reason": reason}
        response = client.post(f"{url}add/", data, follow=True)
        assert not _form_errors(response), _form_errors(response)
        w[key] = find()
        return response
    return run


def _change(url, key, **fields):
    def run(client, w, reason):
        obj = w[key]
        data = {**form_data(client.get(f"{url}{obj.pk}/change/")),
                **{k: (v(w) if callable(v) else v) for k, v in fields.items()}, "change_reason": reason}
        data = {k: v for k, v in data.items() if v is not None}  # None: a box left unticked
        response = client.post(f"{url}{obj.pk}/change/", data, follow=True)
        assert not _form_errors(response), _form_errors(response)
        return response
    return run


def _delete(url, key):
    def run(client, w, reason):
        obj = w[key]
        page = client.get(f"{url}{obj.pk}/delete/")
        assert 'name="change_reason"' in page.content.decode()  # the delete page asks why
        return client.post(f"{url}{obj.pk}/delete/", {"post": "yes", "change_reason": reason}, follow=True)
    return run


def _act(url, action, key, confirm=False, **extra):
    def run(client, w, reason):
        objs = [w[key]]
        response = changelist_action(client, url, action, objs, reason=reason, **extra)
        if confirm:  # "Delete selected": a confirmation page that asks why, then the deletion
            page = response.content.decode()
            assert f'value="{html.escape(reason)}"' in page.split('name="change_reason"')[1][:200], page[:3000]
            response = changelist_action(client, url, action, objs, change_reason=reason, post="yes")
        return response
    return run


def _reset_password(client, w, reason):
    response = changelist_action(client, USERS, "reset_password_action", [w["staff"]], reason=reason)
    url = response.redirect_chain[-1][0]
    assert url.endswith(f"/{w['staff'].pk}/password/")
    return client.post(url, {"new_password1": "Brand-New-Pass-2026", "new_password2": "Brand-New-Pass-2026",
                             "change_reason": reason}, follow=True)


def _rule(name):
    return lambda: AlertRule.objects.get(name=name)


#: the activity of an export from each changelist ("Export selected ... as CSV")
EXPORTS = {
    "maintenance.maintenancerequest": "Exported maintenance requests",
    "maintenance.inventoryitem": "Exported inventory items",
    "maintenance.stockadjustment": "Exported stock adjustments",
    "emergencies.emergency": "Exported emergencies",
    "accounts.user": "Exported users",
    "audit.activitylog": "Exported activity logs",
    "audit.audittrail": "Exported audit trail",
    "audit.updatehistory": "Exported update history",
    "audit.systemevent": "Exported system events",
}


def _export(label):
    def run(client, w, reason):
        model = next(m for m in admin.site._registry if m._meta.label_lower == label)
        objs = list(model._default_manager.order_by("pk")[:2])
        response = changelist_action(client, _url(model), "export_selected_csv", objs)
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        return response
    return run


def _url(model):
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


def _steps(w):
    mr, emg, item, staff, other = w["request"].code, w["emergency"].code, w["item"], w["staff"], w["other_staff"]
    return [
        # --- maintenance requests
        ({("maintenance.maintenancerequest", "add")},
         _add(MR, "new_mr", lambda: MaintenanceRequest.objects.get(title="Hull survey"),
              vessel="MV Borealis", title="Hull survey", category="hull", priority="high"),
         lambda w: f"Created maintenance request {w['new_mr'].code} (Hull survey)",
         lambda w: ("maintenance_request", w["new_mr"].code, "create")),
        ({("maintenance.maintenancerequest", "change")}, _change(MR, "request", title="Replace both bilge pumps"),
         f"Edited maintenance request {mr}", ("maintenance_request", mr, "update")),
        ({("maintenance.maintenancerequest", "approve_selected")}, _act(MR, "approve_selected", "request"),
         f"Approved maintenance request {mr}", ("maintenance_request", mr, "approve")),
        ({("maintenance.maintenancerequest", "start_selected")}, _act(MR, "start_selected", "request"),
         f"Started work on maintenance request {mr}", ("maintenance_request", mr, "status_change")),
        ({("maintenance.maintenancerequest", "complete_selected")}, _act(MR, "complete_selected", "request"),
         f"Completed maintenance request {mr}", ("maintenance_request", mr, "status_change")),
        ({("maintenance.maintenancerequest", "reject_selected")}, _act(MR, "reject_selected", "to_reject"),
         f"Rejected maintenance request {w['to_reject'].code}",
         ("maintenance_request", w["to_reject"].code, "reject")),
        ({("maintenance.maintenancerequest", "cancel_selected")}, _act(MR, "cancel_selected", "to_cancel"),
         f"Cancelled maintenance request {w['to_cancel'].code}",
         ("maintenance_request", w["to_cancel"].code, "status_change")),
        ({("maintenance.maintenancerequest", "delete")}, _delete(MR, "to_delete"),
         f"Deleted maintenance request {w['to_delete']}", ("maintenance_request", w["to_delete"].code, "delete")),
        ({("maintenance.maintenancerequest", "delete_selected")},
         _act(MR, "delete_selected", "to_bulk_delete", confirm=True),
         f"Deleted maintenance request {w['to_bulk_delete']}",
         ("maintenance_request", w["to_bulk_delete"].code, "delete")),
        ({("maintenance.comment", "delete")}, _delete("/admin/maintenance/comment/", "comment"),
         f"Deleted comment {w['comment']}", ("comment", str(w["comment"].pk), "delete")),
        ({("maintenance.comment", "delete_selected")},
         _act("/admin/maintenance/comment/", "delete_selected", "second_comment", confirm=True),
         f"Deleted comment {w['second_comment']}", ("comment", str(w["second_comment"].pk), "delete")),
        ({("maintenance.attachment", "delete")}, _delete("/admin/maintenance/attachment/", "attachment"),
         "Deleted attachment pump.txt", ("attachment", str(w["attachment"].pk), "delete")),
        ({("maintenance.attachment", "delete_selected")},
         _act("/admin/maintenance/attachment/", "delete_selected", "second_attachment", confirm=True),
         "Deleted attachment log.txt", ("attachment", str(w["second_attachment"].pk), "delete")),
        # --- emergencies (closed, never deleted)
        ({("emergencies.emergency", "add")},
         _add(EMG, "new_emg", lambda: Emergency.objects.get(description="Engine room fire"), vessel="MV Polar",
              emergency_type="fire", severity="critical", location="Berth 2", description="Engine room fire"),
         lambda w: f"Reported emergency {w['new_emg'].code} (fire, critical)",
         lambda w: ("emergency", w["new_emg"].code, "create")),
        ({("emergencies.emergency", "change")}, _change(EMG, "emergency", location="Berth 7"),
         f"Edited emergency {emg}", ("emergency", emg, "update")),
        ({("emergencies.emergency", "acknowledge_selected")}, _act(EMG, "acknowledge_selected", "emergency"),
         f"Acknowledged emergency {emg}", ("emergency", emg, "status_change")),
        ({("emergencies.emergency", "dispatch_selected")}, _act(EMG, "dispatch_selected", "emergency"),
         f"Dispatched help to emergency {emg}", ("emergency", emg, "status_change")),
        ({("emergencies.emergency", "resolve_selected")}, _act(EMG, "resolve_selected", "emergency"),
         f"Resolved emergency {emg}", ("emergency", emg, "status_change")),
        ({("emergencies.emergency", "close_selected")}, _act(EMG, "close_selected", "emergency"),
         f"Closed emergency {emg}", ("emergency", emg, "status_change")),
        # --- inventory: a changed quantity on the item's page is the admin's stock adjustment
        ({("maintenance.inventoryitem", "add")},
         _add(INV, "new_item", lambda: InventoryItem.objects.get(part_number="GK-9"), part_number="GK-9",
              name="Gasket kit", location="B2", quantity_on_hand="4", minimum_stock="2"),
         lambda w: f"Created inventory item {w['new_item'].code} (GK-9)",
         lambda w: ("inventory_item", w["new_item"].code, "create")),
        ({("maintenance.inventoryitem", "change")}, _change(INV, "item", name="Impeller, bronze"),
         f"Edited inventory item {item.code} ({item.part_number})", ("inventory_item", item.code, "update")),
        (set(), _change(INV, "item", quantity_on_hand="6"),  # the admin's stock adjustment: a new quantity
         f"Adjusted stock of {item.part_number} by +5 to 6",
         lambda w: ("stock_adjustment", str(w["item"].adjustments.latest("id").pk), "create")),
        ({("maintenance.inventoryitem", "delete")}, _delete(INV, "spare_item"),
         f"Deleted inventory item {w['spare_item']}", ("inventory_item", w["spare_item"].code, "delete")),
        ({("maintenance.inventoryitem", "delete_selected")}, _act(INV, "delete_selected", "bulk_item", confirm=True),
         f"Deleted inventory item {w['bulk_item']}", ("inventory_item", w["bulk_item"].code, "delete")),
        # --- users (deactivated, never deleted)
        ({("accounts.user", "add")},
         _add(USERS, "new_user", lambda: User.objects.get(user_id="ST011"), user_id="ST011",
              password1="Fresh-Pass-2026", password2="Fresh-Pass-2026", full_name="Fay Fresh",
              email="fay@example.com", role="staff"),
         "Created account ST011 (Staff)", ("user", "ST011", "create")),
        ({("accounts.user", "change")}, _change(USERS, "staff", full_name="Sam Staffer"),
         f"Updated the profile of {staff.user_id} (full name)", ("user", staff.user_id, "update")),
        (set(), _change(USERS, "other_staff", role="port_engineer"),
         f"Changed the role of {other.user_id} from Staff to Port engineer", ("user", other.user_id, "role_change")),
        (set(), _change(USERS, "other_staff", groups=lambda w: [str(w["crew"].pk)]),
         f"Edited user {other}", ("user", other.user_id, "permission_change")),
        (set(), _change(USERS, "other_staff", is_active=None),
         f"Deactivated account {other.user_id}", ("user", other.user_id, "update")),
        ({("accounts.user", "approve_selected")}, _act(USERS, "approve_selected", "pending"),
         "Approved account ST009", ("user", "ST009", "approve")),
        ({("accounts.user", "reject_selected")}, _act(USERS, "reject_selected", "second_pending"),
         "Rejected account ST010", ("user", "ST010", "reject")),
        ({("accounts.user", "reset_password_action")}, _reset_password,
         f"Reset the password of {staff.user_id}", ("user", staff.user_id, "password_reset")),
        # --- groups
        ({("auth.group", "add")},
         _add(GROUPS, "new_group", lambda: Group.objects.get(name="Bosuns"), name="Bosuns",
              permissions=[str(_perm("view_inventoryitem").pk)]),
         "Created group Bosuns", ("group", "Bosuns", "create")),
        ({("auth.group", "change")}, _change(GROUPS, "crew", permissions=[str(_perm("view_inventoryitem").pk)]),
         "Edited group Deck crew", ("group", "Deck crew", "permission_change")),
        ({("auth.group", "delete")}, _delete(GROUPS, "old_crew"),
         "Deleted group Old crew", ("group", "Old crew", "delete")),
        ({("auth.group", "delete_selected")}, _act(GROUPS, "delete_selected", "new_group", confirm=True),
         "Deleted group Bosuns", ("group", "Bosuns", "delete")),
        # --- alert rules (settings)
        ({("alerts.alertrule", "add")},
         _add(RULES, "rule", _rule("Fires at night"), name="Fires at night", trigger="event", enabled="on",
              event_type="emergency_created", severity="critical", threshold="1", window_minutes="10",
              recipient_roles=["admin"]),
         "Created alert rule Fires at night", lambda w: ("alert_rule", str(w["rule"].pk), "create")),
        ({("alerts.alertrule", "change")}, _change(RULES, "rule", description="Wake the duty officer"),
         "Edited alert rule Fires at night", lambda w: ("alert_rule", str(w["rule"].pk), "update")),
        ({("alerts.alertrule", "delete")}, _delete(RULES, "rule"),
         "Deleted alert rule Fires at night", lambda w: ("alert_rule", str(w["rule"].pk), "delete")),
        ({("alerts.alertrule", "delete_selected")}, _act(RULES, "delete_selected", "quiet_rule", confirm=True),
         lambda w: f"Deleted alert rule {w['quiet_rule']}", lambda w: ("alert_rule", str(w["quiet_rule"].pk),
                                                                       "delete")),
        # --- legal holds and system events (audit records: no audit_trail row of their own)
        ({("audit.legalhold", "add")},
         _add(HOLDS, "hold", lambda: LegalHold.objects.get(entity_id=mr), entity_type="maintenance_request",
              entity_id=mr, reason="Claim"),
         "Placed legal hold", None),
        ({("audit.legalhold", "lift_holds")}, _act(HOLDS, "lift_holds", "hold", lift_reason="Claim settled"),
         "Lifted legal hold", None),
        ({("audit.systemevent", "acknowledge_events")},
         _act("/admin/audit/systemevent/", "acknowledge_events", "event", note="Checked"),
         "Acknowledged system event", None),
        *[({(label, "export_selected_csv")}, _export(label), sentence, None) for label, sentence in EXPORTS.items()],
    ]


def _resolve(value, w):
    return value(w) if callable(value) else value


def admin_actions_offered(user) -> set[tuple[str, str]]:
    """Every (model, action) the admin site offers ``user``: the add and change pages, the delete
    page and each changelist action."""
    request = RequestFactory().get("/admin/")
    request.user = user
    offered = set()
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        if model_admin.has_add_permission(request):
            offered.add((label, "add"))
        if model_admin.has_change_permission(request):
            offered.add((label, "change"))
        if model_admin.has_delete_permission(request):
            offered.add((label, "delete"))
        offered |= {(label, name) for name in model_admin.get_actions(request)}
    return offered


# ---- the tests --------------------------------------------------------------------------------


@pytest.fixture
def steps_world(admin_world):
    w = admin_world
    w["comment"] = maintenance.add_comment(request_obj=w["request"], actor=w["staff"], body="Pump noisy")
    w["second_comment"] = maintenance.add_comment(request_obj=w["request"], actor=w["staff"], body="Still noisy")
    w["second_attachment"] = maintenance.add_attachment(request_obj=w["request"], actor=w["staff"],
                                                        uploaded_file=SimpleUploadedFile("log.txt", b"engine log"))
    w["quiet_rule"] = AlertRule.objects.create(name="Quiet rule", trigger="event", event_type="user_registered",
                                               severity="info", threshold=1, window_minutes=10)
    return w


def test_every_form_that_writes_asks_for_a_reason_and_a_page_that_only_shows_does_not(as_, steps_world):
    w, client = steps_world, as_("admin")
    for url in (f"{MR}{w['request'].pk}/change/", f"{EMG}add/", f"{INV}{w['item'].pk}/change/", f"{USERS}add/",
                f"{GROUPS}{w['crew'].pk}/change/", f"{RULES}{w['quiet_rule'].pk}/change/", f"{RULES}add/",
                f"/admin/maintenance/comment/{w['comment'].pk}/delete/"):
        page = client.get(url).content.decode()
        assert 'name="change_reason"' in page, url
    shown_only = client.get(f"/admin/maintenance/comment/{w['comment'].pk}/change/").content.decode()
    assert "Pump noisy" in shown_only and "Change reason" not in shown_only


def test_the_table_covers_every_action_the_admin_offers_an_administrator(steps_world):
    covered = set().union(*(covers for covers, *_ in _steps(steps_world)))
    offered = admin_actions_offered(steps_world["admin"])
    assert offered - covered == set(), "admin actions without a row in the table"
    assert covered - offered == set(), "rows for actions the admin no longer offers"


def test_each_admin_action_is_an_activity_row_in_words_and_an_audit_row_with_its_reason(as_, steps_world):
    w = steps_world
    client = as_("admin")
    said = []
    for number, (covers, run, sentence, trail) in enumerate(_steps(w)):
        reason = f"Reason {number}: {sorted(covers)[0][1] if covers else 'edit'}"
        before = AuditTrail.objects.order_by("-id").values_list("id", flat=True).first() or 0
        response = run(client, w, reason)
        errors = [m for m in shown_messages(response) if "error" in m.lower() or "cannot" in m.lower()]
        assert response.status_code == 200 and not errors, (covers, response.status_code, errors)
        expected = _resolve(sentence, w)
        said.append(expected)
        rows = ActivityLog.objects.filter(user_id="ADM001", activity=expected)
        assert rows.count() == 1, (covers, expected, list(ActivityLog.objects.filter(user_id="ADM001").order_by(
            "-id").values_list("activity", flat=True)[:6]))
        if trail is None:
            continue
        assert rows.get().details == f"Reason: {reason}", (covers, rows.get().details)
        entity_type, entity_id, action_type = _resolve(trail, w)
        row = AuditTrail.objects.filter(id__gt=before, entity_type=entity_type, entity_id=entity_id,
                                        action_type=action_type).order_by("id").last()
        assert row is not None, (covers, entity_type, entity_id, action_type, list(
            AuditTrail.objects.filter(id__gt=before).values_list("entity_type", "entity_id", "action_type")))
        assert (row.user_id, row.status, row.change_reason) == ("ADM001", "completed", reason), covers

    shown = my_activity_pages(client)
    assert [s for s in said if html.escape(s) not in shown] == [], "not in My activity"


def my_activity_pages(client) -> str:
    """Every page of the person's "My activity" (newest first), as one text."""
    pages = []
    for number in range(1, 40):
        page = client.get("/my-activity/", {"page": number}).content.decode()
        pages.append(page)
        if 'rel="next"' not in page:
            return "".join(pages)
    raise AssertionError("My activity has more pages than expected")


def _own_request(w):
    return maintenance.create_request(actor=w["admin"], vessel="MV Own", title="Own job")


#: changelist actions a service refuses: (url, action, the object, its entity type, the refused action type,
#: the error message)
REFUSED = [
    (MR, "start_selected", lambda w: w["request"], "maintenance_request", "status_change",
     lambda o: f"Cannot start maintenance request {o.code}: it is pending."),
    (MR, "complete_selected", lambda w: w["request"], "maintenance_request", "status_change",
     lambda o: f"Cannot complete maintenance request {o.code}: it is pending."),
    (MR, "approve_selected", _own_request, "maintenance_request", "approve",
     lambda o: f"You may not approve your own maintenance request {o.code}: another manager must approve it"
               " (an administrator may override this with a reason)."),
    (EMG, "resolve_selected", lambda w: w["emergency"], "emergency", "status_change",
     lambda o: f"Cannot resolve emergency {o.code}: it is reported; only acknowledged or dispatched emergencies"
               " can be resolved."),
    (EMG, "close_selected", lambda w: w["emergency"], "emergency", "status_change",
     lambda o: f"Cannot close emergency {o.code}: it is reported; only resolved emergencies can be closed."),
]


@pytest.mark.parametrize(("url", "action", "target", "entity_type", "action_type", "error"), REFUSED,
                         ids=[f"{url.split('/')[-2]}-{action}" for url, action, *_ in REFUSED])
def test_an_admin_action_a_service_refuses_is_a_failed_row_with_the_message_shown(
        as_, admin_world, url, action, target, entity_type, action_type, error):
    obj = target(admin_world)
    status = obj.status
    reason = "" if action == "approve_selected" else "Tried anyway"  # approving one's own needs a reason
    response = changelist_action(as_("admin"), url, action, [obj], reason=reason)
    message = error(obj)
    assert f"{obj.code}: {message}" in shown_messages(response)
    assert "error" in {m.level_tag for m in response.context["messages"]}
    obj.refresh_from_db()
    assert obj.status == status
    failed = AuditTrail.objects.get(entity_type=entity_type, entity_id=obj.code, status="failed")
    assert (failed.user_id, failed.action_type, failed.error_message, failed.change_reason) == (
        "ADM001", action_type, message, reason)
    assert not UpdateHistory.objects.filter(audit=failed).exists()
    assert not ActivityLog.objects.filter(user_id="ADM001", activity__endswith=f" {obj.code}").exclude(
        activity__startswith="Created").exists()


@pytest.mark.django_db
def test_account_writes_refused_by_a_service_are_failed_rows_of_the_account(api, personas):
    """The account services are declared actions too: a 409 or a refused change leaves a failed row."""
    account_services.register_user(user_id="ST070", password="Newbie-Pass-2025", full_name="Pia Pending",
                                   email="pia@example.com")
    client = api(personas["admin"])
    assert client.post("/api/users/ST070/approve/", {"change_reason": "Known"}, format="json").status_code == 200
    assert client.post("/api/users/ST070/reject/", {"change_reason": "Twice"}, format="json").status_code == 409
    with pytest.raises(DomainError):  # the shell: the last administrator keeps the role
        account_services.change_role(user=personas["admin"], actor=personas["admin"], role="staff", reason="Leaving")
    failed = list(AuditTrail.objects.filter(entity_type="user", status="failed").order_by("id")
                  .values_list("entity_id", "user_id", "action_type", "error_message", "change_reason"))
    assert failed == [
        ("ST070", "ADM001", "reject", "Cannot reject account ST070: it is approved; only pending accounts can be "
                                      "rejected.", "Twice"),
        ("ADM001", "ADM001", "role_change", "At least one active administrator must remain.", "Leaving"),
    ]
    assert not UpdateHistory.objects.filter(audit__status="failed").exists()
    assert User.objects.get(user_id="ADM001").role == "admin"
