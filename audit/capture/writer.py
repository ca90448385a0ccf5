"""The one write path into the four audit tables.

Every audit row, whatever produced it (automatic capture, the seed's
``log_*`` functions, login receivers, the middleware), is written here:
activity rows by :func:`write_activity`, events by
:func:`write_system_event`, and ``audit_trail`` rows with their
``update_history`` rows (and simple-history snapshot rows) by :func:`write`,
which :func:`write_change`, :func:`write_changes` and :func:`write_history`
call. Who/where/why come from :func:`audit.context.get_context` *when the
row is built* (so a DRF Bearer user authenticated inside the view is
recorded), and every text is sanitized (:mod:`audit.capture.text`) so that no
value can break the insert.

On PostgreSQL :func:`write` issues one statement (data-modifying CTEs): an
optional head (the captured row's own UPDATE or INSERT), values the
statement computes itself (:class:`Substitution`: a related row's code, the
new primary key), the snapshot rows, the trail rows and their field rows,
the rows travelling as JSON array parameters so that the statement's text
does not grow with them. Elsewhere two INSERTs inside one transaction. Call
it inside the transaction of the change it describes.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import secrets
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

from audit import conf
from audit.capture import compat
from audit.capture import history as history_rows
from audit.capture.text import TEXT_LIMIT, clean_json, clean_text, json_text
from audit.context import get_context
from audit.models import ActivityLog, AuditTrail, Severity, SystemEvent, UpdateHistory
from core.signals import system_event_committed

__all__ = ["clean_text", "json_text", "write", "write_activity", "write_change", "write_changes",
           "write_history", "write_system_event"]

_DERIVE = object()
SYSTEM = "system"
ANONYMOUS = "anonymous"


def _limit(model, field_name: str) -> int:
    return model._meta.get_field(field_name).max_length or TEXT_LIMIT


#: the columns' limits the request's and the actor's texts are cut to (the models declare them)
USER_ID_MAX = _limit(AuditTrail, "user_id")
USER_DISPLAY_MAX = _limit(AuditTrail, "user_display")
USER_AGENT_MAX = _limit(ActivityLog, "user_agent")
PATH_MAX = _limit(ActivityLog, "path")


# -- who and where ------------------------------------------------------------


def actor_code(actor: Any) -> str:
    if actor is None:
        return ""
    if isinstance(actor, str):
        return actor
    code = getattr(actor, "user_id", None) or getattr(actor, "pk", None)
    return str(code) if code is not None else ""


def current_user_id() -> str:
    """The actor's code, resolved now: the context's actor, else the
    request's authenticated user, else ``anonymous`` inside a request and
    ``system`` outside one."""
    ctx = get_context()
    if ctx.actor is not None:
        code = actor_code(ctx.actor)
        if code:
            return clean_text(code, USER_ID_MAX)
    if ctx.request is not None:
        user = getattr(ctx.request, "user", None)
        if user is not None and getattr(user, "is_authenticated", False):
            return clean_text(actor_code(user), USER_ID_MAX)
        return ANONYMOUS
    return SYSTEM


def _common(model) -> dict:
    ctx = get_context()
    return {
        "ip_address": ctx.ip_address or None,
        "request_id": clean_text(ctx.request_id, _limit(model, "request_id")),
    }


# -- the capture's cursor ------------------------------------------------------

#: psycopg prepares a statement once it has run this many times on a
#: connection. Django's default (None) disables preparing altogether; the
#: capture cursor sets 1 instead (prepare on the second use): a connection
#: used for one change only (no pooling, ``CONN_MAX_AGE = 0``) pays no extra
#: round trip for a PREPARE it would never reuse. Django's own cursors bind
#: on the client side, which psycopg never prepares, so they are unaffected.
PREPARE_FROM_USE = 1


def capture_cursor(connection):
    """A cursor for the capture's own statements.

    On PostgreSQL (unless ``AUDIT_PREPARED_STATEMENTS`` is off) a
    server-side-binding psycopg cursor whose statements are prepared from
    their second use on a connection: the capture statements have a fixed
    text per model (their values travel as parameters, their rows as one
    JSON array), so from then on the server skips parsing and planning them,
    which was about 60% of the one-statement update's server time (measured:
    550 µs unprepared, 217 µs prepared). A project that binds on the server
    itself (``OPTIONS["server_side_binding"]``) keeps its own
    ``prepare_threshold``. The cursor is wrapped by Django as any other, so
    execute wrappers, query logging and error translation see these
    statements too. Elsewhere: ``connection.cursor()``."""
    if connection.vendor != "postgresql" or _CaptureCursor is None or not conf.prepared_statements():
        return connection.cursor()
    # as connection.cursor() does: health check, connect, thread check, then
    # the same wrapper (with query logging when it is on)
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = connection.connection
    if raw.prepare_threshold is None and connection.settings_dict.get("OPTIONS", {}).get("server_side_binding") is not True:
        raw.prepare_threshold = PREPARE_FROM_USE
    with connection.wrap_database_errors:
        cursor = _CaptureCursor(raw)
    return connection.make_debug_cursor(cursor) if connection.queries_logged else connection.make_cursor(cursor)


_CaptureCursor = compat.capture_cursor_class()


# -- the three writers --------------------------------------------------------


def write_activity(*, activity: str, details: Any = "", user_id: str | None = None, status_code: int | None = None,
                   using: str | None = None, synchronous: bool = True, **overrides) -> ActivityLog:
    """Insert one ``activity_logs`` row (who, what, details, where).

    ``synchronous=False`` (the middleware's request rows, written after the
    response): on PostgreSQL, outside a transaction, the row commits without
    waiting for the WAL flush (``synchronous_commit`` off for that one
    statement's transaction); elsewhere it makes no difference."""
    ctx = get_context()
    row = ActivityLog(
        user_id=clean_text(user_id or current_user_id(), USER_ID_MAX),
        activity=clean_text(activity, _limit(ActivityLog, "activity")),
        details=clean_text(details),
        user_agent=clean_text(ctx.user_agent, _limit(ActivityLog, "user_agent")),
        method=clean_text(ctx.method, _limit(ActivityLog, "method")),
        path=clean_text(ctx.path, _limit(ActivityLog, "path")),
        status_code=status_code,
        **_common(ActivityLog),
    )
    for name, value in overrides.items():
        field = ActivityLog._meta.get_field(name)
        if isinstance(value, str):
            value = clean_text(value, field.max_length or TEXT_LIMIT)
        setattr(row, name, value)
    using = using or router.db_for_write(ActivityLog)
    connection = connections[using]
    if not synchronous and connection.vendor == "postgresql" and not connection.in_atomic_block:
        _insert_async_commit(connection, row)
        row._state.adding, row._state.db = False, using
    else:
        row.save(using=using, force_insert=True)
    return row


_ACTIVITY_COLUMNS = [f for f in ActivityLog._meta.concrete_fields if not f.primary_key]


def _insert_async_commit(connection, row) -> None:
    """One autocommit INSERT whose commit does not wait for the WAL flush."""
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in _ACTIVITY_COLUMNS)
    values = ", ".join(["%s"] * len(_ACTIVITY_COLUMNS))
    # set_config() in RETURNING runs inside the statement's own transaction,
    # before its commit: that commit alone is asynchronous
    sql = (f"INSERT INTO {qn(ActivityLog._meta.db_table)} ({columns}) VALUES ({values}) "
           f"RETURNING id, set_config('synchronous_commit', 'off', true)")
    params = [f.get_db_prep_save(f.pre_save(row, True), connection) for f in _ACTIVITY_COLUMNS]
    with capture_cursor(connection) as cursor:
        cursor.execute(sql, params)
        row.pk = cursor.fetchone()[0]


