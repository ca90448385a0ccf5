"""Query parameters of the real-time audit API, validated in one place.

:class:`AuditTrailFilter` is shared by ``/api/realtime/audit-trail``,
``/api/realtime/export-audit``, the ``export_audit`` command and the admin
audit-log page: the same names (``hours``, ``user_id``, ``action_type``,
``entity_type``, ``entity_id``, ``status``), the same rules, the same rows
(:func:`audit.selectors.trail_filtered`). The other FilterSets only validate
the parameters of their endpoint; the views hand the cleaned values to the
selectors.

Rules (SPEC "The API"): ``hours`` is a number > 0 and <= 8760 (decimals
allowed); ``limit`` an integer from 1 to 1000; ``severity`` one of info,
warning, error, critical or a comma list of them; choice values outside
their list are refused. A parameter that is present but empty is refused
too. Nothing is silently clamped: a bad value is an error naming the
parameter, never a default.

    fs = AuditTrailFilter(data={"hours": "0.5", "status": "failed"})
    if fs.is_valid():
        rows = fs.qs        # newest first, not limited
    else:
        fs.errors           # {"hours": ["..."]}
"""

from __future__ import annotations

import datetime

import django_filters as filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.utils import translate_validation

from audit import selectors
from audit.capture import registry
from audit.models import ActionType, AuditStatus, AuditTrail

DEFAULT_HOURS = 24
DEFAULT_EVENT_HOURS = 1


def entity_type_choices() -> list[tuple[str, str]]:
    """The entity types of the tracked models (``maintenance_request``, ``user``, ...)."""
    return sorted((c.entity_type, c.entity_type) for c in registry.tracked_models())


# --- form fields ---------------------------------------------------------------


