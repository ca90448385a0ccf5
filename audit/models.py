"""The four audit tables, named as in the seed (``db_table``).

Rows are written only through :mod:`audit.capture.writer` (one write path) and are
never changed afterwards: the admin, the API and the portal are read-only.
``user_id`` columns hold the actor's login code (``PE001``), ``"system"`` for
code outside a request, or ``"anonymous"`` for a request without a user; they
are text, not foreign keys, so a record outlives the account it names.
"""

from django.db import models
from django.utils import timezone

TEXT_LIMIT = 10_000  # bound for TextFields; longer values are truncated by the writer


class ActionType(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    ASSIGN = "assign", "Assign"
    STATUS_CHANGE = "status_change", "Status change"
    PERMISSION_CHANGE = "permission_change", "Permission change"
    PASSWORD_RESET = "password_reset", "Password reset"
    ROLE_CHANGE = "role_change", "Role change"
    REVERT = "revert", "Revert"
    BULK_UPDATE = "bulk_update", "Bulk update"
    LOGIN = "login", "Login"
    LOGOUT = "logout", "Logout"


class AuditStatus(models.TextChoices):
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    PENDING = "pending", "Pending"


class RecordSource(models.TextChoices):
    """Where an audit_trail row came from: the capture of a real change, or a hand entry
    through ``audit.services.log_entity_change()`` (which changes nothing itself)."""

    CAPTURED = "captured", "Captured"
    MANUAL = "manual", "Manual entry"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


class ActivityLog(models.Model):
    """Who did what, from where: logins, page visits, API writes, uploads..."""

    user_id = models.CharField(max_length=20, help_text="Actor's user_id, 'system' or 'anonymous'.")
    activity = models.CharField(max_length=255)
    details = models.TextField(blank=True)
    timestamp = models.DateTimeField(default=timezone.now)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    method = models.CharField(max_length=10, blank=True)
    path = models.CharField(max_length=500, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        db_table = "activity_logs"
        ordering = ["-timestamp", "-id"]
        indexes = [
            # dashboard recent_activities_1h / latest_activities; purge by age
            models.Index(fields=["-timestamp"], name="activity_ts_idx"),
            # /api/realtime/user-activity/<user_id>?hours=  and active/online users
            models.Index(fields=["user_id", "-timestamp"], name="activity_user_ts_idx"),
        ]

    def __str__(self):
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.user_id}: {self.activity}"


class AuditTrail(models.Model):
    """One row per change event on a tracked entity."""

    timestamp = models.DateTimeField(default=timezone.now)
    user_id = models.CharField(max_length=20)
    # the actor as people read it when the change was written, so a later rename does not rewrite history
    user_display = models.CharField(
        "who", max_length=200, blank=True, default="",
        help_text="The actor as shown when the change was written, e.g. 'PE001 · Priya Eriksen'.")
    action_type = models.CharField(max_length=30, choices=ActionType.choices)
    entity_type = models.CharField(max_length=50)
    entity_id = models.CharField(max_length=64)
    old_value = models.TextField(null=True, blank=True, help_text="JSON object of the old values.")
    new_value = models.TextField(null=True, blank=True, help_text="JSON object of the new values.")
    changes = models.JSONField(default=dict, blank=True, help_text='{"field": {"old": ..., "new": ...}}')
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=AuditStatus.choices, default=AuditStatus.COMPLETED)
    error_message = models.TextField(blank=True)
    change_reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=10, choices=RecordSource.choices, default=RecordSource.CAPTURED,
                              help_text="captured (a change the capture saw happen) or manual "
                                        "(written by hand through log_entity_change).")
    # the related entities of the change as people read them when it was written, so that a later
    # rename does not rewrite history; changes/old_value/new_value keep the raw codes
    displays = models.JSONField(
        "values as shown", default=dict, blank=True,
        help_text='Related entities as named when the change was written: '
                  '{"assigned_to": {"old": "PE001 · Priya Eriksen", "new": "ST001 · Sam Staff"}}.')

    class Meta:
        db_table = "audit_trail"
        ordering = ["-timestamp", "-id"]
        indexes = [
            # /api/realtime/audit-trail?hours= and export-audit, newest first; purge by age
            models.Index(fields=["-timestamp"], name="trail_ts_idx"),
            # audit-trail / admin audit-log filtered by user_id
            models.Index(fields=["user_id", "-timestamp"], name="trail_user_ts_idx"),
            # /api/realtime/entity-history/<entity_type>/<entity_id>
            models.Index(fields=["entity_type", "entity_id", "-timestamp"], name="trail_entity_ts_idx"),
            # audit-trail / admin audit-log filtered by action_type
            models.Index(fields=["action_type", "-timestamp"], name="trail_action_ts_idx"),
            # the failed changes (about 1 %): status=failed in the admin and the audit-log page, newest first
            models.Index(fields=["-timestamp"], name="trail_failed_ts_idx", condition=models.Q(status="failed")),
        ]

    def __str__(self):
        return f"{self.action_type} {self.entity_type} {self.entity_id} by {self.user_id} ({self.status})"


class SystemEvent(models.Model):
    """System-level events for monitoring (errors, lock-outs, milestones)."""

    timestamp = models.DateTimeField(default=timezone.now)
    event_type = models.CharField(max_length=100)
    entity_type = models.CharField(max_length=50, blank=True)
    entity_id = models.CharField(max_length=64, blank=True)
    event_data = models.TextField(blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.INFO)
    processed = models.BooleanField(default=False)
    request_id = models.CharField(max_length=64, blank=True)
    # The event's state (EVENT_STATE_COLUMNS, with ``processed``): each set once, from empty to a
    # value, by audit.operations.events; on PostgreSQL the append-only trigger allows exactly that.
    # Outside the seal's canonical form, so processing or acknowledging never changes a row's hash.
    processed_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=20, null=True, blank=True,
                                       help_text="user_id of the person who acknowledged it.")
    acknowledgement_note = models.TextField(null=True, blank=True)

    class Meta:
        db_table = "system_events"
        ordering = ["-timestamp", "-id"]
        indexes = [
            # /api/realtime/system-events?hours= without severity; purge by age
            models.Index(fields=["-timestamp"], name="event_ts_idx"),
            # system-events?severity=error and dashboard recent_errors_1h
            models.Index(fields=["severity", "-timestamp"], name="event_severity_ts_idx"),
            # the processing sweep: unprocessed events, oldest first (a handful at any time)
            models.Index(fields=["id"], name="event_unprocessed_idx", condition=models.Q(processed=False)),
            # "open critical events" on the home page and the dashboard: critical and not acknowledged
            models.Index(fields=["-timestamp"], name="event_open_critical_idx",
                         condition=models.Q(severity="critical", acknowledged_at__isnull=True)),
        ]

    def __str__(self):
        target = f" {self.entity_type} {self.entity_id}".rstrip() if self.entity_type else ""
        return f"[{self.severity}] {self.event_type}{target}"


#: The columns of ``system_events`` that may change after the insert, each once, from false or
#: empty to a value (with ``processed``); every other UPDATE is refused.
EVENT_STATE_COLUMNS = ("processed", "processed_at", "acknowledged_at", "acknowledged_by", "acknowledgement_note")


class UpdateHistory(models.Model):
    """One row per changed field, linked to its audit_trail row."""

    timestamp = models.DateTimeField(default=timezone.now)
    table_name = models.CharField(max_length=100)
    record_id = models.CharField(max_length=64)
    field_name = models.CharField(max_length=100)
    old_value = models.TextField(null=True, blank=True)
    new_value = models.TextField(null=True, blank=True)
    user_id = models.CharField(max_length=20)
    change_reason = models.TextField(blank=True)
    audit = models.ForeignKey(
        AuditTrail,
        on_delete=models.DO_NOTHING,
        db_constraint=True,
        null=True,
        blank=True,
        related_name="field_changes",
    )

    class Meta:
        db_table = "update_history"
        ordering = ["-timestamp", "-id"]
        verbose_name_plural = "update history"
        indexes = [
            # purge by age
            models.Index(fields=["-timestamp"], name="history_ts_idx"),
            # field history of one record (entity-history by table and record)
            models.Index(fields=["table_name", "record_id", "-timestamp"], name="history_record_ts_idx"),
        ]

    def __str__(self):
        return f"{self.table_name} {self.record_id}.{self.field_name}: {self.old_value!r} -> {self.new_value!r}"


# -- tamper evidence and retention (audit.operations.integrity, audit.operations.retention) ------------------------------


class SealKind(models.TextChoices):
    SEAL = "seal", "Seal"
    PURGE = "purge", "Purge"