def write_system_event(*, event_type: str, entity_type: str = "", entity_id: Any = "", event_data: Any = "",
                       severity: str = "info", using: str | None = None) -> SystemEvent:
    """Insert one ``system_events`` row. ``event_data`` may be a dict (stored
    as JSON text) or text."""
    if severity not in Severity.values:
        raise ValueError(f"unknown severity {severity!r}; expected one of {', '.join(Severity.values)}")
    row = SystemEvent(
        event_type=clean_text(event_type, _limit(SystemEvent, "event_type")),
        entity_type=clean_text(entity_type, _limit(SystemEvent, "entity_type")),
        entity_id=clean_text(entity_id, _limit(SystemEvent, "entity_id")),
        event_data=json_text(event_data) or "",
        severity=severity,
        request_id=_common(SystemEvent)["request_id"],
    )
    using = using or router.db_for_write(SystemEvent)
    row.save(using=using, force_insert=True)
    # processing starts once the row is visible to a worker; a lost hook is caught by the sweep
    transaction.on_commit(partial(system_event_committed.send, sender=SystemEvent, event_id=row.pk),
                          using=using, robust=True)
    return row


# -- audit_trail rows ------------------------------------------------------------


_TRAIL_COLUMNS = [f for f in AuditTrail._meta.concrete_fields if not f.primary_key]
_TRAIL_ATTNAMES = tuple(f.attname for f in _TRAIL_COLUMNS)
_TRAIL_DEFAULTS = {f.attname: f.get_default() for f in _TRAIL_COLUMNS}
_LIMITS = {name: _limit(AuditTrail, name) for name in ("action_type", "entity_type", "entity_id", "request_id")}
_FIELD_LIMITS = (_limit(UpdateHistory, "table_name"), _limit(UpdateHistory, "field_name"))
#: trail columns whose text a Substitution may appear in (as JSON text for old/new/changes/displays)
_SUBSTITUTED = {"entity_id": "c", "old_value": "j", "new_value": "j", "changes": "j", "displays": "j"}
#: trail columns that travel as JSON values (not text) in the rows parameter
_JSON_ATTNAMES = frozenset(f.attname for f in _TRAIL_COLUMNS if f.get_internal_type() == "JSONField")
_MAX_PARAMS = 30_000


