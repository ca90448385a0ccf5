"""The diff: a pure, database-free function from two value mappings to a
frozen :class:`Diff` of JSON-safe values.

Values are serialized one way everywhere (:func:`to_json`): datetimes as ISO
8601 in UTC (``2025-01-20T14:30:45.123456Z``), dates and times as ISO,
``Decimal`` as a string (``"12.50"``), UUIDs as strings, files as their name,
``None`` kept distinct from ``""``. Masked fields (secrets) appear only as
``"[changed]"``; excluded fields never appear.

Modes: ``old is None`` is a create (every field, old ``None``);
``new is None`` is a delete (every old value, new ``None``); otherwise an
update records only the fields whose value changed (``ignored`` fields, such
as ``auto_now`` timestamps, never count as a change).
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MASK = "[changed]"
ALWAYS_MASKED = frozenset({"password", "token", "token_key", "digest", "salt", "session_key", "secret", "api_key"})

CREATE, UPDATE, DELETE = "create", "update", "delete"


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Diff:
    mode: str  # create | update | delete
    changes: tuple[FieldChange, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changes)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.changes)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """``{"field": {"old": ..., "new": ...}}`` for ``audit_trail.changes``."""
        return {c.field: {"old": c.old, "new": c.new} for c in self.changes}

    def old_values(self) -> dict[str, Any] | None:
        return None if self.mode == CREATE else {c.field: c.old for c in self.changes}

    def new_values(self) -> dict[str, Any] | None:
        return None if self.mode == DELETE else {c.field: c.new for c in self.changes}


def to_json(value: Any) -> Any:
    """One JSON-safe form for a model field value."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value.isoformat() + "Z"
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"[binary {len(bytes(value))} bytes]"
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_json(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    name = getattr(value, "name", None)  # FieldFile
    if name is not None and hasattr(value, "storage"):
        return name
    return str(value)


def _masked(value: Any) -> Any:
    return None if value is None else MASK


def diff_values(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    *,
    masked: Iterable[str] = (),
    excluded: Iterable[str] = (),
    ignored: Iterable[str] = (),
    normalize: Mapping[str, Callable[[Any], Any]] | None = None,
) -> Diff:
    """Compare two ``{field: python value}`` mappings.

    ``normalize`` maps a field to a function applied to the new value when it
    differs from the old one (e.g. a model field's ``to_python``), so that an
    unsaved ``"5"`` does not count as a change from ``5``.
    """
    masked = ALWAYS_MASKED.union(masked)
    excluded = frozenset(excluded)
    if old is None and new is None:
        raise ValueError("diff_values needs old or new values")
    if old is None:
        return Diff(CREATE, tuple(
            FieldChange(k, None, _masked(v) if k in masked else to_json(v))
            for k, v in new.items() if k not in excluded
        ))
    if new is None:
        return Diff(DELETE, tuple(
            FieldChange(k, _masked(v) if k in masked else to_json(v), None)
            for k, v in old.items() if k not in excluded
        ))
    ignored = frozenset(ignored)
    changes = []
    for key, value in new.items():
        if key in excluded or key in ignored or key not in old:
            continue
        before = old[key]
        if _same(before, value):
            continue
        if normalize and key in normalize:
            try:
                value = normalize[key](value)
            except Exception:  # noqa: BLE001 - an unconvertible value is a change
                pass
            else:
                if _same(before, value):
                    continue
        if key in masked:
            changes.append(FieldChange(key, MASK, MASK))
        else:
            changes.append(FieldChange(key, to_json(before), to_json(value)))
    return Diff(UPDATE, tuple(changes))


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if type(a) is not type(b) and (isinstance(a, bool) or isinstance(b, bool)):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001
        return False


# Fields whose change alone does not make an update "semantic" beyond a
# status move: the timestamps and actors that go with a transition.
_TRANSITION_COMPANIONS = ("_at", "_by", "_by_id")
STATUS_FIELDS = ("status", "approval_status")


def classify(diff: Diff, *, status_fields: Iterable[str] = STATUS_FIELDS) -> str:
    """The ``action_type`` of a change.

    - create / delete as the mode says;
    - ``password_reset`` when the password changed, ``role_change`` when the role did;
    - when a status field changed and every other changed field is a
      companion of the transition (``*_at``, ``*_by``, ``rejection_reason``):
      ``approve`` / ``reject`` for a move to ``approved`` / ``rejected``,
      else ``status_change``;
    - ``assign`` when only ``assigned_to`` (with a status move and companions) changed;
    - otherwise ``update``.
    """
    if diff.mode != UPDATE:
        return diff.mode
    fields = set(diff.fields)
    if "password" in fields:
        return "password_reset"
    if "role" in fields:
        return "role_change"
    others = {f for f in fields if not f.endswith(_TRANSITION_COMPANIONS) and f != "rejection_reason"}
    status = [f for f in status_fields if f in fields]
    if status and others <= set(status_fields):
        new = next(c.new for c in diff.changes if c.field == status[0])
        return {"approved": "approve", "rejected": "reject"}.get(new, "status_change")
    if others - set(status_fields) == {"assigned_to"}:
        return "assign"
    return UPDATE
