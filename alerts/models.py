"""Alert rules (settings kept in the database, edited by admins, captured like any
tracked model) and the deliveries they cause (one row per recipient and channel).

A rule is a tracked domain model, not an audit table: it is registered with
:func:`audit.capture.registry.track` from :class:`alerts.apps.AlertsConfig` and
saved through :class:`~audit.capture.querysets.AuditedModelMixin`, so every change
(admin, shell, ``QuerySet.update()``) is an ``audit_trail`` row with its field
history: these are the seed's "settings changes". Its notification URLs may hold
chat tokens, so they are masked in the audit rows.
"""

from __future__ import annotations

import hashlib

from django.db import models
from django.utils import timezone

from audit.capture.querysets import AuditedModelMixin, AuditedQuerySet
from audit.models import Severity

#: event types that are never alerted on, whatever the rules say: a delivery that
#: finally failed must not cause deliveries about itself
NEVER_ALERTED = frozenset({"notification_failed"})
#: the event recorded when a failed-login rule's threshold is reached
FAILED_LOGIN_THRESHOLD_EVENT = "failed_login_threshold"


class Trigger(models.TextChoices):
    EVENT = "event", "A system event"
    FAILED_LOGINS = "failed_logins", "Failed logins"


class GroupBy(models.TextChoices):
    NONE = "", "All together"
    USER = "user", "Per user"
    IP = "ip", "Per IP address"
    ENTITY = "entity", "Per entity"


class RecipientRole(models.TextChoices):
    ADMIN = "admin", "Administrators"
    PORT_ENGINEER = "port_engineer", "Port engineers"
    STAFF = "staff", "Staff"


class AlertRule(AuditedModelMixin, models.Model):
    """Who is told about which events.

    *Event* rules match a system event on its type, severity and entity type
    (a blank field matches anything); with a ``threshold`` above 1 they fire
    on every ``threshold``-th matching event within ``window_minutes`` (all
    together or per entity). *Failed-login* rules count failed logins per user
    or per IP address within the window and, each time the threshold is
    reached, record a ``failed_login_threshold`` event that alerts the rule's
    recipients. Recipients: roles (every active, approved user of the role
    with an e-mail address), user ids, e-mail addresses and notification URLs
    (Apprise: chat services, ``json://`` webhooks)."""

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.EVENT)
    event_type = models.CharField(max_length=100, blank=True, help_text="Event type to match (blank: any).")
    severity = models.CharField(max_length=10, choices=Severity.choices, blank=True,
                                help_text="Severity to match (blank: any).")
    entity_type = models.CharField(max_length=50, blank=True, help_text="Entity type to match (blank: any).")
    threshold = models.PositiveIntegerField(default=1, help_text="Fire on every N-th match within the window.")
    window_minutes = models.PositiveIntegerField(default=0, help_text="The window of the threshold, in minutes.")
    group_by = models.CharField(max_length=10, choices=GroupBy.choices, blank=True,
                                help_text="Count the threshold per user, per IP address or per entity.")
    recipient_roles = models.JSONField(default=list, blank=True, help_text="Roles whose members are told.")
    recipient_users = models.JSONField(default=list, blank=True, help_text="User ids (PE001) who are told.")
    recipient_emails = models.TextField(blank=True, help_text="E-mail addresses, one per line.")
    notify_urls = models.TextField(blank=True, help_text="Notification URLs (Apprise), one per line.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AuditedQuerySet.as_manager()

    class Meta:
        db_table = "alert_rules"
        ordering = ["name"]

    def __str__(self):
        return self.name

    def email_list(self) -> list[str]:
        return split_lines(self.recipient_emails)

    def url_list(self) -> list[str]:
        return split_lines(self.notify_urls)


def split_lines(text: str) -> list[str]:
    """Entries of a one-per-line (or comma separated) field, stripped, without duplicates."""
    out: list[str] = []
    for line in (text or "").replace(",", "\n").splitlines():
        item = line.strip()
        if item and item not in out:
            out.append(item)
    return out


def url_key(url: str) -> str:
    """What a delivery keeps of a notification URL: a hash, never the URL (it may hold a token)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    URL = "url", "Notification URL"


class Outcome(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Being sent"
    RETRYING = "retrying", "Failed, will retry"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed for good"


class Delivery(models.Model):
    """One notification of one event to one recipient on one channel.

    Created when the event is processed (in the same transaction as its
    ``processed`` mark), then sent by a worker: claimed (``sending``,
    ``attempts`` + 1) in one short transaction, sent, and marked ``sent`` or
    ``retrying`` (with ``next_attempt_at``, doubling) or, after the last
    attempt, ``failed`` (which records a ``notification_failed`` warning
    event). ``attempts`` above 1 with outcome ``sent`` shows a retry, or a
    worker that died mid-send (the sweep takes a delivery stuck in
    ``sending`` back). ``event_id`` is not a database constraint, so the
    retention purge of ``system_events`` is never blocked by deliveries."""

    event = models.ForeignKey("audit.SystemEvent", on_delete=models.DO_NOTHING, db_constraint=False,
                              related_name="deliveries")
    rule = models.ForeignKey(AlertRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    recipient = models.CharField(max_length=254, help_text="E-mail address, or the URL's service and host.")
    recipient_user = models.CharField(max_length=20, blank=True, help_text="The user_id, when sent to a user.")
    target_key = models.CharField(max_length=64, help_text="Which address or URL (a URL only as a hash).")
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "alert_deliveries"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            # one delivery per event, channel and recipient, however often (or by however many workers) the
            # event is processed, and however many rules name the same recipient
            models.UniqueConstraint(fields=["event", "channel", "target_key"], name="delivery_once"),
        ]
        indexes = [
            # the sweep: deliveries due (pending or retrying, next_attempt_at passed) and stuck in sending
            models.Index(fields=["outcome", "next_attempt_at"], name="delivery_due_idx"),
        ]

    def __str__(self):
        return f"{self.get_channel_display()} to {self.recipient} ({self.get_outcome_display().lower()})"