@dataclass(frozen=True, slots=True)
class Row:
    """One ``audit_trail`` row (column values by attname) and its field rows
    ``(table, field, old text, new text)``; with ``entity_ids``, that row and its field rows once
    for each of these entities (its ``entity_id`` being each in turn): the same change to many
    rows, built once."""

    trail: dict
    fields: list
    entity_ids: tuple[str, ...] | None = None
    #: ``(index of a DELETE of the statement, the row's key as text)``: the row is written only
    #: if that DELETE removed it (a row another transaction deleted first records nothing)
    gate: tuple[int, str] | None = None

    def keys(self) -> list[tuple[str, str]]:
        """The ``(entity type, entity id)`` of each trail row this row stands for."""
        entity_type = self.trail["entity_type"]
        return [(entity_type, e) for e in (self.entity_ids or (self.trail["entity_id"],))]

    def expanded(self) -> list[Row]:
        """One plain row per entity (the databases whose statements take no grouped rows)."""
        if self.entity_ids is None:
            return [self]
        return [Row({**self.trail, "entity_id": e}, self.fields) for e in self.entity_ids]


@dataclass(frozen=True, slots=True)
class Substitution:
    """A value only the statement knows (a related row's code, the new
    primary key): ``token`` stands for it in the rows' values and the
    statement puts the text of ``sql`` (with ``params``; ``fallback`` when it
    finds nothing) in its place: as it is in text columns, and inside JSON
    (where the token is a JSON string) as a JSON string, or as a bare JSON
    number with ``number=True``. PostgreSQL only."""

    token: str
    sql: str
    params: tuple = ()
    fallback: str | None = None
    number: bool = False


@dataclass(frozen=True, slots=True)
class Delete:
    """A ``DELETE`` of the statement (a captured delete and its cascade): the rows of
    ``table`` whose ``pk_column`` (of type ``pk_type``) is among ``pks``."""

    table: str
    pk_column: str
    pk_type: str
    pks: list


@dataclass(frozen=True, slots=True)
class Head:
    """The captured row's own write at the head of the statement: ``sql`` an
    UPDATE (``name="u"``) or INSERT (``name="i"``) ending in ``RETURNING *``."""

    name: str
    sql: str
    params: list
    pk_column: str = "id"


_TOKEN_SECRET = secrets.token_hex(8)


_EMPTY = (None, "", [], {})


@functools.lru_cache(maxsize=64)
def token(n: int) -> str:
    """The n-th substitution token of a statement (letters, digits and
    underscores only, so it reads the same inside JSON at any depth)."""
    return f"__audit_{_TOKEN_SECRET}_{n}__"


def actor_display(code: str) -> str:
    """``"PE001 · Priya Eriksen"`` for the actor whose code is ``code``, from the user object the
    context or the request already holds (no query); ``""`` when none is at hand (then the pages
    look the name up when they show the row)."""
    ctx = get_context()
    request_user = getattr(ctx.request, "user", None) if ctx.request is not None else None
    for candidate in (ctx.actor, request_user):
        if candidate is None or isinstance(candidate, str) or not getattr(candidate, "is_authenticated", False):
            continue
        if actor_code(candidate) == code:
            name = str(getattr(candidate, "full_name", "") or "").strip()
            return clean_text(f"{code} · {name}" if name else code, USER_DISPLAY_MAX)
    return ""


