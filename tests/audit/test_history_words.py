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
