"""Acting on events: processing (rules -> deliveries -> ``processed``), sending with
retries, failed-login thresholds and the sweep that catches whatever a lost
hook or a dead worker left behind.

Exactly once, with any number of workers:

- **processing** claims the event with ``SELECT ... FOR UPDATE SKIP LOCKED
  WHERE processed = false`` and, in that one transaction, creates the
  deliveries (unique per event, channel and recipient) and sets ``processed``:
  a second worker finds it locked or processed and does nothing;
- **sending** claims a delivery in its own short transaction (``sending``,
  ``attempts`` + 1) before talking to the outside world, and records the
  outcome with a guarded UPDATE. A worker killed mid-send leaves it in
  ``sending``; the sweep puts it back after :data:`STUCK_SECONDS`, so it is
  sent again at most once more, and ``attempts`` shows it.

Retries double from ``ALERT_RETRY_SECONDS`` (30 s, 60 s, 120 s, ...) up to
``ALERT_MAX_ATTEMPTS`` attempts; the last failure records a
``notification_failed`` warning, an event type that never alerts.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from alerts import channels, rules
from alerts.models import FAILED_LOGIN_THRESHOLD_EVENT, AlertRule, Channel, Delivery, GroupBy, Outcome, Trigger, url_key
from audit import services
from audit.context import audit_context
from audit.models import ActivityLog, SystemEvent
from audit.operations import events
from core import signals as core_signals

logger = logging.getLogger(__name__)

#: a delivery claimed this long ago and still ``sending`` belonged to a worker that died
STUCK_SECONDS = 300
#: the sweep leaves events and deliveries this young to their own on-commit task
SWEEP_MIN_AGE_SECONDS = 5.0


def max_attempts() -> int:
    return max(1, int(getattr(settings, "ALERT_MAX_ATTEMPTS", 5)))


def retry_delay(attempts: int) -> timedelta:
    """Back-off after the ``attempts``-th failure: the base, doubled each time."""
    base = float(getattr(settings, "ALERT_RETRY_SECONDS", 30.0))
    return timedelta(seconds=base * 2 ** max(0, attempts - 1))


# -- processing ---------------------------------------------------------------------------------


def process_event(event_id: int, *, enabled_rules=None) -> list[int] | None:
    """Evaluate the rules for one event, create its deliveries and mark it processed,
    all in one transaction; the deliveries are sent after the commit. Returns the new
    delivery ids (None when the event was processed already, or is being processed).
    ``enabled_rules``: the rules, when a batch has read them once already."""
    with transaction.atomic():
        event = events.claim_unprocessed(event_id)
        if event is None:
            return None
        planned = rules.plan(event, enabled_rules)
        ids: list[int] = []
        if planned:
            rows = [Delivery(event_id=event.pk, rule_id=t.rule_id, channel=t.channel, recipient=t.label[:254],
                             recipient_user=t.user_id, target_key=t.key) for t in planned]
            Delivery.objects.bulk_create(rows, ignore_conflicts=True)
            ids = list(Delivery.objects.filter(event_id=event.pk, outcome=Outcome.PENDING)
                       .values_list("id", flat=True))
            transaction.on_commit(lambda: _enqueue_deliveries(ids), robust=True)
        events.mark_processed(event)
    return ids


def _enqueue_deliveries(ids: list[int]) -> None:
    from alerts import tasks

    for pk in ids:
        tasks.deliver.enqueue(pk)


# -- sending ------------------------------------------------------------------------------------


def _claim(delivery_id: int) -> Delivery | None:
    now = timezone.now()
    with transaction.atomic():
        delivery = (Delivery.objects.select_for_update(skip_locked=True)
                    .filter(pk=delivery_id, outcome__in=(Outcome.PENDING, Outcome.RETRYING), next_attempt_at__lte=now)
                    .first())  # (no join: PostgreSQL locks no row of an outer join's nullable side)
        if delivery is None:
            return None
        delivery.outcome, delivery.claimed_at = Outcome.SENDING, now
        delivery.attempts += 1
        delivery.save(update_fields=["outcome", "claimed_at", "attempts"])
    return delivery


def _address(delivery: Delivery) -> str:
    """The e-mail address or the rule's URL this delivery goes to (a URL is found again by its hash)."""
    if delivery.channel == Channel.EMAIL:
        return delivery.recipient
    rule = delivery.rule
    for url in rule.url_list() if rule else ():
        if url_key(url) == delivery.target_key:
            return url
    raise channels.SendFailed("The notification URL is no longer in its rule.")


def _finish(delivery: Delivery, **fields) -> bool:
    """Record the outcome of the attempt this worker claimed (not if the sweep took it back meanwhile)."""
    return bool(Delivery.objects.filter(pk=delivery.pk, outcome=Outcome.SENDING, attempts=delivery.attempts)
                .update(**fields))


def attempt_delivery(delivery_id: int) -> str | None:
    """Send one delivery if it is due and nobody else is sending it; returns its new outcome."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    try:
        address = _address(delivery)
        if delivery.channel == Channel.EMAIL:
            channels.send_email(delivery.event, address)
        else:
            channels.send_url(delivery.event, address)
    except channels.SendFailed as exc:
        return _failed(delivery, str(exc))
    except Exception as exc:  # noqa: BLE001 - an unexpected error is a failed attempt, not a lost delivery
        logger.exception("alert delivery %s failed", delivery.pk)
        return _failed(delivery, f"Unexpected error: {exc.__class__.__name__}")
    now = timezone.now()
    if _finish(delivery, outcome=Outcome.SENT, sent_at=now, finished_at=now, last_error="") and delivery.recipient_user:
        _tell_sent(delivery)
    return Outcome.SENT


def _tell_sent(delivery: Delivery) -> None:
    """``notification_sent`` for a delivery that reached a user (a comment's addressee, say);
    what its receivers record cannot undo the sending, so their failures are only logged."""
    for receiver, result in core_signals.notification_sent.send_robust(
            sender=Delivery, event=delivery.event, recipient_user=delivery.recipient_user,
            channel=delivery.get_channel_display().lower()):
        if isinstance(result, Exception):
            logger.error("notification_sent receiver %r failed: %s", receiver, result.__class__.__name__)


def _failed(delivery: Delivery, error: str) -> str:
    now = timezone.now()
    if delivery.attempts >= max_attempts():
        if _finish(delivery, outcome=Outcome.FAILED, finished_at=now, last_error=error):
            with audit_context(actor="system"):
                services.log_system_event(
                    "notification_failed", "system_event", delivery.event_id,
                    {"delivery_id": delivery.pk, "channel": delivery.channel, "recipient": delivery.recipient,
                     "attempts": delivery.attempts, "last_error": error[:500], "event_type": delivery.event.event_type},
                    "warning",
                )
        return Outcome.FAILED
    when = now + retry_delay(delivery.attempts)
    if _finish(delivery, outcome=Outcome.RETRYING, next_attempt_at=when, last_error=error):
        from alerts import tasks

        transaction.on_commit(lambda: tasks.deliver_at(when, delivery.pk), robust=True)
    return Outcome.RETRYING


# -- failed-login thresholds --------------------------------------------------------------------


def _failed_logins(key_filter: Q, *, since, after_id: int, up_to_id: int) -> int:
    return (ActivityLog.objects.filter(key_filter, activity__startswith="Failed login", timestamp__gte=since,
                                       id__gt=after_id, id__lte=up_to_id).count())


def check_failed_logins(activity_id: int) -> list[SystemEvent]:
    """For each enabled failed-login rule: count the failed logins of this row's user
    (or from its IP address) within the rule's window, since the last time the rule
    fired for them; at the threshold record a ``failed_login_threshold`` warning that
    alerts the rule's recipients. Rules are locked while counting, so two workers
    checking two failures at once fire once."""
    row = ActivityLog.objects.filter(pk=activity_id).first()
    if row is None:
        return []
    fired = []
    for rule_id in AlertRule.objects.filter(enabled=True, trigger=Trigger.FAILED_LOGINS).values_list("id", flat=True):
        with transaction.atomic():
            rule = AlertRule.objects.select_for_update().filter(pk=rule_id, enabled=True).first()
            if rule is None:
                continue
            if rule.group_by == GroupBy.IP:
                if not row.ip_address:
                    continue
                entity_type, key, key_filter = "ip_address", row.ip_address, Q(ip_address=row.ip_address)
            else:
                if row.user_id in ("", "anonymous"):
                    continue
                entity_type, key, key_filter = "user", row.user_id, Q(user_id=row.user_id)
            since = row.timestamp - timedelta(minutes=rule.window_minutes or 10)
            last = 0
            for previous in SystemEvent.objects.filter(event_type=FAILED_LOGIN_THRESHOLD_EVENT, entity_type=entity_type,
                                                       entity_id=key, timestamp__gte=since).order_by("-id")[:50]:
                data = rules.event_data(previous)
                if data.get("rule_id") == rule.pk:
                    last = int(data.get("last_activity_id") or 0)
                    break
            if last >= row.pk:
                continue
            count = _failed_logins(key_filter, since=since, after_id=last, up_to_id=row.pk)
            if count >= max(1, rule.threshold):
                with audit_context(actor="system"):
                    fired.append(services.log_system_event(
                        FAILED_LOGIN_THRESHOLD_EVENT, entity_type, key,
                        {"rule_id": rule.pk, "rule": rule.name, "failed_logins": count,
                         "window_minutes": rule.window_minutes, entity_type: key, "last_activity_id": row.pk},
                        "warning",
                    ))
    return fired


# -- the sweep ----------------------------------------------------------------------------------


def sweep(*, min_age_seconds: float = SWEEP_MIN_AGE_SECONDS, limit: int = 500) -> dict[str, int]:
    """Process events whose on-commit task never came (older than ``min_age_seconds``),
    put deliveries of dead workers back, and send the deliveries that are due."""
    processed = 0
    waiting = events.unprocessed_ids(older_than_seconds=min_age_seconds, limit=limit)
    enabled = list(AlertRule.objects.filter(enabled=True).order_by("id")) if waiting else []
    for event_id in waiting:
        if process_event(event_id, enabled_rules=enabled) is not None:
            processed += 1
    now = timezone.now()
    stuck = Delivery.objects.filter(outcome=Outcome.SENDING, claimed_at__lt=now - timedelta(seconds=STUCK_SECONDS))
    recovered = stuck.update(outcome=Outcome.RETRYING, next_attempt_at=now,
                             last_error="The worker sending it stopped; sent again.")
    due = (Delivery.objects.filter(outcome__in=(Outcome.PENDING, Outcome.RETRYING), next_attempt_at__lte=now)
           .filter(Q(outcome=Outcome.RETRYING) | Q(created_at__lte=now - timedelta(seconds=min_age_seconds)))
           .order_by("next_attempt_at").values_list("id", flat=True)[:limit])
    sent = 0
    for delivery_id in list(due):
        if attempt_delivery(delivery_id) is not None:
            sent += 1
    return {"events": processed, "recovered": recovered, "attempted": sent}
