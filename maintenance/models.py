from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from audit.capture.history import records as history_records
from audit.capture.querysets import AuditedModelMixin, AuditedQuerySet
from audit.capture.registry import track


class Priority(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class Category(models.TextChoices):
    ENGINE = "engine", "Engine"
    HULL = "hull", "Hull"
    ELECTRICAL = "electrical", "Electrical"
    NAVIGATION = "navigation", "Navigation"
    SAFETY = "safety", "Safety equipment"
    DECK = "deck", "Deck machinery"
    OTHER = "other", "Other"


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


#: what a request's description, its rejection's reason and a comment's body may hold (text
#: columns, no database limit)
DESCRIPTION_MAX_LENGTH = 20_000
REJECTION_REASON_MAX_LENGTH = 2_000
COMMENT_MAX_LENGTH = 5_000


@track(entity_type="maintenance_request")
class MaintenanceRequest(AuditedModelMixin, models.Model):
    code = models.CharField(max_length=16, unique=True, editable=False)
    vessel = models.CharField(max_length=120)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.OTHER)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.MEDIUM)
    status = models.CharField(max_length=20, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="requests_made")
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests_assigned"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests_approved"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    estimated_cost = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    rejection_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = history_records("code", "requested_by", "assigned_to", "approved_by")
    objects = AuditedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # portal/API lists filtered by status, newest first; dashboard pending count
            models.Index(fields=["status", "-created_at"], name="mr_status_created_idx"),
            # staff visibility: "my requests" (requested_by = me), newest first
            models.Index(fields=["requested_by", "-created_at"], name="mr_requester_created_idx"),
            # staff visibility: "assigned to me", newest first
            models.Index(fields=["assigned_to", "-created_at"], name="mr_assignee_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(estimated_cost__isnull=True) | models.Q(estimated_cost__gte=0),
                name="mr_estimated_cost_not_negative",
            ),
        ]

    def __str__(self):
        return f"{self.code} {self.title}"


@track(entity_type="comment", code_field="pk")
class Comment(AuditedModelMixin, models.Model):
    request = models.ForeignKey(MaintenanceRequest, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    history = history_records("request", "author")
    objects = AuditedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # a request's conversation, in order
            models.Index(fields=["request", "created_at"], name="comment_request_created_idx"),
        ]

    def __str__(self):
        return f"Comment {self.pk} on {self.request.code}"


class ReceiptChannel(models.TextChoices):
    PAGE = "page", "shown on the request page"
    API = "api", "read through the API"
    NOTIFIED = "notified", "notified"


class CommentReceipt(models.Model):
    """The first time a comment reached one of the parties it is addressed to (the
    request's requester, assignee and approver, other than its author): shown on the
    request page, read through the API or notified. One row per comment and party,
    enforced by the database; written with that party's "Received comment ..." activity
    row (``maintenance.services.record_comments_received``)."""

    # A receipt is evidence that a party received a message: it outlives the comment (no
    # cascade, no database constraint), and deleting a request with its comments costs no
    # query for it (the captured delete's statement count is pinned).
    comment = models.ForeignKey(Comment, on_delete=models.DO_NOTHING, db_constraint=False,
                                related_name="receipts")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10, choices=ReceiptChannel.choices)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [
            # a comment reaches each party once, however many pages, reads or notifications race
            models.UniqueConstraint(fields=["comment", "recipient"], name="comment_receipt_once"),
        ]

    def __str__(self):
        return f"Comment {self.comment_id} received by {self.recipient_id} ({self.get_channel_display()})"


def attachment_path(instance, filename):
    return f"attachments/{instance.request.code}/{filename}"


@track(entity_type="attachment", code_field="pk")
class Attachment(AuditedModelMixin, models.Model):
    request = models.ForeignKey(MaintenanceRequest, on_delete=models.CASCADE, related_name="attachments")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    file = models.FileField(upload_to=attachment_path, max_length=255)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    history = history_records("request", "uploaded_by")
    objects = AuditedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # a request's attachment list
            models.Index(fields=["request", "created_at"], name="attach_request_created_idx"),
        ]

    def __str__(self):
        return self.original_name


@track(entity_type="inventory_item")
class InventoryItem(AuditedModelMixin, models.Model):
    code = models.CharField(max_length=16, unique=True, editable=False)
    part_number = models.CharField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    location = models.CharField(max_length=120, blank=True)
    quantity_on_hand = models.PositiveIntegerField(default=0)
    minimum_stock = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = history_records("code", "part_number")
    objects = AuditedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # inventory list, newest first
            models.Index(fields=["-created_at"], name="inv_created_idx"),
        ]

    def __str__(self):
        return f"{self.code} {self.name}"

    @property
    def below_minimum(self) -> bool:
        return self.quantity_on_hand < self.minimum_stock


@track(entity_type="stock_adjustment", code_field="pk")
class StockAdjustment(AuditedModelMixin, models.Model):
    item = models.ForeignKey(InventoryItem, on_delete=models.CASCADE, related_name="adjustments")
    quantity_change = models.IntegerField()
    resulting_quantity = models.PositiveIntegerField()
    reason = models.CharField(max_length=255)
    adjusted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    history = history_records("item", "adjusted_by")
    objects = AuditedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # an item's stock ledger, newest first
            models.Index(fields=["item", "-created_at"], name="stockadj_item_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=~models.Q(quantity_change=0), name="stockadj_change_not_zero"),
        ]

    def __str__(self):
        return f"{self.item.code} {self.quantity_change:+d}"
