from django.conf import settings
from django.db import models

from audit.capture.history import records as history_records
from audit.capture.querysets import AuditedModelMixin, AuditedQuerySet
from audit.capture.registry import track


class EmergencyType(models.TextChoices):
    ENGINE_FAILURE = "engine_failure", "Engine failure"
    FIRE = "fire", "Fire"
    FLOODING = "flooding", "Flooding"
    MEDICAL = "medical", "Medical"
    COLLISION = "collision", "Collision"
    POLLUTION = "pollution", "Pollution"
    OTHER = "other", "Other"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class EmergencyStatus(models.TextChoices):
    REPORTED = "reported", "Reported"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    DISPATCHED = "dispatched", "Dispatched"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


ACTIVE_STATUSES = (EmergencyStatus.REPORTED, EmergencyStatus.ACKNOWLEDGED, EmergencyStatus.DISPATCHED)


#: what an emergency's description may hold (a text column, no database limit)
DESCRIPTION_MAX_LENGTH = 10_000


@track(entity_type="emergency")
class Emergency(AuditedModelMixin, models.Model):
    code = models.CharField(max_length=16, unique=True, editable=False)
    vessel = models.CharField(max_length=120)
    emergency_type = models.CharField(max_length=20, choices=EmergencyType.choices)
    description = models.TextField()
    location = models.CharField(max_length=200, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.HIGH)
    status = models.CharField(max_length=20, choices=EmergencyStatus.choices, default=EmergencyStatus.REPORTED)
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="emergencies_reported")
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="emergencies_assigned"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = history_records("code", "reported_by", "assigned_to")
    objects = AuditedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "emergencies"
        indexes = [
            # dashboard active_emergencies count and the open list, newest first
            models.Index(fields=["status", "-created_at"], name="emg_status_created_idx"),
        ]

    def __str__(self):
        return f"{self.code} {self.get_emergency_type_display()} ({self.vessel})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES
