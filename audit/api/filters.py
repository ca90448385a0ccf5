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
            raise ValidationError(str(exc), code="invalid") from None


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
            raise ValidationError(
                f"{self.param}: {str(value)[:40]!r} is not valid: use one of {names}.", code="invalid_choice"
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

    def filter_queryset(self, queryset):
        data = self.form.cleaned_data
        filters_ = {name: data.get(name) for name in selectors.TRAIL_FILTERS}
        return selectors.trail_filtered(hours=data["hours"], filters=filters_)

    def describe(self) -> dict:
        """The filters in force (for the activity log and file names)."""
        data = self.form.cleaned_data
        return {k: v for k, v in data.items() if k in ("hours", *selectors.TRAIL_FILTERS) and v not in (None, "")}


class AuditTrailQuery(AuditTrailFilter):
    """``/api/realtime/audit-trail``: the shared filters plus ``limit``."""

    limit = LimitFilter(default=200, help_text="At most this many records: 1 to 1000.")

    class Meta(AuditTrailFilter.Meta):
        pass


class UserActivityQuery(_ParamFilterSet):
    user_id = ExactText(param="user_id", max_length=20)
    hours = HoursFilter(default=DEFAULT_HOURS)
    limit = LimitFilter(default=50)

    class Meta:
        model = AuditTrail
        fields: list[str] = []


class EntityHistoryQuery(_ParamFilterSet):
    entity_type = ExactChoice(param="entity_type", choices=entity_type_choices)
    entity_id = ExactText(param="entity_id", max_length=64)
    limit = LimitFilter(default=100)

    class Meta:
        model = AuditTrail
        fields: list[str] = []


class SystemEventsQuery(_ParamFilterSet):
    hours = HoursFilter(default=DEFAULT_EVENT_HOURS)
    severity = SeverityFilter()
    processed = BooleanParamFilter(param="processed")
    acknowledged = BooleanParamFilter(param="acknowledged")
    limit = LimitFilter(default=selectors.MAX_LIMIT)

    class Meta:
        model = AuditTrail
        fields: list[str] = []
