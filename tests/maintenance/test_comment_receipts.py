"""Messages received (issue 12.2): a comment is addressed to the request's parties (its requester,
assignee and approver) other than its author; the first time it is shown to one of them (the
request page, the API's comments) or notified to them (an alert delivery of its comment_added
event), that party's activity says so in words, once per comment and party."""

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from alerts.models import AlertRule, Delivery, Outcome
from audit.models import ActivityLog, SystemEvent
from maintenance import services
from maintenance.models import CommentReceipt

pytestmark = pytest.mark.django_db

RECEIVED = "Received comment on MR001 from PE001 · PE001 Person"
PAGE = "/requests/MR001/"


@pytest.fixture
def approved(staff, engineer):
    """MR001 of ST001, approved by PE001 (so both are its parties), with PE001's comment."""
    mr = services.create_request(actor=staff, vessel="MV Wren", title="Winch brake", description="Slips")
    services.approve_request(request_obj=mr, actor=engineer, reason="Safety")
    comment = services.add_comment(request_obj=mr, actor=engineer, body="Parts are in store.")
    return mr, comment


def _client(user):
    c = Client()
    c.force_login(user)
    return c


def _received(user):
    return list(ActivityLog.objects.filter(user_id=user.user_id, activity__startswith="Received comment")
                .values_list("activity", "details"))


def test_the_senders_own_view_records_nothing(approved, engineer):
    _client(engineer).get(PAGE)
    assert _received(engineer) == []
    assert not CommentReceipt.objects.exists()


def test_the_other_partys_first_view_records_one_row_and_the_second_none(approved, staff):
    mr, comment = approved
    c = _client(staff)
    page = c.get(PAGE)
    assert page.status_code == 200 and "Parts are in store." in page.content.decode()
    assert _received(staff) == [(RECEIVED, f"Comment {comment.pk}, shown on the request page")]
    c.get(PAGE)
    c.get("/api/maintenance-requests/MR001/comments/", HTTP_ACCEPT="application/json")
    assert len(_received(staff)) == 1
    receipt = CommentReceipt.objects.get()
    assert (receipt.comment, receipt.recipient, receipt.channel) == (comment, staff, "page")


def test_an_api_read_of_the_comments_is_a_receipt(approved, staff, api):
    mr, comment = approved
    response = api(staff).get("/api/maintenance-requests/MR001/comments/")
    assert response.status_code == 200 and response.json()["results"][0]["body"] == "Parts are in store."
    assert _received(staff) == [(RECEIVED, f"Comment {comment.pk}, read through the API")]
    api(staff).get("/api/maintenance-requests/MR001/comments/")
    assert len(_received(staff)) == 1


def test_a_manager_who_is_no_party_of_the_request_receives_nothing(approved, make_user):
    other = make_user("PE002", role="port_engineer")
    assert _client(other).get(PAGE).status_code == 200
    assert _received(other) == [] and not CommentReceipt.objects.exists()


def test_each_party_receives_each_comment_once(approved, staff, engineer, make_user):
    mr, first = approved
    assignee = make_user("ST009", role="staff")
    services.assign_request(request_obj=mr, actor=engineer, assignee=assignee)
    second = services.add_comment(request_obj=mr, actor=staff, body="Thanks, when?")
    _client(engineer).get(PAGE)
    _client(assignee).get(PAGE)
    _client(staff).get(PAGE)
    assert _received(engineer) == [("Received comment on MR001 from ST001 · ST001 Person",
                                    f"Comment {second.pk}, shown on the request page")]
    assert sorted(d for _, d in _received(assignee)) == sorted(
        [f"Comment {first.pk}, shown on the request page", f"Comment {second.pk}, shown on the request page"])
    assert _received(staff) == [(RECEIVED, f"Comment {first.pk}, shown on the request page")]


def test_the_admin_page_of_the_request_shows_its_comments_to_a_party_who_is_an_administrator(staff, make_user):
    boss = make_user("ADM001", role="admin")
    mr = services.create_request(actor=staff, vessel="MV Wren", title="Davit", description="")
    services.approve_request(request_obj=mr, actor=boss)
    comment = services.add_comment(request_obj=mr, actor=staff, body="Davit is seized.")
    c = _client(boss)
    page = c.get(f"/admin/maintenance/maintenancerequest/{mr.pk}/change/")
    assert page.status_code == 200 and "Davit is seized." in page.content.decode()
    c.get(f"/admin/maintenance/maintenancerequest/{mr.pk}/change/")
    assert _received(boss) == [("Received comment on MR001 from ST001 · ST001 Person",
                                f"Comment {comment.pk}, shown on the admin page")]


def test_a_comment_reaches_a_party_once_whatever_the_database_sees(approved, staff):
    """The unique constraint, not a read before the write, keeps it once."""
    _, comment = approved
    CommentReceipt.objects.create(comment=comment, recipient=staff, channel="api")
    with pytest.raises(IntegrityError), transaction.atomic():
        CommentReceipt.objects.create(comment=comment, recipient=staff, channel="page")


@pytest.mark.tasks
def test_a_notification_of_the_comment_is_a_receipt(approved, staff, engineer, django_capture_on_commit_callbacks):
    from core.background import run_pending

    AlertRule.objects.create(name="Comments to the parties", event_type="comment_added",
                             recipient_users=["ST001", "PE001"])
    mr, first = approved
    with django_capture_on_commit_callbacks(execute=True):
        comment = services.add_comment(request_obj=mr, actor=engineer, body="Delivered to the quay.")
    event = SystemEvent.objects.get(event_type="comment_added", event_data__contains=f'"comment_id": {comment.pk}')
    assert (event.entity_type, event.entity_id, event.severity) == ("maintenance_request", "MR001", "info")
    for _ in range(20):  # play the worker until every task ran
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            ran = run_pending()
        if not ran and not callbacks:
            break
    sent = Delivery.objects.filter(event=event, outcome=Outcome.SENT)
    assert sorted(sent.values_list("recipient_user", flat=True)) == ["PE001", "ST001"]
    assert _received(staff) == [(RECEIVED, f"Comment {comment.pk}, notified by e-mail")]
    assert _received(engineer) == []  # told of his own comment, which is not addressed to him
    _client(staff).get(PAGE)  # the first comment is new to ST001 there, the notified one is not
    assert sorted(d for _, d in _received(staff)) == sorted([f"Comment {comment.pk}, notified by e-mail",
                                                            f"Comment {first.pk}, shown on the request page"])
    assert CommentReceipt.objects.filter(comment=comment, recipient=staff).get().channel == "notified"


def test_a_receipt_outlives_its_deleted_request_and_comment(approved, staff):
    """A receipt is evidence of what a party received: deleting the request (and with it
    the comment) keeps it, and the delete does not query the receipts (no cascade)."""
    mr, comment = approved
    _client(staff).get(PAGE)
    mr.delete()
    receipt = CommentReceipt.objects.get()
    assert (receipt.comment_id, receipt.recipient_id, receipt.channel) == (comment.pk, staff.pk, "page")
    assert len(_received(staff)) == 1