def row_context(user_id=None, reason=None) -> dict:
    """The columns every row written now shares (who, as shown, why, from where), from the
    audit context: computed once for the many rows of a bulk path (:func:`write_changes`)."""
    ctx = get_context()
    who = clean_text(user_id or current_user_id(), USER_ID_MAX)
    return {
        "user_id": who,
        "user_display": actor_display(who),
        "change_reason": clean_text(ctx.reason if reason is None else reason),
        "ip_address": ctx.ip_address or None,
        "request_id": clean_text(ctx.request_id, _LIMITS["request_id"]),
    }


def build_row(*, action_type, entity_type, entity_id, changes, table_name, status="completed", error_message="",
              old_value=_DERIVE, new_value=_DERIVE, user_id=None, reason=None, now=None, context=None,
              entity_ids=None, **columns) -> Row:
    """The rows of one change: ``changes`` is ``{"field": {"old": ..., "new":
    ...}}`` with JSON-safe values; ``old_value``/``new_value`` (dicts or JSON
    text) default to its halves. A failed attempt (``status="failed"``) has
    no field rows. Other ``columns`` of ``audit_trail`` may be given by name.
    ``context``: :func:`row_context` of this ``user_id`` and ``reason``, when the caller
    has it already. ``entity_ids``: the same change happened to each of these entities
    (:attr:`Row.entity_ids`)."""
    shared = context if context is not None else row_context(user_id, reason)
    changes = clean_json(dict(changes or {}))
    if old_value is _DERIVE:
        old_value = {k: v.get("old") for k, v in changes.items()} if changes else None
    if new_value is _DERIVE:
        new_value = {k: v.get("new") for k, v in changes.items()} if changes else None
    entity_id = clean_text(entity_id, _LIMITS["entity_id"])
    trail = {
        **_TRAIL_DEFAULTS,
        **columns,
        "timestamp": now or timezone.now(),
        "user_id": shared["user_id"],
        "user_display": columns.get("user_display") or shared["user_display"],
        "action_type": clean_text(action_type, _LIMITS["action_type"]),
        "entity_type": clean_text(entity_type, _LIMITS["entity_type"]),
        "entity_id": entity_id,
        "old_value": json_text(old_value),
        "new_value": json_text(new_value),
        "changes": changes,
        "displays": clean_json(dict(columns.get("displays") or {})),
        "status": status,
        "error_message": clean_text(error_message),
        "change_reason": shared["change_reason"],
        "ip_address": shared["ip_address"],
        "request_id": shared["request_id"],
    }
    fields = []
    if status == "completed" and changes:
        table = clean_text(table_name, _FIELD_LIMITS[0])
        # a field empty before and after (a create's unset fields, a delete's) changed nothing: no field row
        # for it; the trail row's old/new values still hold the whole row
        fields = [(table, clean_text(name, _FIELD_LIMITS[1]), json_text(diff.get("old")), json_text(diff.get("new")))
                  for name, diff in changes.items()
                  if diff.get("old") not in _EMPTY or diff.get("new") not in _EMPTY]
    if entity_ids is not None:
        return Row(trail, fields, tuple(clean_text(e, _LIMITS["entity_id"]) for e in entity_ids))
    return Row(trail, fields)


def write_change(*, using: str | None = None, history: dict | None = None, **change) -> AuditTrail:
    """Write one change (the keyword arguments of :func:`build_row`) and,
    with ``history`` (from :func:`audit.capture.history.row`), the
    simple-history snapshot row of the same change; returns the trail row."""
    using = using or router.db_for_write(AuditTrail)
    row = build_row(**change)
    ids = write(using, [row], histories=[history] if history is not None else ())
    trail = AuditTrail(**row.trail)
    trail.pk = ids[0] if ids else None
    trail._state.adding, trail._state.db = False, using
    return trail


def write_history(history: dict, *, using: str) -> None:
    """Only a simple-history snapshot row (a save that changed nothing)."""
    write(using, [], histories=[history])