class _StrictField(forms.Field):
    """Absent -> ``default``; present but blank -> error; else ``convert``."""

    convert = staticmethod(lambda value: value)
    blank_message = "{name} must not be empty."

    def __init__(self, *, default=None, param: str = "", **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.default = default
        self.param = param

    def clean(self, value):
        if value is None:
            return self.default
        if isinstance(value, list):  # a form field never gets one from a QueryDict; be safe
            value = value[-1] if value else ""
        if not str(value).strip():
            raise ValidationError(self.blank_message.format(name=self.param), code="blank")
        try:
            return self.convert(value)
        except ValueError as exc:
            # The reason quotes the caller's value: it goes in params, never in the message
            # itself, which django-filters formats with % (a '%' sent would break it).
            raise ValidationError("%(reason)s", code="invalid", params={"reason": str(exc)}) from None


class HoursField(_StrictField):
    convert = staticmethod(selectors.validate_hours)
    blank_message = "{name} must not be empty: give a number greater than 0 and at most 8760."


class LimitField(_StrictField):
    convert = staticmethod(selectors.validate_limit)
    blank_message = "{name} must not be empty: give an integer from 1 to 1000."


def _parse_bool(value) -> bool:
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ValueError("must be true or false.")
    return text == "true"


class BooleanParamField(_StrictField):
    """``true`` or ``false`` (nothing else: ``yes``, ``1`` or ``on`` are refused, not guessed)."""

    convert = staticmethod(_parse_bool)
    blank_message = "{name} must not be empty: give true or false."

    def clean(self, value):
        try:
            return super().clean(value)
        except ValidationError as exc:
            if exc.code == "invalid":
                raise ValidationError(f"{self.param} must be true or false.", code="invalid") from None
            raise


def _parse_flag(value) -> bool:
    text = str(value).strip().lower()
    if text not in ("1", "0", "true", "false"):
        raise ValueError("exact_total must be 1 (an exact total, at its cost) or 0 (a total capped at 10000).")
    return text in ("1", "true")


class ExactTotalField(_StrictField):
    """``exact_total=1`` asks for the exact ``total``; ``0`` or absent, a total capped at 10,000."""

    convert = staticmethod(_parse_flag)
    blank_message = "{name} must not be empty: give 1 or 0."


def parse_utc(value) -> datetime.datetime:
    """``2026-12-02``, ``2026-12-02T05:44`` or ``2026-12-02 05:44:13`` (a form's datetime-local), read as UTC;
    an explicit offset (``Z``, ``+02:00``) is honoured."""
    from django.utils.dateparse import parse_date, parse_datetime

    text = str(value).strip().replace(" ", "T", 1)
    if len(text) > 40:
        raise ValueError("must be a date and time such as 2026-12-02T05:44 (UTC).")
    try:
        moment = parse_datetime(text)
        day = None if moment else parse_date(text)
    except ValueError:
        moment = day = None
    if moment is None and day is not None:
        moment = datetime.datetime.combine(day, datetime.time())
    if moment is None:
        raise ValueError("must be a date and time such as 2026-12-02T05:44 (UTC).")
    return in_utc(moment)


def in_utc(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` in UTC (UTC when it has no zone). The database gets UTC: PostgreSQL takes
    offsets up to ±15:59 only, where ISO 8601 allows ±23:59. Raises ValueError for an instant
    Python cannot hold in UTC (0001-01-01T00:00+01:00 is in the year 0)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    try:
        return moment.astimezone(datetime.UTC)
    except OverflowError:
        raise ValueError("must be a date and time between the years 1 and 9999 in UTC.") from None


class UTCDateTimeField(_StrictField):
    blank_message = "{name} must not be empty: give a date and time such as 2026-12-02T05:44 (UTC)."

    def clean(self, value):
        try:
            return super().clean(value)
        except ValidationError as exc:
            if exc.code == "invalid":
                raise ValidationError(f"{self.param} {exc.messages[0]}", code="invalid") from None
            raise

    @staticmethod
    def convert(value):
        return parse_utc(value)


class SeverityField(_StrictField):
    convert = staticmethod(selectors.parse_severities)
    blank_message = "{name} must not be empty: give info, warning, error, critical or a comma list of them."


# --- filters (validation only; the selectors do the filtering) -----------------


class _ParamFilter(filters.Filter):
    """A parameter read by the selector, not a ``filter()`` on the queryset."""

    def filter(self, qs, value):
        return qs


class HoursFilter(_ParamFilter):
    field_class = HoursField

    def __init__(self, *, default, **kwargs):
        super().__init__(default=default, param="hours", **kwargs)


class ExactTotalFilter(_ParamFilter):
    field_class = ExactTotalField

    def __init__(self, **kwargs):
        super().__init__(default=False, param="exact_total", **kwargs)


class LimitFilter(_ParamFilter):
    field_class = LimitField

    def __init__(self, *, default, **kwargs):
        super().__init__(default=default, param="limit", **kwargs)


class SeverityFilter(_ParamFilter):
    field_class = SeverityField

    def __init__(self, **kwargs):
        super().__init__(default=None, param="severity", **kwargs)


class BooleanParamFilter(_ParamFilter):
    field_class = BooleanParamField

    def __init__(self, *, param: str, **kwargs):
        super().__init__(default=None, param=param, **kwargs)


class UTCDateTimeFilter(_ParamFilter):
    field_class = UTCDateTimeField

    def __init__(self, *, param: str, **kwargs):
        super().__init__(default=None, param=param, **kwargs)


class ExactText(_ParamFilter):
    """Free text matched exactly by the selector; bounded, no NUL byte."""

    field_class = forms.CharField

    def __init__(self, *, param: str, max_length: int, **kwargs):
        messages = {
            "max_length": f"{param} must be at most %(limit_value)d characters (it has %(show_value)d).",
            "null_characters_not_allowed": f"{param} must not contain NUL characters.",
        }
        super().__init__(max_length=max_length, error_messages=messages, **kwargs)


class ChoiceParamField(forms.ChoiceField):
    """A ChoiceField whose refusal names the parameter and the valid values
    (the list may be computed: the tracked entity types)."""

    def __init__(self, *, param: str, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.param = param

    def validate(self, value):
        if value and not self.valid_value(value):
            names = ", ".join(str(v) for v, _ in self.choices if v)
            raise ValidationError(  # the value in params: the message is %-formatted later
                "%(param)s: %(value)s is not valid: use one of %(names)s.", code="invalid_choice",
                params={"param": self.param, "value": repr(str(value)[:40]), "names": names},
            )


class ExactChoice(_ParamFilter):
    """One value of a fixed (or computed) list; anything else is refused."""

    field_class = ChoiceParamField

    def __init__(self, *, param: str, choices, **kwargs):
        if callable(choices):
            field_choices = lambda: [("", "---------"), *choices()]  # noqa: E731
        else:
            field_choices = [("", "---------"), *choices]
        super().__init__(param=param, choices=field_choices, **kwargs)


class _ParamFilterSet(filters.FilterSet):
    def cleaned(self) -> dict:
        """The validated parameters; raises DRF's ``ValidationError`` (400 in
        the error envelope, one message per parameter) when one is bad."""
        if not self.is_valid():
            raise translate_validation(self.errors)
        return dict(self.form.cleaned_data)


# --- the FilterSets --------------------------------------------------------------


class AuditTrailFilter(_ParamFilterSet):
    """audit_trail rows of the last ``hours``, with the allow-listed exact
    filters of :data:`audit.selectors.TRAIL_FILTERS`."""

    hours = HoursFilter(default=DEFAULT_HOURS, help_text="Hours back from now: > 0 and <= 8760, decimals allowed.")
    user_id = ExactText(param="user_id", max_length=20, help_text="Actor's user_id (exact).")
    action_type = ExactChoice(param="action_type", choices=ActionType.choices, help_text="Action type (exact).")
    entity_type = ExactChoice(param="entity_type", choices=entity_type_choices, help_text="Entity type (exact).")
    entity_id = ExactText(param="entity_id", max_length=64, help_text="Entity code such as MR001 (exact).")
    status = ExactChoice(param="status", choices=AuditStatus.choices, help_text="completed, failed or pending.")

    class Meta:
        model = AuditTrail
        fields: list[str] = []

    def time_range(self) -> tuple[datetime.datetime | None, datetime.datetime | None]:
        """``(start, end)``: ``from`` up to ``to`` (or now); ``to`` alone is the ``hours`` before it."""
        data = self.form.cleaned_data
        start, end = data.get("from"), data.get("to")
        if start is None and end is not None:
            start = end - datetime.timedelta(hours=data["hours"])
        return start, end

    def is_valid(self):
        valid = super().is_valid()
        if valid:
            start, end = self.form.cleaned_data.get("from"), self.form.cleaned_data.get("to")
            if start is not None and end is not None and end <= start:
                self.form.add_error("to", ValidationError("to must be after from.", code="invalid"))
                return False
        return valid

    def filter_queryset(self, queryset):
        data = self.form.cleaned_data
        filters_ = {name: data.get(name) for name in selectors.TRAIL_FILTERS}
        start, end = self.time_range()
        return selectors.trail_filtered(hours=data["hours"], filters=filters_, start=start, end=end)

    def describe(self) -> dict:
        """The filters in force (for the activity log and file names)."""
        data = self.form.cleaned_data
        out = {k: v for k, v in data.items() if k in ("hours", *selectors.TRAIL_FILTERS) and v not in (None, "")}
        for name in ("from", "to"):
            if data.get(name) is not None:
                out[name] = data[name].isoformat().replace("+00:00", "Z")
        return out


# ``from`` is a Python keyword, so the range's two filters are added by name (UTC date-times)
AuditTrailFilter.base_filters["from"] = UTCDateTimeFilter(
    param="from", help_text="From this date and time (UTC, included) instead of hours back from now.")
AuditTrailFilter.base_filters["to"] = UTCDateTimeFilter(
    param="to", help_text="Up to this date and time (UTC, excluded); alone, the hours before it.")


class AuditTrailQuery(AuditTrailFilter):
    """``/api/realtime/audit-trail``: the shared filters plus ``limit``."""

    limit = LimitFilter(default=200, help_text="At most this many records: 1 to 1000.")
    exact_total = ExactTotalFilter(help_text="1: the exact total, at its cost; otherwise capped at 10000.")

    class Meta(AuditTrailFilter.Meta):
        pass


class UserActivityQuery(_ParamFilterSet):
    user_id = ExactText(param="user_id", max_length=20)
    hours = HoursFilter(default=DEFAULT_HOURS)
    limit = LimitFilter(default=50)
    exact_total = ExactTotalFilter()

    class Meta:
        model = AuditTrail
        fields: list[str] = []


class EntityHistoryQuery(_ParamFilterSet):
    entity_type = ExactChoice(param="entity_type", choices=entity_type_choices)
    entity_id = ExactText(param="entity_id", max_length=64)
    limit = LimitFilter(default=100)
    exact_total = ExactTotalFilter()

    class Meta:
        model = AuditTrail
        fields: list[str] = []


class SystemEventsQuery(_ParamFilterSet):
    hours = HoursFilter(default=DEFAULT_EVENT_HOURS)
    severity = SeverityFilter()
    processed = BooleanParamFilter(param="processed")
    acknowledged = BooleanParamFilter(param="acknowledged")
    limit = LimitFilter(default=selectors.MAX_LIMIT)
    exact_total = ExactTotalFilter()

    class Meta:
        model = AuditTrail
        fields: list[str] = []


# --- export packs: the shared filters plus a from/to range ------------------------


class DateTimeParamField(_StrictField):
    """An ISO 8601 date or date-time; without a zone it is UTC."""

    blank_message = "{name} must not be empty: give an ISO 8601 date-time such as 2025-01-20T14:30:00Z."

    def convert(self, value):
        from django.utils.dateparse import parse_date, parse_datetime

        text = str(value).strip()
        try:
            parsed = parse_datetime(text)
            if parsed is None and (day := parse_date(text)) is not None:
                parsed = datetime.datetime.combine(day, datetime.time())
        except ValueError:
            parsed = None
        if parsed is None:
            raise ValueError(f"{self.param}: {text[:40]!r} is not an ISO 8601 date-time "
                             "(such as 2025-01-20T14:30:00Z).")
        try:
            return in_utc(parsed)
        except ValueError as exc:
            raise ValueError(f"{self.param} {exc}") from None


class DateTimeParam(_ParamFilter):
    field_class = DateTimeParamField

    def __init__(self, *, param: str, **kwargs):
        super().__init__(default=None, param=param, **kwargs)


class PackFilter(AuditTrailFilter):
    """An export pack's rows: :class:`AuditTrailFilter`'s filters with either
    ``hours`` or a ``from``/``to`` range (``to`` excluded, default now). A
    pack of one entity (``entity_id``) without either covers its whole
    history."""

    class Meta(AuditTrailFilter.Meta):
        pass

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.explicit_hours = "hours" in (self.data or {})

    def clean_range(self):
        data = self.form.cleaned_data
        start, end = data.get("from"), data.get("to")
        if start is not None and self.explicit_hours:
            self.form.add_error("from", "Give either hours or from/to, not both.")
        elif end is not None and start is None:
            self.form.add_error("to", "to needs from.")
        elif start is not None and end is not None and end <= start:
            self.form.add_error("to", "to must be after from.")

    def is_valid(self):
        valid = super().is_valid()
        if valid:
            self.clean_range()
            valid = not self.form.errors
        return valid

    def filter_queryset(self, queryset):
        data = self.form.cleaned_data
        filters_ = {name: data.get(name) for name in selectors.TRAIL_FILTERS}
        start = data.get("from")
        if start is None and not self.explicit_hours and data.get("entity_id"):
            start = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)  # the entity's whole history
        if start is not None:
            return selectors.trail_filtered(start=start, end=data.get("to"), filters=filters_)
        return selectors.trail_filtered(hours=data["hours"], filters=filters_)

    def selection(self):
        """The pack's :class:`~audit.operations.packs.Selection` (call after validation)."""
        from audit.operations.packs import Selection

        data = self.form.cleaned_data
        start, end = data.get("from"), data.get("to")
        if start is None and not self.explicit_hours and data.get("entity_id"):
            start = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
        elif start is None:
            end = None
            start = selectors._since(data["hours"])
        entity = (data.get("entity_type") or "", data["entity_id"]) if data.get("entity_id") else None
        return Selection(trail=self.qs, start=start, end=end, filters=self.describe(), entity=entity)

    def describe(self) -> dict:
        data = self.form.cleaned_data
        described = super().describe()
        if data.get("from") is not None or (not self.explicit_hours and data.get("entity_id")):
            described.pop("hours", None)
        for name in ("from", "to"):
            if data.get(name) is not None:
                described[name] = data[name].isoformat()
        return described


# "from" is a Python keyword: the two range parameters are added by name.
PackFilter.base_filters["from"] = DateTimeParam(param="from", help_text="Start (ISO 8601, UTC if no zone).")
PackFilter.base_filters["to"] = DateTimeParam(param="to", help_text="End, excluded (ISO 8601; default now).")
