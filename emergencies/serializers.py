"""Emergency API shapes. Users are written and read as their ``user_id``."""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import ApprovalStatus, User
from core.fields import UserIdField, change_reason_field
from core.lengths import max_length

from .models import DESCRIPTION_MAX_LENGTH, Emergency, EmergencyType, Severity
from .selectors import allowed_emergency_actions


def assignable_users():
    return User.objects.filter(is_active=True, approval_status=ApprovalStatus.APPROVED)


class EmergencySerializer(serializers.ModelSerializer):
    reported_by = serializers.SlugRelatedField(slug_field="user_id", read_only=True)
    assigned_to = serializers.SlugRelatedField(slug_field="user_id", read_only=True, allow_null=True)
    is_active = serializers.BooleanField(read_only=True)
    allowed_actions = serializers.SerializerMethodField()

    class Meta:
        model = Emergency
        fields = [
            "code",
            "vessel",
            "emergency_type",
            "description",
            "location",
            "severity",
            "status",
            "is_active",
            "reported_by",
            "assigned_to",
            "acknowledged_at",
            "dispatched_at",
            "resolved_at",
            "closed_at",
            "created_at",
            "updated_at",
            "allowed_actions",
        ]
        read_only_fields = fields

    def get_allowed_actions(self, obj) -> list[str]:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        return sorted(allowed_emergency_actions(user, obj)) if user is not None else []


class EmergencyCreateSerializer(serializers.Serializer):
    vessel = serializers.CharField(max_length=max_length(Emergency, "vessel"))
    emergency_type = serializers.ChoiceField(choices=EmergencyType.choices)
    description = serializers.CharField(max_length=DESCRIPTION_MAX_LENGTH)
    location = serializers.CharField(max_length=max_length(Emergency, "location"), required=False, allow_blank=True, default="")
    severity = serializers.ChoiceField(choices=Severity.choices, required=False, default=Severity.HIGH)
    assigned_to = UserIdField(queryset=assignable_users(), required=False, allow_null=True, default=None)
    change_reason = change_reason_field()


class EmergencyUpdateSerializer(serializers.Serializer):
    vessel = serializers.CharField(max_length=max_length(Emergency, "vessel"), required=False)
    emergency_type = serializers.ChoiceField(choices=EmergencyType.choices, required=False)
    description = serializers.CharField(max_length=DESCRIPTION_MAX_LENGTH, required=False)
    location = serializers.CharField(max_length=max_length(Emergency, "location"), required=False, allow_blank=True)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    assigned_to = UserIdField(queryset=assignable_users(), required=False, allow_null=True)
    change_reason = change_reason_field()

    READ_ONLY_HERE = (
        "code",
        "status",
        "reported_by",
        "created_at",
        "acknowledged_at",
        "dispatched_at",
        "resolved_at",
        "closed_at",
    )

    def validate(self, attrs):
        initial = getattr(self, "initial_data", None) or {}
        if hasattr(initial, "keys"):
            refused = {
                name: "Use the acknowledge, dispatch, resolve and close actions."
                if name == "status"
                else "This field cannot be changed."
                for name in self.READ_ONLY_HERE
                if name in initial
            }
            if refused:
                raise serializers.ValidationError(refused)
        return attrs


class EmergencyAssignSerializer(serializers.Serializer):
    assigned_to = UserIdField(queryset=assignable_users())
    change_reason = change_reason_field()


class EmergencyActionSerializer(serializers.Serializer):
    change_reason = change_reason_field()
