from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self):
        from django.db import models
        from rest_framework import serializers

        from core.fields import UTCMillisecondsField

        # Every ModelSerializer renders model datetimes as 2025-01-20T14:30:45.123Z.
        serializers.ModelSerializer.serializer_field_mapping[models.DateTimeField] = UTCMillisecondsField
