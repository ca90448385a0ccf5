"""simple-history snapshot rows written by the capture path itself.

simple-history stays the per-model snapshot store (its tables, admin history
view, revert and as-of queries are untouched), but for a tracked model the
row of one ``save()``/``delete()`` is written by :mod:`audit.capture.writer` in the
same statement as the audit rows (PostgreSQL: one data-modifying CTE) rather
than by simple-history's own ``post_save``/``post_delete`` receivers, which
build a manager class and a model instance per row and cost one more round
trip. :func:`take_over` disconnects those two receivers for a model when the
row we write is exactly the row simple-history would write:

- no many-to-many history (``m2m_fields``), no ``history_relation``, no
  ``cascade_delete_history``, the history model on the same database;
- every tracked (non-excluded) field copied from ``instance.<attname>`` and
  prepared by the historical field, as simple-history's ``save()`` does;
- ``history_type`` ``+`` / ``~`` / ``-``; ``history_date`` from
  ``instance._history_date`` or now; ``history_user`` from
  ``instance._history_user`` or the audit actor (the context's actor, else
  the request's user); ``history_change_reason`` from
  ``instance._change_reason`` or the context's reason (NULL when none);
- ``SIMPLE_HISTORY_ENABLED = False`` and ``instance.skip_history_when_saving``
  are honoured.

When a receiver listens to ``pre_create_historical_record`` or
``post_create_historical_record`` for the history model, simple-history's own
``create_historical_record`` writes the row instead, so those receivers still
run (one more statement).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import signals
from simple_history.models import HistoricalRecords
from simple_history.signals import post_create_historical_record, pre_create_historical_record

from audit.capture import compat
from audit.capture.text import TEXT_LIMIT, clean_text


def records(*unindexed: str, **options) -> HistoricalRecords:
    """simple-history's ``HistoricalRecords`` for a tracked model, whose copies of the
    ``unindexed`` fields (its code, its foreign keys) have no index. simple-history indexes a
    copied field wherever the model does; no read of a snapshot table goes by those (copied
    foreign keys have no constraint either), and each index is one more entry written with every
    snapshot row. What stays indexed besides the table's key: the object's id (its history, as
    the admin's history page and a revert read it), the time (the order) and the acting user (a
    foreign key with a constraint, set to NULL when the user is deleted);
    ``tests/audit/capture/test_history.py`` holds every snapshot table to that."""
    return HistoricalRecords(no_db_index=list(unindexed), **options)


@dataclass(eq=False)  # hashed by identity: one per model, a cache key of copy_sql
class HistorySpec:
    """How to write one history row of ``model``, computed once."""

    model: type
    history_model: type
    records: HistoricalRecords
    table: str
    #: (historical field, source attname) for every tracked field
    fields: tuple
    user_field: Any
    date_field: Any
    reason_limit: int

    def columns(self, quote) -> list[str]:
        names = [f.column for f, _ in self.fields]
        names += [self.date_field.column, "history_type", self.user_field.column, "history_change_reason"]
        return [quote(n) for n in names]

    def has_listeners(self) -> bool:
        return (pre_create_historical_record.has_listeners(self.history_model)
                or post_create_historical_record.has_listeners(self.history_model))


_specs: dict[type, HistorySpec | None] = {}


def _receiver(signal, model, name: str):
    for receiver in compat.live_receivers(signal, model):
        owner = getattr(receiver, "__self__", None)
        if isinstance(owner, HistoricalRecords) and receiver.__func__ is getattr(HistoricalRecords, name):
            return receiver
    return None


def _build_spec(model) -> HistorySpec | None:
    attr = getattr(model._meta, "simple_history_manager_attribute", None)
    if not attr:
        return None
    records = _receiver(signals.post_save, model, "post_save") or _receiver(signals.post_delete, model, "post_delete")
    if records is None:
        return None
    records = records.__self__
    history_model = getattr(model, attr).model
    meta = history_model._meta
    if (getattr(history_model, "_history_m2m_fields", None) or records.m2m_fields
            or any(f.name == "history_relation" for f in meta.fields)
            or records.cascade_delete_history or records.get_user is not compat.default_get_user()
            or records.user_id_field is not None or records.user_model is not None
            or records.history_id_field is not None or getattr(settings, "SIMPLE_HISTORY_HISTORY_ID_USE_UUID", False)):
        return None
    fields = tuple((meta.get_field(f.name), f.attname) for f in records.fields_included(model))
    reason_field = meta.get_field("history_change_reason")
    return HistorySpec(
        model=model, history_model=history_model, records=records, table=meta.db_table, fields=fields,
        user_field=meta.get_field("history_user"), date_field=meta.get_field("history_date"),
        reason_limit=getattr(reason_field, "max_length", None) or TEXT_LIMIT,
    )


def take_over(model) -> HistorySpec | None:
    """Disconnect simple-history's ``post_save``/``post_delete`` receivers of
    ``model`` when our rows are exact (see the module docstring); returns the
    spec, or None when simple-history keeps writing its rows itself."""
    if model in _specs:
        return _specs[model]
    spec = _build_spec(model)
    if spec is not None:
        for signal, name in ((signals.post_save, "post_save"), (signals.post_delete, "post_delete")):
            receiver = _receiver(signal, model, name)
            if receiver is not None:
                signal.disconnect(receiver, sender=model)
    _specs[model] = spec
    return spec


def spec_for(model) -> HistorySpec | None:
    return _specs.get(model)


def enabled_for(instance) -> bool:
    """simple-history's own switches: the setting and the instance flag."""
    return getattr(settings, "SIMPLE_HISTORY_ENABLED", True) and not hasattr(instance, "skip_history_when_saving")


def row(spec: HistorySpec, instance, history_type: str, *, user_pk, reason: str | None, now) -> dict:
    """The pieces of one history row; prepared for a connection by
    :func:`prepared`."""
    d = instance.__dict__
    date = d.get("_history_date") or now
    if hasattr(instance, "_history_user"):
        user = instance._history_user
        user_pk = getattr(user, "pk", None) if user is not None else None
    if hasattr(instance, "_change_reason"):
        reason = instance._change_reason
    values = [d[a] if a in d else getattr(instance, a) for _, a in spec.fields]
    return {"spec": spec, "values": values, "date": date, "type": history_type, "user": user_pk, "reason": reason}


#: the Python types each field type prepares as themselves (``get_db_prep_save`` returns the value
#: it is given, or on PostgreSQL an int wrapped for binding, the same in JSON), so :func:`prepared`
#: passes them on without the call when they travel as JSON; None prepares as None for every field
#: type of :data:`_JSON_SAFE`
_PREPARED_AS_IS = {
    **dict.fromkeys(("CharField", "TextField", "EmailField", "SlugField", "URLField", "FileField", "ImageField",
                     "FilePathField"), frozenset({str})),
    **dict.fromkeys(("AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
                     "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
                     "PositiveSmallIntegerField"), frozenset({int})),
    "BooleanField": frozenset({bool}),
}


def _as_is(field) -> frozenset:
    kind = field.get_internal_type()
    if kind in ("ForeignKey", "OneToOneField"):
        kind = field.target_field.get_internal_type()
    found = _PREPARED_AS_IS.get(kind, frozenset())
    return found | {type(None)} if kind in _JSON_SAFE or kind in _PREPARED_AS_IS else found


@functools.lru_cache(maxsize=256)
def _as_is_types(spec: HistorySpec) -> tuple:
    return tuple(_as_is(field) for field, _ in spec.fields)


def prepared(item: dict, connection, *, for_json: bool = False) -> list:
    """The row's parameters, each value prepared by its historical field; ``for_json``: for
    :func:`json_rows`, where a value its field would return unchanged is passed on as it is."""
    spec = item["spec"]
    if for_json:
        params = [value if type(value) in as_is else field.get_db_prep_save(value, connection)
                  for (field, _), as_is, value in zip(spec.fields, _as_is_types(spec), item["values"], strict=True)]
    else:
        params = [field.get_db_prep_save(value, connection)
                  for (field, _), value in zip(spec.fields, item["values"], strict=True)]
    reason = item["reason"]
    if isinstance(reason, str):
        reason = clean_text(reason, spec.reason_limit)
    params += [spec.date_field.get_db_prep_save(item["date"], connection), item["type"], item["user"], reason]
    return params


def meta_params(item: dict, connection) -> list:
    """The history columns after the tracked fields: date, type, user, reason."""
    spec = item["spec"]
    reason = item["reason"]
    if isinstance(reason, str):
        reason = clean_text(reason, spec.reason_limit)
    return [spec.date_field.get_db_prep_save(item["date"], connection), item["type"], item["user"], reason]


def copied_columns(spec: HistorySpec, source: str, quote) -> list[str]:
    """The tracked fields as columns of ``source``, the row just written
    (``RETURNING *`` of the UPDATE or INSERT of the same statement): the
    snapshot copies the stored values instead of sending them again."""
    columns = {f.attname: f.column for f in spec.model._meta.concrete_fields}
    return [f"{source}.{quote(columns[attname])}" for _, attname in spec.fields]


@functools.lru_cache(maxsize=256)
def copy_sql(spec: HistorySpec, source: str, quote, from_clause: str | None = None) -> str:
    """``INSERT`` of the snapshot rows of ``source`` (rows with the model's
    columns: the ``RETURNING *`` of the same statement's write, or the table
    itself), its four history columns (date, type, user, reason) left as
    placeholders. ``from_clause`` defaults to ``source``."""
    return (f"INSERT INTO {quote(spec.table)} ({', '.join(spec.columns(quote))}) "
            f"SELECT {', '.join(copied_columns(spec, source, quote))}, %s, %s, %s, %s FROM {from_clause or source}")


#: field types whose prepared value reads back exactly from its JSON text (str() for dates,
#: times and decimals) through the column type's input function
_JSON_SAFE = frozenset({
    "AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField", "SmallIntegerField",
    "PositiveIntegerField", "PositiveBigIntegerField", "PositiveSmallIntegerField", "ForeignKey", "OneToOneField",
    "CharField", "TextField", "EmailField", "SlugField", "URLField", "FileField", "ImageField", "FilePathField",
    "GenericIPAddressField", "UUIDField", "BooleanField", "DateField", "DateTimeField", "TimeField", "DecimalField",
})


def json_columns(spec: HistorySpec) -> list[str] | None:
    """The history table's column names when every tracked field can travel
    as JSON (:func:`json_rows`), else None."""
    cached = _json_columns.get(spec, False)
    if cached is False:
        safe = all(f.get_internal_type() in _JSON_SAFE for f, _ in spec.fields)
        cached = _json_columns[spec] = ([f.column for f, _ in spec.fields]
                                         + [spec.date_field.column, "history_type", spec.user_field.column,
                                            "history_change_reason"]) if safe else None
    return cached


_json_columns: dict = {}


def json_rows(items: list[dict], connection) -> tuple[str, list]:
    """PostgreSQL: the snapshot rows of one history table as ONE JSON parameter
    (``jsonb_populate_recordset``) instead of a parameter per column and row;
    ``items`` share one spec whose :func:`json_columns` is not None."""
    spec = items[0]["spec"]
    names = json_columns(spec)
    data = json.dumps([dict(zip(names, prepared(item, connection, for_json=True), strict=True)) for item in items],
                      default=str)
    return _json_rows_sql(spec, connection.ops.quote_name), [data]


@functools.lru_cache(maxsize=256)
def _json_rows_sql(spec: HistorySpec, quote) -> str:
    """The text of :func:`json_rows`' INSERT: the same for every statement of one history
    table, built once."""
    columns = ", ".join(quote(n) for n in json_columns(spec))
    return (f"INSERT INTO {quote(spec.table)} ({columns}) SELECT {columns} "
            f"FROM jsonb_populate_recordset(NULL::{quote(spec.table)}, %s::jsonb)")


def insert_sql(item: dict, connection) -> tuple[str, list]:
    spec = item["spec"]
    qn = connection.ops.quote_name
    columns = spec.columns(qn)
    sql = f"INSERT INTO {qn(spec.table)} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
    return sql, prepared(item, connection)


def write_with_simple_history(spec: HistorySpec, instance, history_type: str, using, *, user, reason) -> None:
    """simple-history's own path (receivers listen to its signals), told the
    same user and reason unless the instance names its own."""
    d = instance.__dict__
    hints = []
    if not hasattr(instance, "_history_user") and user is not None:
        d["_history_user"] = user
        hints.append("_history_user")
    if not hasattr(instance, "_change_reason") and reason:
        d["_change_reason"] = clean_text(reason, spec.reason_limit)
        hints.append("_change_reason")
    try:
        spec.records.create_historical_record(instance, history_type, using=using)
    finally:
        for name in hints:
            d.pop(name, None)
