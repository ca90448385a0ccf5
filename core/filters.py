"""Filters shared by the apps' list filters."""

from __future__ import annotations

import datetime

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


class UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date and time, converted to UTC before it reaches the database: ISO 8601 (and
    Python) allow offsets up to ±23:59, PostgreSQL only up to ±15:59 (a larger one was a
    DataError, a 500). A value that leaves the years 1-9999 once in UTC is refused."""

    default_error_messages = {
        "out_of_range": "Enter a date and time between the years 1 and 9999 (in UTC).",
    }

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(datetime.UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["out_of_range"], code="out_of_range") from None


class UTCIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField
