"""Response shapes of the real-time audit API (SPEC "The API").

The lists' rows are written as JSON text by :mod:`audit.api.rendering` (by
the database on PostgreSQL) and the other answers are plain dicts with
:func:`iso_ms` for timestamps; these serializers describe the same shapes for
the OpenAPI schema, and the tests hold the two together.
"""

from __future__ import annotations

from rest_framework import serializers

from core.fields import UTCMillisecondsField, iso_ms  # noqa: F401 - iso_ms re-exported for audit views


def hours_number(hours: float | int) -> float | int:
    """``24.0`` -> ``24``; ``0.5`` stays ``0.5``."""
    return int(hours) if float(hours).is_integer() else float(hours)


# --- rows ----------------------------------------------------------------------


class ActivityEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    activity = serializers.CharField()
    details = serializers.CharField(allow_blank=True)
    timestamp = UTCMillisecondsField(help_text="UTC with milliseconds, e.g. 2025-01-20T14:30:45.123Z")
    ip_address = serializers.IPAddressField(allow_null=True)


class ChangeEntrySerializer(serializers.Serializer):
    timestamp = UTCMillisecondsField()
    action_type = serializers.CharField()
    field_name = serializers.CharField()
    old_value = serializers.CharField(allow_null=True)
    new_value = serializers.CharField(allow_null=True)
    user_id = serializers.CharField()
    change_reason = serializers.CharField(allow_blank=True)
    source = serializers.CharField(help_text="captured (a change that happened) or manual (a hand entry).")


class SystemEventEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    timestamp = UTCMillisecondsField()
    event_type = serializers.CharField()
    entity_type = serializers.CharField(allow_blank=True)
    entity_id = serializers.CharField(allow_blank=True)
    event_data = serializers.CharField(allow_blank=True)
    severity = serializers.CharField(help_text="info, warning, error or critical.")
    processed = serializers.BooleanField(help_text="Its alert rules were evaluated and its deliveries created.")
    processed_at = UTCMillisecondsField(allow_null=True)
    acknowledged_at = UTCMillisecondsField(allow_null=True, help_text="When a person took it on (null until then).")
    acknowledged_by = serializers.CharField(allow_null=True, help_text="The user_id who acknowledged it (PE001).")
    acknowledgement_note = serializers.CharField(allow_null=True, allow_blank=True)


class AcknowledgeRequestSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="",
                                 help_text="What is being done about it (optional).")


class AcknowledgeResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    event = SystemEventEntrySerializer()


class TrailRecordSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    timestamp = UTCMillisecondsField()
    user_id = serializers.CharField()
    action_type = serializers.CharField()
    entity_type = serializers.CharField()
    entity_id = serializers.CharField()
    old_value = serializers.CharField(allow_null=True, help_text="JSON object of the old values.")
    new_value = serializers.CharField(allow_null=True, help_text="JSON object of the new values.")
    ip_address = serializers.IPAddressField(allow_null=True)
    status = serializers.CharField(help_text="completed, failed or pending.")
    error_message = serializers.CharField(allow_blank=True, help_text="Why a failed attempt was refused.")
    source = serializers.CharField(help_text="captured (a change that happened) or manual (a hand entry "
                                             "through log_entity_change).")


class LatestActivitySerializer(serializers.Serializer):
    user_id = serializers.CharField()
    activity = serializers.CharField()
    details = serializers.CharField(allow_blank=True)
    timestamp = UTCMillisecondsField()


# --- responses -----------------------------------------------------------------


class _Listing(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    count = serializers.IntegerField(help_text="Records returned.")
    total = serializers.IntegerField(
        help_text="Records that matched before the limit: exact up to 10000, then 10000 with total_relation "
        "\"gte\" (exact_total=1 gives the exact number)."
    )
    total_relation = serializers.ChoiceField(
        choices=["eq", "gte"], help_text="eq: total is exact; gte: at least total records matched."
    )


class UserActivityResponseSerializer(_Listing):
    user_id = serializers.CharField()
    activities = ActivityEntrySerializer(many=True)
    timestamp = UTCMillisecondsField(help_text="Server time of the answer.")


class EntityHistoryResponseSerializer(_Listing):
    entity_type = serializers.CharField()
    entity_id = serializers.CharField()
    changes = ChangeEntrySerializer(many=True)


class SystemEventsResponseSerializer(_Listing):
    events = SystemEventEntrySerializer(many=True)
    hours_included = serializers.FloatField(help_text="The hours window applied.")


class AuditTrailResponseSerializer(_Listing):
    records = TrailRecordSerializer(many=True)


class DashboardMetricsSerializer(serializers.Serializer):
    active_users_1h = serializers.IntegerField()
    recent_activities_1h = serializers.IntegerField()
    recent_errors_1h = serializers.IntegerField()
    online_users_15m = serializers.IntegerField()
    pending_maintenance = serializers.IntegerField()
    active_emergencies = serializers.IntegerField()


class DashboardResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    timestamp = UTCMillisecondsField()
    metrics = DashboardMetricsSerializer()
    latest_activities = LatestActivitySerializer(many=True)
