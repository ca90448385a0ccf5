"""Concurrent writers on PostgreSQL: codes stay unique, stock never goes negative."""

import threading

import pytest
from django.db import connection

from core.errors import DomainError
from maintenance import services
from maintenance.models import InventoryItem, MaintenanceRequest, StockAdjustment

THREADS = 16


def _run_together(count, work):
    """Run ``work(i)`` in ``count`` threads released at the same moment;
    return the results (or exceptions) in thread order."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def target(i):
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_creates_get_distinct_codes(make_user):
    staff = make_user("ST001")

    def create(i):
        return services.create_request(actor=staff, vessel="MV Aurora", title=f"Job {i}").code

    codes = _run_together(THREADS, create)
    assert all(isinstance(c, str) for c in codes), codes
    assert len(set(codes)) == THREADS
    assert sorted(codes) == [f"MR{n:03d}" for n in range(1, THREADS + 1)]
    assert MaintenanceRequest.objects.count() == THREADS


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_withdrawals_never_go_below_zero(make_user):
    engineer = make_user("PE001", role="port_engineer")
    item = services.create_item(actor=engineer, part_number="FLT-1", name="Filter", quantity_on_hand=5)

    def take(i):
        return services.adjust_stock(
            item=InventoryItem.objects.get(pk=item.pk), actor=engineer, quantity_change=-1, reason=f"Job {i}"
        )

    results = _run_together(THREADS, take)
    refused = [r for r in results if isinstance(r, DomainError)]
    done = [r for r in results if isinstance(r, StockAdjustment)]
    assert (len(done), len(refused)) == (5, THREADS - 5), results
    item.refresh_from_db()
    assert item.quantity_on_hand == 0
    assert sorted(a.resulting_quantity for a in done) == [0, 1, 2, 3, 4]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_views_of_a_comment_record_its_receipt_once(make_user):
    """Messages received: the unique constraint, not the read before it, keeps one row per comment and party."""
    from audit.models import ActivityLog
    from maintenance.models import CommentReceipt, ReceiptChannel

    staff, engineer = make_user("ST001"), make_user("PE001", role="port_engineer")
    mr = services.create_request(actor=staff, vessel="MV Aurora", title="Radar")
    services.approve_request(request_obj=mr, actor=engineer)
    comment = services.add_comment(request_obj=mr, actor=engineer, body="On order")

    def view(i):
        obj = MaintenanceRequest.objects.get(pk=mr.pk)
        return services.record_comments_received(request_obj=obj, recipient=staff, comments=[comment],
                                                 channel=ReceiptChannel.PAGE)

    results = _run_together(THREADS, view)
    assert sorted(results) == [0] * (THREADS - 1) + [1], results
    assert CommentReceipt.objects.filter(comment=comment, recipient=staff).count() == 1
    assert ActivityLog.objects.filter(user_id="ST001", activity__startswith="Received comment").count() == 1
