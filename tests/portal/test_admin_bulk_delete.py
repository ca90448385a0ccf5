"""The admin's "Delete selected" of more maintenance requests than one audit statement holds:
on PostgreSQL the audit rows of 300 requests with two comments each take two statements (the
first one with the DELETEs), and the deletion answered a ValueError (a 500, nothing deleted)
until the write took its answer from that first statement only."""

import pytest

from audit.context import audit_context
from audit.models import ActivityLog, AuditTrail
from maintenance.models import Comment, MaintenanceRequest

pytestmark = pytest.mark.django_db

MR = "/admin/maintenance/maintenancerequest/"


def test_delete_selected_of_300_requests_with_their_comments_deletes_and_records_each(client, admin_user, staff):
    with audit_context(enabled=False):
        requests_ = MaintenanceRequest.objects.bulk_create([
            MaintenanceRequest(code=f"MB{i:04d}", vessel="MV Tern", title=f"Job {i}", requested_by=staff)
            for i in range(300)])
        Comment.objects.bulk_create([Comment(request=r, author=staff, body=f"note {k}")
                                     for r in requests_ for k in (1, 2)])
    client.force_login(admin_user)
    response = client.post(MR, {"action": "delete_selected", "_selected_action": [r.pk for r in requests_],
                                "index": 0, "select_across": 0, "post": "yes",
                                "change_reason": "Duplicates from the import"}, follow=True)
    assert response.status_code == 200
    assert "Successfully deleted 300 maintenance requests." in response.content.decode()
    assert not MaintenanceRequest.objects.filter(code__startswith="MB").exists()
    assert not Comment.objects.filter(request_id__in=[r.pk for r in requests_]).exists()
    deleted = AuditTrail.objects.filter(action_type="delete")
    assert deleted.filter(entity_type="maintenance_request", entity_id__startswith="MB").count() == 300
    assert deleted.filter(entity_type="comment").count() == 600
    assert set(deleted.values_list("user_id", "change_reason")) == {("ADM001", "Duplicates from the import")}
    assert ActivityLog.objects.filter(user_id="ADM001", activity__startswith="Deleted maintenance request").count() == 300
