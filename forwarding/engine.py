"""Forwarding runs: for each sink and audit table, the rows after its cursor, in id order.

A batch is read, turned into records (:mod:`forwarding.schema`) and sent; only when the sink
accepted it does the cursor move to the batch's last id, in the same transaction that holds
the cursor's row lock (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so two runs never send the same
table to the same sink at once). A failed batch leaves the cursor where it was and is sent
again by the next run: at least once, in order per table.

Ids are taken in order without skipping a gap that may still fill: a row whose insert has not
committed yet has an id below rows that did. A gap is passed only once the row after it is
``AUDIT_FORWARD_SETTLE`` seconds old (it was then a rolled-back insert, or a purged row). A
new sink starts at the oldest row present.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from audit.models import AUDIT_MODELS, SystemEvent
from forwarding import conf, schema
from forwarding.models import ForwardCursor
from forwarding.sinks import Sink, SinkError

logger = logging.getLogger("forwarding")

MODELS = AUDIT_MODELS
LAGGING_EVENT = "audit_forwarding_lagging"


def _ready(rows, last_id: int, now: datetime) -> list:
    """The rows that follow ``last_id`` without a gap that may still fill."""
    settle = timedelta(seconds=conf.settle())
    expected = last_id + 1
    out = []
    for row in rows:
        # a sink's first batch starts at the oldest row there is (ids need not start at 1)
        if row.pk != expected and (last_id or out) and now - row.timestamp < settle:
            break
        out.append(row)
        expected = row.pk + 1
    return out


def forward_table(sink: Sink, table: str, *, now: datetime | None = None) -> int | None:
    """Send one batch of ``table`` to ``sink``; returns the rows sent (0: nothing ready, or the
    table is being sent by another run), or None when the sink refused the batch."""
    model = MODELS[table]
    with transaction.atomic():
        ForwardCursor.objects.get_or_create(sink=sink.name, table=table)
        cursor = ForwardCursor.objects.select_for_update(skip_locked=True).filter(sink=sink.name, table=table).first()
        if cursor is None:
            return 0
        rows = list(model.objects.filter(pk__gt=cursor.last_id).order_by("pk")[: conf.batch_size()])
        rows = _ready(rows, cursor.last_id, now or timezone.now())
        if not rows:
            return 0
        try:
            sink.send([schema.record(table, row) for row in rows])
        except SinkError as exc:
            cursor.failures += 1
            cursor.last_error = str(exc)[:1000]
            cursor.updated_at = timezone.now()
            cursor.save(update_fields=["failures", "last_error", "updated_at"])
            logger.warning("forwarding %s to %s failed (attempt %d since the last success); resent next run: %s",
                           table, sink.name, cursor.failures, exc)
            return None
        cursor.last_id = rows[-1].pk
        cursor.rows_sent += len(rows)
        cursor.last_sent_at = cursor.updated_at = timezone.now()
        cursor.failures = 0
        cursor.last_error = ""
        cursor.save(update_fields=["last_id", "rows_sent", "last_sent_at", "failures", "last_error", "updated_at"])
        return len(rows)


def forward(sinks: list[Sink] | None = None, *, run_for: float | None = None) -> dict:
    """Forward to each sink until every table is caught up, a sink fails (the others go on), or
    ``run_for`` seconds (``AUDIT_FORWARD_RUN_FOR``) have passed. Returns rows sent per sink and table."""
    sinks = conf.configured_sinks() if sinks is None else sinks
    deadline = time.monotonic() + (conf.run_for() if run_for is None else run_for)
    sent = {sink.name: dict.fromkeys(schema.TABLES, 0) for sink in sinks}
    failed: set[str] = set()
    while True:
        progress = False
        for sink in sinks:
            if sink.name in failed:
                continue
            for table in schema.TABLES:
                count = forward_table(sink, table)
                if count is None:
                    failed.add(sink.name)
                    break
                sent[sink.name][table] += count
                progress = progress or count > 0
        if not progress or time.monotonic() > deadline:
            return sent


def lag(sink_name: str, *, now: datetime | None = None) -> float:
    """Seconds since the oldest row ``sink_name`` has not received was written (0: caught up)."""
    now = now or timezone.now()
    cursors = dict(ForwardCursor.objects.filter(sink=sink_name).values_list("table", "last_id"))
    oldest = None
    for table, model in MODELS.items():
        first = (model.objects.filter(pk__gt=cursors.get(table, 0)).order_by("pk")
                 .values_list("timestamp", flat=True).first())
        if first is not None and (oldest is None or first < oldest):
            oldest = first
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0


def status(*, now: datetime | None = None) -> list[dict]:
    """Each configured sink: its lag, when it last accepted a batch, its last error (no credentials)."""
    now = now or timezone.now()
    out = []
    for sink in conf.configured_sinks():
        cursors = list(ForwardCursor.objects.filter(sink=sink.name))
        sent_at = [c.last_sent_at for c in cursors if c.last_sent_at]
        errors = [c for c in cursors if c.last_error]
        seconds = lag(sink.name, now=now)
        out.append({"name": sink.name, "lag": seconds, "behind": seconds > conf.lag_alert(),
                    "last_sent_at": max(sent_at) if sent_at else None,
                    "last_error": max(errors, key=lambda c: c.updated_at).last_error if errors else ""})
    return out


def check_lag(*, now: datetime | None = None) -> list[str]:
    """Record a ``warning`` event ``audit_forwarding_lagging`` for each sink whose lag exceeds
    ``AUDIT_FORWARD_LAG_ALERT`` seconds, at most once per that many seconds and sink (alert rules
    can match it). Never a readiness failure. Returns the sinks alerted about."""
    from audit import services

    now = now or timezone.now()
    threshold = conf.lag_alert()
    alerted = []
    for sink in conf.configured_sinks():
        seconds = lag(sink.name, now=now)
        if seconds <= threshold:
            continue
        entity_id = sink.name[:64]
        if SystemEvent.objects.filter(event_type=LAGGING_EVENT, entity_id=entity_id,
                                      timestamp__gte=now - timedelta(seconds=threshold)).exists():
            continue
        last_error = ForwardCursor.objects.filter(sink=sink.name).exclude(last_error="").order_by("-updated_at")
        services.log_system_event(
            LAGGING_EVENT, entity_type="forwarding_sink", entity_id=entity_id, severity="warning",
            event_data={"sink": sink.name, "lag_seconds": round(seconds, 1), "threshold_seconds": threshold,
                        "last_error": last_error.values_list("last_error", flat=True).first() or ""})
        alerted.append(sink.name)
    return alerted
