"""Shared set-up for the integrity and retention tests."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.utils import timezone

from audit import services
from audit.context import audit_context
from audit.models import ActivityLog, AuditTrail, SystemEvent, UpdateHistory


def make_rows(n: int = 3, *, user: str = "PE001", entity_prefix: str = "MR") -> list[AuditTrail]:
    """n of each: an activity, a system event and a change (trail + one history row)."""
    trails = []
    with audit_context(actor=user):
        for i in range(n):
            services.log_activity("Viewed request", f"{entity_prefix}{i:03d}")
            services.log_system_event("request_viewed", "maintenance_request", f"{entity_prefix}{i:03d}",
                                      {"n": i, "nested": {"b": 1, "a": [1.5, None]}})
            trails.append(services.log_entity_change("maintenance_request", f"{entity_prefix}{i:03d}", "status",
                                                     "pending", "approved", action_type="approve",
                                                     change_reason=f"ok {i} ✓"))
    return trails


def backdate(days: float, *, trails=(), activities=(), events=()):
    """Move rows into the past (before sealing; after a seal this is tampering)."""
    when = timezone.now() - timedelta(days=days)
    ids = [t.pk for t in trails]
    AuditTrail.objects.filter(pk__in=ids).update(timestamp=when)
    UpdateHistory.objects.filter(audit_id__in=ids).update(timestamp=when)
    ActivityLog.objects.filter(pk__in=[a.pk for a in activities]).update(timestamp=when)
    SystemEvent.objects.filter(pk__in=[e.pk for e in events]).update(timestamp=when)


def raw(sql: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.rowcount
