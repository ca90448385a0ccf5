"""One timestamp format for every API response (SPEC "The API"):
ISO 8601 in UTC with milliseconds, ``2025-01-20T14:30:45.123Z``."""

from __future__ import annotations

import datetime as dt

from rest_framework import serializers

from core.lengths import CHANGE_REASON_MAX_LENGTH


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


class UserIdField(serializers.SlugRelatedField):
    """A user written as their ``user_id`` (case-insensitive on input).

    A NUL byte is refused before the lookup: PostgreSQL cannot take one in a text
    parameter (the query failed with a DataError, a 500), and no user id holds one."""

    default_error_messages = {
        "null_characters": "A user id must not contain NUL characters.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("slug_field", "user_id")
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data:
            self.fail("null_characters")
        user = self.get_queryset().filter(user_id__iexact=data.strip()).first()
        if user is None:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data[:40])
        return user


def change_reason_field() -> serializers.CharField:
    """The optional ``change_reason`` of an API write (SPEC: every write may say why)."""
    return serializers.CharField(max_length=CHANGE_REASON_MAX_LENGTH, required=False, allow_blank=True, default="",
                                 help_text="Why this change is made; recorded in the audit trail.")