class AuditSeal(models.Model):
    """One link of the seal chain (written by :mod:`audit.operations.integrity` only).

    A ``seal`` covers the audit rows written since the previous seal: their
    ids per table (``ranges``, ``{"audit_trail": [[first, last], ...]}``),
    one 16-byte hash per row in ``row_hashes`` (table order, then id order)
    and ``rows_digest`` = SHA-256 of ``row_hashes``. A ``purge`` link
    records the ids a retention purge deleted, so that verification knows
    they are gone legitimately. ``hash`` = SHA-256(prev_hash ||
    rows_digest || canonical metadata); the newest hash is also kept in a
    file outside the database, signed with an HMAC key. Rows are never
    updated; seal membership lives here, not on the audit rows.
    """

    seq = models.PositiveBigIntegerField(unique=True, help_text="Position in the chain, from 1.")
    kind = models.CharField(max_length=10, choices=SealKind.choices, default=SealKind.SEAL)
    created_at = models.DateTimeField(default=timezone.now)
    horizon = models.JSONField(default=dict, blank=True,
                               help_text='Per table, the [from, to) window sealed: transaction ids on PostgreSQL, '
                                         'row ids on SQLite.')
    ranges = models.JSONField(default=dict, blank=True, help_text="Per table, the row ids covered, as [first, last].")
    row_count = models.PositiveBigIntegerField(default=0)
    rows_digest = models.CharField(max_length=64)
    row_hashes = models.BinaryField(blank=True, default=b"", editable=False)
    prev_hash = models.CharField(max_length=64, unique=True)
    hash = models.CharField(max_length=64, unique=True)
    details = models.JSONField(default=dict, blank=True, help_text="Purge: cutoffs and command; free metadata.")
    key_id = models.CharField(max_length=32, blank=True,
                              help_text="The Ed25519 key that signed this link (empty: a link from before signing).")
    signature = models.CharField(max_length=128, blank=True,
                                 help_text="Ed25519 signature (base64) of the link's statement; see docs/operations.md.")

    class Meta:
        db_table = "audit_seals"
        ordering = ["-seq"]

    def __str__(self):
        return f"{self.kind} #{self.seq} ({self.row_count} rows) {self.hash[:12]}"


class AuditSigningKey(models.Model):
    """A public key that signs seals, listed from the first link it signed on
    (written by :mod:`audit.operations.signing` only, never changed). Old keys
    stay listed after a rotation so that earlier links keep verifying. The
    private key never enters the database."""

    key_id = models.CharField(max_length=32, unique=True, help_text="First 16 bytes of SHA-256 of the raw key, hex.")
    public_key = models.TextField(help_text="PEM (SubjectPublicKeyInfo).")
    first_seq = models.PositiveBigIntegerField(help_text="The first chain link this key signed.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "audit_signing_keys"
        ordering = ["first_seq"]

    def __str__(self):
        return f"key {self.key_id} from seal #{self.first_seq}"


class LegalHold(models.Model):
    """Audit records that the retention purge must keep: those of an entity
    (``entity_type`` + ``entity_id``), of a user (``user_id``) and/or of a
    time range (``starts_at``..``ends_at``). The fields given combine with
    AND; a hold applies until it is lifted. Placed and lifted only through
    :mod:`audit.operations.retention` (recorded as a system event and an activity)."""

    entity_type = models.CharField(max_length=50, blank=True)
    entity_id = models.CharField(max_length=64, blank=True)
    user_id = models.CharField(max_length=20, blank=True, help_text="Actor's user_id whose records are held.")
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField()
    placed_by = models.CharField(max_length=20)
    placed_at = models.DateTimeField(default=timezone.now)
    lifted_by = models.CharField(max_length=20, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.TextField(blank=True)

    class Meta:
        db_table = "audit_legal_holds"
        ordering = ["-placed_at", "-id"]

    def __str__(self):
        state = "active" if self.active else "lifted"
        return f"Hold #{self.pk} on {self.describe()} ({state})"

    @property
    def active(self) -> bool:
        return self.lifted_at is None

    def describe(self) -> str:
        parts = []
        if self.entity_type:
            parts.append(f"entity {self.entity_type} {self.entity_id}".rstrip())
        if self.user_id:
            parts.append(f"user {self.user_id}")
        if self.starts_at or self.ends_at:
            start = self.starts_at.isoformat() if self.starts_at else "…"
            end = self.ends_at.isoformat() if self.ends_at else "…"
            parts.append(f"from {start} to {end}")
        return ", ".join(parts) or "nothing"


#: The four append-only audit tables by ``db_table``, in the order a seal lays out its rows
#: (:mod:`audit.operations.integrity`). Every other list of them is this one or derived from it.
AUDIT_MODELS = {model._meta.db_table: model for model in (ActivityLog, SystemEvent, AuditTrail, UpdateHistory)}
AUDIT_TABLES = tuple(AUDIT_MODELS)
