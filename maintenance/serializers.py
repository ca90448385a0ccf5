"""API shapes for maintenance requests, comments, attachments and inventory.

Users are written and read as their ``user_id``; requests and items by code.
Write serializers refuse keys they do not know (a ``status`` in a PATCH is a
400, not a silently ignored value)."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import models
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import User
from core import fields as core_fields
from core.fields import UTCMillisecondsField, change_reason_field
from core.lengths import CHANGE_REASON_MAX_LENGTH, max_length

from .models import (
    COMMENT_MAX_LENGTH,
    DESCRIPTION_MAX_LENGTH,
    REJECTION_REASON_MAX_LENGTH,
    Attachment,
    Category,
    Comment,
    InventoryItem,
    MaintenanceRequest,
    Priority,
    StockAdjustment,
)
from .selectors import allowed_request_actions


class UserIdField(core_fields.UserIdField):
    """A user written as their ``user_id`` (case-insensitive). Whether the user
    may take work (approved, active) is the service's call, with a clear message."""

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", User.objects.all())
        super().__init__(**kwargs)


class StrictSerializer(serializers.Serializer):
    """Refuses unknown keys, naming each."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {key[:60]: "Unknown field; it cannot be set here." for key in unknown[:20]}
                )
        return super().to_internal_value(data)


class _UserRefs:
    """Read-only user_id and display-name fields."""

    @staticmethod
    def user_id():
        return serializers.SlugRelatedField(slug_field="user_id", read_only=True, allow_null=True)

    @staticmethod
    def name(source):
        return serializers.CharField(source=f"{source}.get_full_name", read_only=True, allow_null=True, default=None)


class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: UTCMillisecondsField,
    }


# ---- maintenance requests ---------------------------------------------------------


class MaintenanceRequestSerializer(ModelSerializer):
    category_display = serializers.CharField(source="get_category_display", read_only=True)
    priority_display = serializers.CharField(source="get_priority_display", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    requested_by = _UserRefs.user_id()
    requested_by_name = _UserRefs.name("requested_by")
    assigned_to = _UserRefs.user_id()
    assigned_to_name = _UserRefs.name("assigned_to")
    approved_by = _UserRefs.user_id()
    allowed_actions = serializers.SerializerMethodField()

    class Meta:
        model = MaintenanceRequest
        fields = [
            "code",
            "vessel",
            "title",
            "description",
            "category",
            "category_display",
            "priority",
            "priority_display",
            "status",
            "status_display",
            "requested_by",
            "requested_by_name",
            "assigned_to",
            "assigned_to_name",
            "approved_by",
            "approved_at",
            "started_at",
            "completed_at",
            "due_date",
            "estimated_cost",
            "rejection_reason",
            "created_at",
            "updated_at",
            "allowed_actions",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_allowed_actions(self, obj) -> list[str]:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        return sorted(allowed_request_actions(user, obj)) if user is not None else []


class MaintenanceRequestWriteSerializer(StrictSerializer):
    """Create (``vessel`` and ``title`` required) and update (PATCH: any subset)."""

    vessel = serializers.CharField(max_length=max_length(MaintenanceRequest, "vessel"))
    title = serializers.CharField(max_length=max_length(MaintenanceRequest, "title"))
    description = serializers.CharField(max_length=DESCRIPTION_MAX_LENGTH, required=False, allow_blank=True)
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    due_date = serializers.DateField(required=False, allow_null=True)
    estimated_cost = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, required=False, allow_null=True
    )
    assigned_to = UserIdField(required=False, allow_null=True, help_text="user_id of the assignee (managers only).")
    change_reason = change_reason_field()


class RequestActionSerializer(StrictSerializer):
    change_reason = change_reason_field()


class CancelSerializer(StrictSerializer):
    """Cancelling needs a reason (SPEC "Four eyes": cancel, reject and deactivate ask for one)."""

    change_reason = serializers.CharField(max_length=CHANGE_REASON_MAX_LENGTH, help_text="Why the request is cancelled (required).")

    def validate_change_reason(self, value):
        if not value.strip():
            raise serializers.ValidationError("Say why the request is cancelled.")
        return value.strip()


class RejectSerializer(StrictSerializer):
    """The rejection's reason is ``change_reason``, the name every write uses (SPEC); the older
    ``reason`` is still accepted. One of them is required; given both, they must agree."""

    change_reason = serializers.CharField(
        max_length=REJECTION_REASON_MAX_LENGTH, required=False, allow_blank=True, default="",
        help_text="Why the request is rejected (required, here or as `reason`); recorded as the rejection "
                  "reason and the change reason.",
    )
    reason = serializers.CharField(max_length=REJECTION_REASON_MAX_LENGTH, required=False, allow_blank=True, default="",
                                   help_text="Older name of change_reason, still accepted.")

    def validate(self, attrs):
        why, old = attrs.get("change_reason", "").strip(), attrs.get("reason", "").strip()
        if why and old and why != old:
            raise serializers.ValidationError(
                {"change_reason": "Give the reason once, as change_reason (reason is its older name)."})
        if not (why or old):
            raise serializers.ValidationError({"change_reason": "Say why the request is rejected."})
        return {"change_reason": why or old}


class AssignSerializer(StrictSerializer):
    assigned_to = UserIdField(help_text="user_id of an approved, active user.")
    change_reason = change_reason_field()


# ---- comments and attachments -------------------------------------------------------


class CommentSerializer(ModelSerializer):
    author = _UserRefs.user_id()
    author_name = _UserRefs.name("author")
    request = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Comment
        fields = ["id", "request", "author", "author_name", "body", "created_at"]
        read_only_fields = fields


class CommentCreateSerializer(StrictSerializer):
    body = serializers.CharField(max_length=COMMENT_MAX_LENGTH)
    change_reason = change_reason_field()


class AttachmentSerializer(ModelSerializer):
    uploaded_by = _UserRefs.user_id()
    uploaded_by_name = _UserRefs.name("uploaded_by")
    request = serializers.SlugRelatedField(slug_field="code", read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = [
            "id",
            "request",
            "original_name",
            "content_type",
            "size",
            "uploaded_by",
            "uploaded_by_name",
            "created_at",
            "download_url",
        ]
        read_only_fields = fields

    def get_download_url(self, obj) -> str:
        return reverse("maintenance-request-download", kwargs={"code": obj.request.code, "attachment_id": obj.pk})


class AttachmentUploadSerializer(StrictSerializer):
    file = serializers.FileField(help_text="The file (multipart/form-data).")
    change_reason = change_reason_field()


# ---- inventory ------------------------------------------------------------------------


class InventoryItemSerializer(ModelSerializer):
    below_minimum = serializers.BooleanField(read_only=True)

    class Meta:
        model = InventoryItem
        fields = [
            "code",
            "part_number",
            "name",
            "location",
            "quantity_on_hand",
            "minimum_stock",
            "below_minimum",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class InventoryItemWriteSerializer(StrictSerializer):
    """Create (``part_number`` and ``name`` required) and update (PATCH: any subset).
    A changed ``quantity_on_hand`` is booked as a stock adjustment."""

    part_number = serializers.CharField(max_length=max_length(InventoryItem, "part_number"))
    name = serializers.CharField(max_length=max_length(InventoryItem, "name"))
    location = serializers.CharField(max_length=max_length(InventoryItem, "location"), required=False, allow_blank=True)
    quantity_on_hand = serializers.IntegerField(min_value=0, max_value=2_147_483_647, required=False)
    minimum_stock = serializers.IntegerField(min_value=0, max_value=2_147_483_647, required=False)
    change_reason = change_reason_field()


class StockAdjustSerializer(StrictSerializer):
    quantity_change = serializers.IntegerField(
        min_value=-2_147_483_647, max_value=2_147_483_647, help_text="Positive adds stock, negative takes it."
    )
    reason = serializers.CharField(max_length=max_length(StockAdjustment, "reason"), help_text="Why the stock changes (required).")
    change_reason = change_reason_field()

    def validate_quantity_change(self, value):
        if value == 0:
            raise serializers.ValidationError("Quantity change cannot be zero.")
        return value


class StockAdjustmentSerializer(ModelSerializer):
    item = serializers.SlugRelatedField(slug_field="code", read_only=True)
    adjusted_by = _UserRefs.user_id()

    class Meta:
        model = StockAdjustment
        fields = ["id", "item", "quantity_change", "resulting_quantity", "reason", "adjusted_by", "created_at"]
        read_only_fields = fields


class StockAdjustResultSerializer(serializers.Serializer):
    item = InventoryItemSerializer()
    adjustment = StockAdjustmentSerializer()
