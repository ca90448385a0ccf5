"""One timestamp format for every API response (SPEC "The API"):
ISO 8601 in UTC with milliseconds, ``2025-01-20T14:30:45.123Z``."""

from __future__ import annotations

import datetime as dt

from rest_framework import serializers


def iso_ms(value: dt.datetime | None) -> str | None:
    """``2025-01-20T14:30:45.123Z`` for an aware or naive-UTC datetime; None stays None."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class UTCMillisecondsField(serializers.DateTimeField):
    """A DRF DateTimeField that renders with :func:`iso_ms` and still parses
    any ISO 8601 input."""

    def to_representation(self, value):
        if not value:
            return None
        return iso_ms(value)
