"""The seed's logging functions, for code that wants to log by hand.

Import them from here (``audit/__init__.py`` stays empty: importing models
while the app registry loads would break start-up)::

    from audit.services import log_activity, log_entity_change, log_system_event

    log_activity("Viewed maintenance request", "Request ID: MR001")
    log_entity_change(
        entity_type="maintenance_request", entity_id="MR001", field_name="status",
        old_value="pending", new_value="approved", action_type="approve",
        change_reason="Approved by port engineer",
    )
    log_system_event(
        event_type="emergency_created", entity_type="emergency", entity_id="EMG001",
        event_data={"vessel": "MV Aurora"}, severity="critical",
    )

The readers (``get_user_activity_timeline``, ``get_entity_change_history``,
``get_real_time_events``) live in :mod:`audit.selectors`.

Who, from where and why are never arguments: they come from
:mod:`audit.context` when the row is written (the request's user and client
IP inside a request, ``system`` outside one, or whatever an enclosing
``audit_context(actor=..., reason=...)`` says). All rows go through
:mod:`audit.capture.writer`, the one write path, which strips NUL bytes and bounds
lengths. Inside a transaction the rows commit or roll back with it.

With capture switched off (``audit_context(enabled=False)``) these functions
write nothing and return ``None``.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.capture import registry, writer
from audit.capture.diff import to_json
from audit.context import get_context
from audit.models import ActionType, ActivityLog, AuditTrail, RecordSource, Severity, SystemEvent

__all__ = ["log_activity", "log_entity_change", "log_system_event"]


def _json_safe(value: Any) -> Any:
    """A value in the one form the audit tables use (:func:`audit.capture.diff.to_json`:
    datetimes ISO 8601 in UTC with ``Z``, decimals and UUIDs as strings, ``None``
    kept distinct from ``""``), a tracked model instance as its code."""
    config = registry.get_config(type(value)) if hasattr(value, "_meta") else None
    if config is not None:
        return config.entity_id(value)
    return to_json(value)


def _table_name(entity_type: str) -> str:
    config = registry.config_for_entity_type(entity_type)
    return config.model._meta.db_table if config else entity_type


def _required(value: Any, name: str) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        raise ValueError(f"{name} is required.")
    return text


def log_activity(activity: str, details: Any = "") -> ActivityLog | None:
    """Record a user activity (``activity_logs``): the actor, IP, request id
    and user agent come from the current audit context."""
    if not get_context().enabled:
        return None
    return writer.write_activity(activity=_required(activity, "activity"), details=details or "")


def log_entity_change(
    entity_type: str,
    entity_id: Any,
    field_name: str,
    old_value: Any,
    new_value: Any,
    action_type: str = "update",
    change_reason: str | None = None,
) -> AuditTrail | None:
    """Record one field change by hand: one ``audit_trail`` row and its
    ``update_history`` row, in one transaction. ``change_reason`` defaults to
    the context's reason. ``action_type`` is one of :class:`ActionType`. The row's
    ``source`` is ``manual``: the API, the pages and the exports show it as a hand entry,
    never as a captured change (the entity itself is not touched)."""
    if action_type not in ActionType.values:
        raise ValueError(f"Unknown action_type {action_type!r}: use one of {', '.join(ActionType.values)}.")
    entity_type = _required(entity_type, "entity_type")
    entity_id = _required(entity_id, "entity_id")
    field_name = _required(field_name, "field_name")
    if not get_context().enabled:
        return None
    with transaction.atomic():
        return writer.write_change(
            action_type=action_type,
            entity_type=entity_type,
            entity_id=entity_id,
            changes={field_name: {"old": _json_safe(old_value), "new": _json_safe(new_value)}},
            table_name=_table_name(entity_type),
            reason=change_reason,
            source=RecordSource.MANUAL,
        )


def log_system_event(
    event_type: str,
    entity_type: str = "",
    entity_id: Any = "",
    event_data: Any = "",
    severity: str = "info",
) -> SystemEvent | None:
    """Record a system event (``system_events``). ``event_data`` is text or a
    JSON-serializable dict/list (stored as JSON text); ``severity`` one of
    info, warning, error, critical."""
    if severity not in Severity.values:
        raise ValueError(f"Unknown severity {severity!r}: use one of {', '.join(Severity.values)}.")
    event_type = _required(event_type, "event_type")
    if not get_context().enabled:
        return None
    if not isinstance(event_data, str):
        event_data = _json_safe(event_data)
    return writer.write_system_event(
        event_type=event_type,
        entity_type=entity_type or "",
        entity_id="" if entity_id is None else entity_id,
        event_data=event_data,
        severity=severity,
    )
