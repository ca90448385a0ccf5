"""The state of a system event: processed, then acknowledged (SPEC "Acting on events").

*Processed*: its alert rules were evaluated and one delivery per recipient was
created (the ``alerts`` app does that and calls :func:`mark_processed` in the
same transaction). *Acknowledged*: a person took it on (:func:`acknowledge_event`).
*Open critical*: critical and not acknowledged.

Each state column (:data:`audit.models.EVENT_STATE_COLUMNS`) is set once, from
false or empty to a value, by the two functions here and nowhere else; on
PostgreSQL the append-only trigger (migration 0004) refuses anything else.
None of them is in the seal's canonical form, so neither step changes a
sealed row's hash.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audit import services
from audit.context import audit_context
from audit.models import SystemEvent

#: the activity text of an acknowledgement (the stream turns such rows into ``acknowledged`` messages)
ACKNOWLEDGED_ACTIVITY = "Acknowledged system event"
NOTE_MAX = 2000


class EventNotFound(LookupError):
    """No system event has this id."""


class AlreadyAcknowledged(Exception):
    """The event was acknowledged before (by ``event.acknowledged_by``)."""

    def __init__(self, event: SystemEvent):
        super().__init__(
            f"System event {event.pk} was already acknowledged by {event.acknowledged_by} "
            f"at {event.acknowledged_at:%Y-%m-%d %H:%M:%S} UTC."
        )
        self.event = event


def claim_unprocessed(event_id: int) -> SystemEvent | None:
    """Inside a transaction: the event locked for processing, or ``None`` when it is
    processed already or another worker holds it (PostgreSQL ``SKIP LOCKED``)."""
    return (SystemEvent.objects.select_for_update(skip_locked=True)
            .filter(pk=event_id, processed=False).first())


def mark_processed(event: SystemEvent, *, now=None) -> bool:
    """Set ``processed`` and ``processed_at`` once; False when it was set already."""
    now = now or timezone.now()
    changed = SystemEvent.objects.filter(pk=event.pk, processed=False).update(processed=True, processed_at=now)
    if changed:
        event.processed, event.processed_at = True, now
    return bool(changed)


def unprocessed_ids(*, older_than_seconds: float = 0, limit: int = 500) -> list[int]:
    """Unprocessed events committed at least ``older_than_seconds`` ago, oldest first
    (``event_unprocessed_idx``)."""
    qs = SystemEvent.objects.filter(processed=False)
    if older_than_seconds:
        qs = qs.filter(timestamp__lte=timezone.now() - timedelta(seconds=older_than_seconds))
    return list(qs.order_by("id").values_list("id", flat=True)[:limit])


def acknowledge_event(*, event_id: int, actor, note: str = "") -> SystemEvent:
    """A person takes the event on: who (``actor.user_id``), when, and a note. Recorded as
    an activity row ("Acknowledged system event") in the same transaction. Raises
    :class:`EventNotFound` or :class:`AlreadyAcknowledged`."""
    note = (note or "").replace("\x00", "").strip()[:NOTE_MAX]
    with transaction.atomic():
        event = SystemEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None:
            raise EventNotFound(event_id)
        if event.acknowledged_at is not None:
            raise AlreadyAcknowledged(event)
        now = timezone.now()
        SystemEvent.objects.filter(pk=event.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=now, acknowledged_by=actor.user_id, acknowledgement_note=note)
        event.acknowledged_at, event.acknowledged_by, event.acknowledgement_note = now, actor.user_id, note
        with audit_context(actor=actor):
            services.log_activity(ACKNOWLEDGED_ACTIVITY, json.dumps(
                {"event_id": event.pk, "event_type": event.event_type, "severity": event.severity,
                 "entity_type": event.entity_type, "entity_id": event.entity_id, "note": note},
                sort_keys=True, ensure_ascii=False))
    return event


def acknowledged_event_id(details: str) -> int | None:
    """The event id in the details of an acknowledgement activity row (None if unreadable)."""
    try:
        value = json.loads(details).get("event_id")
    except (ValueError, AttributeError, TypeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