def write_changes(items: list[dict], *, using: str | None = None, extra=()) -> int:
    """Many changes at once (the bulk paths): each item takes the keyword
    arguments of :func:`build_row`; ``extra`` are ``(sql, params)`` INSERTs
    of the same statement (the snapshot rows of the same rows). Returns the
    number of trail rows."""
    if not items:
        return 0
    using = using or router.db_for_write(AuditTrail)
    now = timezone.now()
    shared = row_context()
    rows = [build_row(**{"now": now, **item}, context=shared if "user_id" not in item and "reason" not in item
                      else None) for item in items]
    write(using, rows, extra=extra)
    return sum(len(row.keys()) for row in rows)


def write(using: str, rows: list[Row], *, head: Head | None = None, histories=(), extra=(), subs=(),
          deletes=()):
    """The one writer of trail, field and snapshot rows.

    ``histories``: snapshot rows (:func:`audit.capture.history.row`), copied
    from the head's row when there is a head. ``extra``: more ``(sql,
    params)`` INSERTs of the same statement. ``head``, ``subs`` and
    ``deletes`` (:class:`Delete`): PostgreSQL only. Returns the trail rows'
    ids (no head), the number of rows the head UPDATE changed, the head
    INSERT's returned row, or with ``deletes`` the number of rows each
    deleted."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        # the head and the deletes run in the first statement, which gives the answer; rows that
        # need more statements follow, and only without a head or deletes are their ids the answer
        result = ids = removed = None
        batches = list(_batches(rows)) or [[]]
        for i, batch in enumerate(batches):
            first = i == 0
            if removed is not None:  # after the DELETEs: only the rows they removed
                batch = [row for row in batch if row.gate is None or f"{row.gate[0]}:{row.gate[1]}" in removed]
                if not batch:
                    continue
            sql, params, kind = _pg_statement(connection, batch, head=head if first else None,
                                              histories=histories if first else (), extra=extra if first else (),
                                              subs=subs, deletes=deletes if first else ())
            if not sql:
                continue
            with capture_cursor(connection) as cursor:
                cursor.execute(sql, params)
                if kind == "ids":
                    ids = (ids or []) + [r[0] for r in cursor.fetchall()]
                elif kind == "count":
                    result = cursor.fetchone()[0]
                elif kind == "row":
                    result = cursor.fetchone()
                elif kind == "counts":
                    *result, keys = cursor.fetchone()
                    removed = frozenset(keys or ())
        return ids if head is None and not deletes else result
    if head is not None or subs or deletes:
        raise ValueError("a head statement, deletes and substitutions are PostgreSQL-only")
    if any(row.entity_ids is not None for row in rows):
        rows = [plain for row in rows for plain in row.expanded()]
    with transaction.atomic(using=using, savepoint=False):
        for history in histories:
            _execute(connection, *history_rows.insert_sql(history, connection))
        for statement in extra:
            _execute(connection, *statement)
        if rows and json_rows_supported(connection):
            return [pk for batch in _batches(rows) for pk in _insert_sqlite(connection, batch)]
        if rows:
            return _insert_rows(using, rows)
    return []


def _execute(connection, sql, params) -> None:
    with capture_cursor(connection) as cursor:
        cursor.execute(sql, params)


def json_rows_supported(connection) -> bool:
    """SQLite with JSON functions and RETURNING (3.35+): rows can be sent as
    one JSON parameter (``json_each``) as on PostgreSQL."""
    return (connection.vendor == "sqlite" and connection.features.supports_json_field
            and connection.features.can_return_columns_from_insert)


def _batches(rows):
    """Split into statements: (entity type, entity id) unique within one (the
    field rows are joined to their trail row by them) and bounded sizes."""
    batch, seen, size = [], set(), 0
    for row in rows:
        keys = row.keys()
        # a row for many entities travels once, with its ids (once more with each field row)
        cost = len(_TRAIL_COLUMNS) + 4 * len(row.fields) + (len(keys) - 1) * (1 + len(row.fields))
        if batch and (not seen.isdisjoint(keys) or size + cost > _MAX_PARAMS):
            yield batch
            batch, seen, size = [], set(), 0
        batch.append(row)
        seen.update(keys)
        size += cost
    if batch:
        yield batch


def _json_value(value):
    """A trail column's value inside the JSON rows parameter: text or null,
    read back with ``->>`` and cast to the column's type."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


_LENGTH = re.compile(r"^(varchar|char|character varying|character)\(\d+\)$")


_column_types: dict[tuple[str, str], str] = {}


