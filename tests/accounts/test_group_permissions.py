"""A group gaining or losing a permission is a captured permission_change of
the group (SPEC "Group permissions"): from the admin's group page (actor, IP,
reason) and from the shell (group.permissions.add/remove/set/clear), with
one update_history row per change, shown in words on the audit-log page and
served by the API."""

import json
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from audit.context import audit_context
from audit.models import AuditTrail, UpdateHistory

pytestmark = pytest.mark.django_db


def perm(codename):
    return Permission.objects.get(content_type__app_label="auth", codename=codename)


def trail(name):
    return AuditTrail.objects.filter(entity_type="group", entity_id=name, action_type="permission_change").order_by("id")


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def crew(db):
    return Group.objects.create(name="Deck crew")


def test_admin_group_page_adding_and_removing_a_permission_is_recorded_with_actor_ip_and_reason(admin_client, crew):
    url = f"/admin/auth/group/{crew.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200 and 'name="change_reason"' in page.content.decode()
    change, view = perm("change_group"), perm("view_group")

    response = admin_client.post(url, {"name": "Deck crew", "permissions": [change.pk, view.pk],
                                       "change_reason": "Crew leads manage groups"}, REMOTE_ADDR="198.51.100.40")
    assert response.status_code == 302
    assert set(crew.permissions.values_list("codename", flat=True)) == {"change_group", "view_group"}
    added = trail("Deck crew").get()
    assert (added.user_id, added.ip_address, added.change_reason, added.status) == (
        "ADM001", "198.51.100.40", "Crew leads manage groups", "completed")
    assert added.changes == {"permissions": {"old": [], "new": ["auth.change_group", "auth.view_group"]}}
    field = UpdateHistory.objects.get(audit=added)
    assert (field.table_name, field.record_id) == ("auth_group", "Deck crew")
    assert (field.field_name, field.user_id, field.change_reason) == (
        "permissions", "ADM001", "Crew leads manage groups")
    assert json.loads(field.new_value) == ["auth.change_group", "auth.view_group"]

    admin_client.post(url, {"name": "Deck crew", "permissions": [view.pk], "change_reason": "Too broad"},
                      REMOTE_ADDR="198.51.100.41")
    removed = trail("Deck crew").last()
    assert removed.pk != added.pk
    assert (removed.user_id, removed.ip_address, removed.change_reason) == ("ADM001", "198.51.100.41", "Too broad")
    assert removed.changes == {"permissions": {"old": ["auth.change_group", "auth.view_group"],
                                               "new": ["auth.view_group"]}}


def test_admin_saving_the_group_unchanged_records_no_permission_change(admin_client, crew):
    crew.permissions.add(perm("view_group"))
    before = trail("Deck crew").count()
    admin_client.post(f"/admin/auth/group/{crew.pk}/change/",
                      {"name": "Deck crew", "permissions": [perm("view_group").pk], "change_reason": ""})
    assert trail("Deck crew").count() == before


def test_admin_adding_a_group_with_permissions_records_its_creation_and_its_permissions(admin_client):
    response = admin_client.post("/admin/auth/group/add/", {"name": "Engine room", "permissions": [perm("view_group").pk],
                                                           "change_reason": "New watch"}, REMOTE_ADDR="198.51.100.42")
    assert response.status_code == 302
    rows = AuditTrail.objects.filter(entity_type="group", entity_id="Engine room").order_by("id")
    assert [r.action_type for r in rows] == ["create", "permission_change"]
    assert all((r.user_id, r.ip_address, r.change_reason) == ("ADM001", "198.51.100.42", "New watch") for r in rows)
    assert rows[1].changes == {"permissions": {"old": [], "new": ["auth.view_group"]}}


def test_shell_add_remove_set_and_clear_are_each_recorded_with_the_context_actor_and_reason(admin_user, crew):
    change, view, add = perm("change_group"), perm("view_group"), perm("add_group")
    with audit_context(actor="ADM001", reason="Quarterly access review"):
        crew.permissions.add(change, view)
        crew.permissions.remove(change)
        crew.permissions.set([view, add])
        crew.permissions.clear()
        crew.permissions.clear()  # nothing left to clear: no row
    rows = list(trail("Deck crew"))
    assert [r.changes["permissions"] for r in rows] == [
        {"old": [], "new": ["auth.change_group", "auth.view_group"]},
        {"old": ["auth.change_group", "auth.view_group"], "new": ["auth.view_group"]},
        {"old": ["auth.view_group"], "new": ["auth.add_group", "auth.view_group"]},
        {"old": ["auth.add_group", "auth.view_group"], "new": []},
    ]
    assert {(r.user_id, r.change_reason, r.status) for r in rows} == {("ADM001", "Quarterly access review", "completed")}
    fields = UpdateHistory.objects.filter(table_name="auth_group", record_id="Deck crew", field_name="permissions")
    assert fields.count() == 4
    assert set(fields.values_list("user_id", "change_reason")) == {("ADM001", "Quarterly access review")}


def test_shell_reverse_side_permission_group_set_is_recorded_on_the_group(crew):
    with audit_context(actor="ADM001", reason="From the permission's side"):
        perm("delete_group").group_set.add(crew)
    row = trail("Deck crew").get()
    assert row.changes == {"permissions": {"old": [], "new": ["auth.delete_group"]}}
    assert (row.user_id, row.change_reason) == ("ADM001", "From the permission's side")


def test_a_user_gaining_rights_through_a_group_permission_shows_on_the_audit_log_page_and_the_api_in_words(
        admin_client, admin_user, api, crew):
    with audit_context(actor="ADM001", reason="Crew leads manage groups"):
        crew.permissions.add(perm("change_group"))
    html = admin_client.get("/admin/audit-log/?entity_type=group").content.decode()
    assert "changed the permissions of group Deck crew" in html
    assert "Can change group (Authentication and Authorization)" in html
    assert "Permissions" in html and "auth.change_group" not in html

    body = api(admin_user).get(f"/api/realtime/entity-history/group/{quote('Deck crew')}").json()
    assert (body["entity_type"], body["entity_id"]) == ("group", "Deck crew")
    assert [c["field_name"] for c in body["changes"]][0] == "permissions"  # newest first, after the creation's fields
    change = body["changes"][0]
    assert (change["action_type"], change["field_name"], change["user_id"], change["change_reason"]) == (
        "permission_change", "permissions", "ADM001", "Crew leads manage groups")
    assert json.loads(change["new_value"]) == ["auth.change_group"]
    records = api(admin_user).get("/api/realtime/audit-trail/?entity_type=group&hours=1").json()
    assert any(r["action_type"] == "permission_change" and r["entity_id"] == "Deck crew"
               for r in records["records"])
