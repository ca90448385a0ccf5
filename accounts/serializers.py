"""Account API shapes. Passwords are write-only and never echoed."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.fields import UTCMillisecondsField, change_reason_field
from core.lengths import max_length

from .models import Role, User

PASSWORD_STYLE = {"input_type": "password"}


class ChangeReasonSerializer(serializers.Serializer):
    change_reason = change_reason_field()


@extend_schema_field({
    "type": "string",
    "anyOf": [{"format": "email"}, {"maxLength": 0}],
    "description": "E-mail address; empty when the account has none (an administrator or the user may clear it).",
})
class AccountEmailField(serializers.CharField):
    """An account's e-mail as the API shows it: an address, or empty (the model allows blank)."""


class UserSerializer(serializers.ModelSerializer):
    email = AccountEmailField(read_only=True)
    # null until an administrator approves the account
    approved_by = serializers.SlugRelatedField(slug_field="user_id", read_only=True, allow_null=True)
    is_locked = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "user_id",
            "full_name",
            "email",
            "phone",
            "department",
            "role",
            "approval_status",
            "is_active",
            "is_locked",
            "approved_by",
            "approved_at",
            "date_joined",
            "last_login",
        ]
        read_only_fields = fields

    def get_is_locked(self, obj) -> bool:
        return obj.is_locked()


class RegisterSerializer(serializers.Serializer):
    user_id = serializers.CharField(max_length=max_length(User, "user_id"))
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False, style=PASSWORD_STYLE)
    full_name = serializers.CharField(max_length=max_length(User, "full_name"))
    email = serializers.EmailField()
    phone = serializers.CharField(max_length=max_length(User, "phone"), required=False, allow_blank=True, default="")
    department = serializers.CharField(max_length=max_length(User, "department"), required=False, allow_blank=True, default="")
    change_reason = change_reason_field()


class TokenRequestSerializer(serializers.Serializer):
    user_id = serializers.CharField(max_length=150)
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False, style=PASSWORD_STYLE)


class TokenResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    token = serializers.CharField()
    expiry = UTCMillisecondsField(allow_null=True)
    user = UserSerializer()


class PasswordChangeSerializer(ChangeReasonSerializer):
    old_password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False, style=PASSWORD_STYLE)
    new_password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False, style=PASSWORD_STYLE)


class PasswordResetSerializer(ChangeReasonSerializer):
    new_password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False, style=PASSWORD_STYLE)


class ProfileUpdateSerializer(ChangeReasonSerializer):
    """PATCH /api/users/me/: one's own profile fields only."""

    full_name = serializers.CharField(max_length=max_length(User, "full_name"), required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.CharField(max_length=max_length(User, "phone"), required=False, allow_blank=True)
    department = serializers.CharField(max_length=max_length(User, "department"), required=False, allow_blank=True)

    READ_ONLY_HERE = ("user_id", "role", "approval_status", "is_active", "password", "approved_by", "approved_at")

    def validate(self, attrs):
        initial = getattr(self, "initial_data", None) or {}
        if hasattr(initial, "keys"):
            refused = {name: "This field cannot be changed here." for name in self.READ_ONLY_HERE if name in initial}
            if refused:
                raise serializers.ValidationError(refused)
        return attrs


class UserAdminUpdateSerializer(ChangeReasonSerializer):
    """PATCH /api/users/<user_id>/ (administrators)."""

    full_name = serializers.CharField(max_length=max_length(User, "full_name"), required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.CharField(max_length=max_length(User, "phone"), required=False, allow_blank=True)
    department = serializers.CharField(max_length=max_length(User, "department"), required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    is_active = serializers.BooleanField(required=False)

    READ_ONLY_HERE = ("user_id", "approval_status", "password", "approved_by", "approved_at")

    def validate(self, attrs):
        initial = getattr(self, "initial_data", None) or {}
        if hasattr(initial, "keys"):
            refused = {
                name: (
                    "Use the approve or reject action."
                    if name == "approval_status"
                    else "Use the reset-password action."
                    if name == "password"
                    else "This field cannot be changed."
                )
                for name in self.READ_ONLY_HERE
                if name in initial
            }
            if refused:
                raise serializers.ValidationError(refused)
        return attrs