def _column_type(field, connection) -> str:
    """The column's type for a cast from text; without a length modifier, so
    that an oversized value fails as an INSERT would instead of being cut.
    (Trail columns only: cached per database vendor and column.)"""
    key = (connection.vendor, field.column)
    cast = _column_types.get(key)
    if cast is None:
        cast = _column_types[key] = _LENGTH.sub(r"\1", field.cast_db_type(connection) or "text")
    return cast


def cast_type(field, connection) -> str:
    """A column's type for a cast, without a length modifier (any column)."""
    return _LENGTH.sub(r"\1", field.cast_db_type(connection) or "text")


_trail_selects: dict[tuple[str, int, bool], str] = {}


_trail_column_lists: dict[str, str] = {}


def _trail_columns(connection) -> str:
    """The trail INSERT's column list, built once per database vendor."""
    found = _trail_column_lists.get(connection.vendor)
    if found is None:
        qn = connection.ops.quote_name
        found = _trail_column_lists[connection.vendor] = ", ".join(qn(f.column) for f in _TRAIL_COLUMNS)
    return found


@functools.lru_cache(maxsize=512)
def _subbed(expr: str, form: str, n: int) -> str:
    """``expr`` with the tokens of a statement's ``n`` substitutions replaced: in text (``c``) or
    as a JSON string token (``j``, the token with its quotes). Tokens are numbered by position
    (:func:`token`), so the text depends on ``n`` only and is built once."""
    for j in range(n):
        expr = (f"replace({expr}, '{token(j)}', k.c{j})" if form == "c"
                else f"replace({expr}, '\"{token(j)}\"', k.j{j})")
    return expr


def _trail_select(connection, n: int = 0, grouped: bool = False) -> str:
    """The trail INSERT's SELECT list from the JSON rows ``r``: the same text for every statement
    with ``n`` substitutions (their tokens replaced in the columns they may appear in), built once
    per database vendor. ``grouped``: the entity id is each of the row's ids (``e.id``,
    :attr:`Row.entity_ids`) instead of its own."""
    key = (connection.vendor, n, grouped)
    found = _trail_selects.get(key)
    if found is None:
        selected = []
        for i, f in enumerate(_TRAIL_COLUMNS):
            form = _SUBSTITUTED.get(f.attname) if n else None
            if f.attname in _JSON_ATTNAMES:
                selected.append(f"{_subbed(f'(r->{i})::text', form, n)}::jsonb" if form else f"r->{i}")
            elif grouped and f.attname == "entity_id":
                selected.append(f"(e.id)::{_column_type(f, connection)}")
            else:
                value = _subbed(f"r->>{i}", form, n) if form else f"r->>{i}"
                selected.append(f"({value})::{_column_type(f, connection)}")
        found = _trail_selects[key] = ", ".join(selected)
    return found


def _pg_statement(connection, rows, *, head, histories, extra, subs, deletes=()) -> tuple[str, list, str]:
    """One statement: ``(sql, params, what it returns)``."""
    qn = connection.ops.quote_name
    ctes, params = [], []
    for i, d in enumerate(deletes):
        ctes.append(f"d{i} AS (DELETE FROM {qn(d.table)} WHERE {qn(d.pk_column)} = ANY(%s::{d.pk_type}[]) "
                    f"RETURNING {qn(d.pk_column)}::text AS k)")
        params.append(list(d.pks))
    if deletes:  # the keys the DELETEs removed, by DELETE: what the audit rows may be written for
        ctes.append(f"dk AS ({' UNION ALL '.join(f'SELECT {i} AS i, k FROM d{i}' for i in range(len(deletes)))})")
    if head is not None:
        ctes.append(f"{head.name} AS ({head.sql})")
        params.extend(head.params)
    if subs:
        if any(s.token != token(j) for j, s in enumerate(subs)):
            raise ValueError("a statement's substitutions are numbered by position: writer.token(0), token(1), ...")
        looked_up = []
        for j, s in enumerate(subs):
            looked_up.append(f"({s.sql})::text AS c{j}" if s.fallback is None
                             else f"COALESCE(({s.sql})::text, %s) AS c{j}")
            params.extend(s.params if s.fallback is None else (*s.params, s.fallback))
        ctes.append(f"k0 AS (SELECT {', '.join(looked_up)})")
        forms = ", ".join(f"c{j}, {f'c{j}' if s.number else f'to_json(c{j})::text'} AS j{j}"
                          for j, s in enumerate(subs))
        ctes.append(f"k AS (SELECT {forms} FROM k0)")

    def subbed(expr: str, form: str) -> str:
        return _subbed(expr, form, len(subs))

    if head is not None:
        for i, history in enumerate(histories):
            ctes.append(f"h{i} AS ({history_rows.copy_sql(history['spec'], head.name, qn)})")
            params.extend(history_rows.meta_params(history, connection))
    else:  # one INSERT per history table, its rows as one JSON parameter where they can travel so
        groups: dict = {}
        for history in histories:
            groups.setdefault(history["spec"] if history_rows.json_columns(history["spec"]) else id(history),
                              []).append(history)
        deleted = {d.table: i for i, d in enumerate(deletes)}
        for i, items in enumerate(groups.values()):
            spec = items[0]["spec"]
            if history_rows.json_columns(spec):
                sql, hparams = history_rows.json_rows(items, connection)
                model_meta = spec.model._meta
                if model_meta.db_table in deleted:  # a deleted row's snapshot only if its DELETE removed it
                    sql += (f" AS s WHERE s.{qn(model_meta.pk.column)}::text IN "
                            f"(SELECT k FROM dk WHERE i = {deleted[model_meta.db_table]})")
            else:  # a column type that does not travel as JSON: one row, as its own VALUES (not gated)
                sql, hparams = history_rows.insert_sql(items[0], connection)
            ctes.append(f"h{i} AS ({sql})")
            params.extend(hparams)
    for i, (sql, xparams) in enumerate(extra):
        ctes.append(f"x{i} AS ({sql})")
        params.extend(xparams)
    joined = " CROSS JOIN k" if subs else ""
    if rows:
        # rows that stand for many entities (Row.entity_ids): each JSON row carries its ids last, and the
        # trail and field rows are written once per id (no substitutions in such a statement)
        grouped = any(row.entity_ids is not None for row in rows)
        if grouped and subs:
            raise ValueError("rows for many entities take no substitutions")
        gated = deletes and any(row.gate is not None for row in rows)
        if grouped and gated:
            raise ValueError("rows for many entities are not deletes")
        columns, selected = _trail_columns(connection), _trail_select(connection, len(subs), grouped)
        gate = " WHERE EXISTS (SELECT 1 FROM u)" if head is not None and head.name == "u" else ""
        values = [[t[a] if a in _JSON_ATTNAMES or t[a] is None or type(t[a]) is str else _json_value(t[a])
                   for a in _TRAIL_ATTNAMES] for t in (row.trail for row in rows)]
        source = "jsonb_array_elements(%s::jsonb) AS r"
        if gated:  # each row's gate last: written only if its DELETE removed its row
            n = len(_TRAIL_ATTNAMES)
            for value, row in zip(values, rows, strict=True):
                value.append(None if row.gate is None else list(row.gate))
            gate = f" WHERE r->>{n} IS NULL OR ((r->{n}->>0)::int, r->{n}->>1) IN (SELECT i, k FROM dk)"
        if grouped:
            for value, row in zip(values, rows, strict=True):
                value.append(row.entity_ids or [row.trail["entity_id"]])
            source += f" CROSS JOIN LATERAL jsonb_array_elements_text(r->{len(_TRAIL_ATTNAMES)}) AS e(id)"
        params.append(json.dumps(values))
        ctes.append(f"t AS (INSERT INTO {qn(AuditTrail._meta.db_table)} ({columns}) "
                    f"SELECT {selected} FROM {source}{joined}{gate} "
                    f"RETURNING id, entity_type, entity_id, timestamp, user_id, change_reason)")
        if grouped:
            fields = [(row.trail["entity_type"], row.entity_ids or [row.trail["entity_id"]], *f)
                      for row in rows for f in row.fields]
            # each (entity id, field) pair as plain columns, taken out below the join (OFFSET 0 keeps
            # the planner from pulling the subquery up): joined as JSON elements, every pair would
            # carry its element's whole list of ids through the join, and its sort would spill to disk
            source = ("(SELECT v->>0 AS entity_type, e.id, v->>2 AS table_name, v->>3 AS field_name, "
                      "v->>4 AS old_value, v->>5 AS new_value "
                      "FROM jsonb_array_elements(%s::jsonb) AS v "
                      "CROSS JOIN LATERAL jsonb_array_elements_text(v->1) AS e(id) OFFSET 0) AS v")
            key, columns_of = "v.id", ("v.entity_type", "v.table_name", "v.field_name", "v.old_value", "v.new_value")
        else:
            fields = [(row.trail["entity_type"], row.trail["entity_id"], *f) for row in rows for f in row.fields]
            source, key = "jsonb_array_elements(%s::jsonb) AS v", subbed("v->>1", "c") if subs else "v->>1"
            columns_of = ("v->>0", "v->>2", "v->>3", *(subbed(f"v->>{n}", "c") if subs else f"v->>{n}"
                                                       for n in (4, 5)))
        if fields:
            entity_type, table_name, field_name, old, new = columns_of
            params.append(json.dumps(fields))
            ctes.append(
                f"f AS (INSERT INTO {qn(UpdateHistory._meta.db_table)} (timestamp, table_name, record_id, "
                f"field_name, old_value, new_value, user_id, change_reason, audit_id) "
                f"SELECT t.timestamp, {table_name}, t.entity_id, {field_name}, {old}, {new}, t.user_id, "
                f"t.change_reason, t.id "
                f"FROM {source}{joined} "
                f"JOIN t ON {entity_type} = t.entity_type AND {key} = t.entity_id)")
    if deletes:
        counts = ", ".join(f"(SELECT count(*) FROM d{i})" for i in range(len(deletes)))
        final, kind = f"SELECT {counts}, (SELECT array_agg(i || ':' || k) FROM dk)", "counts"
    elif head is not None and head.name == "u":
        final, kind = "SELECT (SELECT count(*) FROM u)", "count"
    elif head is not None:
        final, kind = f"SELECT {qn(head.pk_column)} FROM i", "row"
    elif rows:
        final, kind = "SELECT id FROM t", "ids"
    elif ctes:
        final, kind = "SELECT 1", "none"
    else:
        return "", [], "none"
    return f"WITH {', '.join(ctes)} {final}", params, kind


def _insert_sqlite(connection, rows) -> list:
    """SQLite: the trail rows from one JSON parameter (``INSERT ... SELECT
    FROM json_each ... RETURNING``), then their field rows the same way:
    two statements whatever the number of rows, no model instance per row."""
    qn = connection.ops.quote_name
    adapt = connection.ops.adapt_datetimefield_value

    def value(v):
        if isinstance(v, datetime.datetime):
            return adapt(v)
        return v if v is None or isinstance(v, (str, dict)) else str(v)

    def selected(n):
        return ", ".join(f"json_extract(r.value, '$[{i}]')" for i in range(n))

    columns = ", ".join(qn(f.column) for f in _TRAIL_COLUMNS)
    trails = json.dumps([[value(row.trail[f.attname]) for f in _TRAIL_COLUMNS] for row in rows])
    with capture_cursor(connection) as cursor:
        cursor.execute(f"INSERT INTO {qn(AuditTrail._meta.db_table)} ({columns}) SELECT {selected(len(_TRAIL_COLUMNS))} "
                       f"FROM json_each(%s) AS r WHERE true RETURNING id, entity_type, entity_id", [trails])
        ids = {(entity_type, entity_id): pk for pk, entity_type, entity_id in cursor.fetchall()}
        fields = []
        for row in rows:
            trail = row.trail
            pk = ids.get((trail["entity_type"], trail["entity_id"]))
            when = adapt(trail["timestamp"])
            fields.extend([when, table, trail["entity_id"], name, old, new, trail["user_id"], trail["change_reason"], pk]
                          for table, name, old, new in row.fields)
        if fields:
            cursor.execute(
                f"INSERT INTO {qn(UpdateHistory._meta.db_table)} (timestamp, table_name, record_id, field_name, "
                f"old_value, new_value, user_id, change_reason, audit_id) "
                f"SELECT {selected(9)} "
                f"FROM json_each(%s) AS r", [json.dumps(fields)])
    return [ids.get((row.trail["entity_type"], row.trail["entity_id"])) for row in rows]


def _insert_rows(using, rows) -> list:
    """Any other database: model instances through ``bulk_create``."""
    trails = AuditTrail.objects.using(using).bulk_create([AuditTrail(**row.trail) for row in rows])
    history = [
        UpdateHistory(timestamp=trail.timestamp, table_name=table, record_id=trail.entity_id,
                      field_name=name, old_value=old, new_value=new, user_id=trail.user_id,
                      change_reason=trail.change_reason, audit_id=trail.pk)
        for trail, row in zip(trails, rows, strict=True) for table, name, old, new in row.fields
    ]
    if history:
        UpdateHistory.objects.using(using).bulk_create(history, batch_size=500)
    return [trail.pk for trail in trails]
