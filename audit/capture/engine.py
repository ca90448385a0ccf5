"""The capture engine: from one instance's values to the rows of its
change, in one place, handed to the one writer (:func:`audit.capture.writer.write`).

How a save is captured (entry points in :mod:`audit.capture.receivers` and
:mod:`audit.capture.querysets`):

1. ``post_init`` stores the loaded concrete values as the instance's
   snapshot (:mod:`audit.capture.state`; no extra SELECT later);
2. ``pre_save`` tops the snapshot up with one SELECT only when it cannot be
   trusted (an instance not loaded from the database, e.g. built by
   simple-history's revert, or fields that were deferred);
3. on PostgreSQL :func:`update_in_one_statement` / :func:`insert_in_one_statement`
   turn the save's own UPDATE or INSERT into the head of the one statement
   that also writes the snapshot and audit rows; elsewhere (or when that is
   not possible) ``post_save`` calls :func:`record_change` inside the save's
   transaction.

A changed foreign key is recorded as the related entity's code (``PE001``):
from the related object cached on the instance, else, on PostgreSQL, looked
up by the statement itself (a :class:`audit.capture.writer.Substitution`),
else one query; its display text ("PE001 · Priya Eriksen", ``audit_trail.displays``)
is read in the same step. Fields with ``auto_now`` (``updated_at``) are recorded on
create but never count as a change on update, so a save that changes
nothing writes no audit row.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from django.db import connections, models
from django.utils import timezone

from audit.capture import compat, history, registry, state, writer
from audit.capture.diff import CREATE, DELETE, Diff, FieldChange, classify, diff_values
from audit.context import get_context


def capture_enabled() -> bool:
    return get_context().enabled


@dataclass
class ModelSpec:
    """What capture needs to know about one tracked model, computed once."""

    model: type[models.Model]
    config: registry.TrackedModel

    @cached_property
    def fields(self) -> tuple:
        return tuple(f for f in self.model._meta.concrete_fields if f.name not in self.config.exclude)

    @cached_property
    def attnames(self) -> tuple[str, ...]:
        return tuple(f.attname for f in self.fields)

    @cached_property
    def name_of(self) -> dict[str, str]:
        return {f.attname: f.name for f in self.fields}

    @cached_property
    def fk_fields(self) -> dict[str, models.Field]:
        return {f.name: f for f in self.fields if f.is_relation and (f.many_to_one or f.one_to_one)}

    @cached_property
    def auto_now(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields if getattr(f, "auto_now", False))

    @cached_property
    def normalize(self) -> dict:
        return {f.name: f.to_python for f in self.fields if not f.is_relation}

    @cached_property
    def table_name(self) -> str:
        return self.model._meta.db_table

    def attnames_for(self, update_fields) -> tuple[str, ...]:
        if update_fields is None:
            return self.attnames
        wanted = set(update_fields)
        return tuple(f.attname for f in self.fields if f.name in wanted or f.attname in wanted)


_specs: dict[type, ModelSpec | None] = {}


def spec_for(model) -> ModelSpec | None:
    try:
        return _specs[model]
    except KeyError:
        config = registry.get_config(model)
        spec = _specs[model] = ModelSpec(model, config) if config else None
        return spec


def forget_specs() -> None:
    _specs.clear()


# -- snapshots ----------------------------------------------------------------


def take_snapshot(instance, spec: ModelSpec) -> None:
    d = instance.__dict__
    d[state.KEY] = state.CaptureState({a: d[a] for a in spec.attnames if a in d})


def current_values(instance, attnames) -> dict[str, Any]:
    d = instance.__dict__
    return {a: d[a] for a in attnames if a in d}


def read_back_expressions(instance, using) -> None:
    """After a save, a field assigned an expression (``F("quantity") + 1``) still holds the
    expression, not the value the database computed: read the stored values into the instance,
    as ``refresh_from_db`` would, so the change and the snapshot record them (and a second save
    does not apply the expression again)."""
    d = instance.__dict__
    attnames = [f.attname for f in instance._meta.concrete_fields if hasattr(d.get(f.attname), "resolve_expression")]
    if attnames:
        d.update(type(instance)._base_manager.db_manager(using).filter(pk=instance.pk).values(*attnames).get())


def ensure_trusted_snapshot(instance, spec: ModelSpec, update_fields=None) -> None:
    """Before an update, make sure the snapshot holds the stored values of
    the fields about to be saved; one SELECT only when it does not."""
    if instance.pk is None:
        return
    snapshot = state.snapshot(instance)
    loaded = not instance._state.adding and instance._state.db is not None
    attnames = spec.attnames_for(update_fields)
    if loaded and snapshot is not None:
        missing = [a for a in attnames if a not in snapshot and a in instance.__dict__]
    else:
        missing = list(attnames)
        snapshot = {}
    if not missing:
        return
    manager = instance.__class__._base_manager.using(instance._state.db or "default")
    row = manager.filter(pk=instance.pk).values(*missing).first()
    if row is None:
        state.of(instance).snapshot = snapshot if loaded else None
        return
    state.of(instance).snapshot = {**snapshot, **row}


# -- building one change -----------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One change, as :func:`audit.capture.writer.build_row` takes it."""

    action_type: str
    entity_type: str
    entity_id: str
    diff: Diff
    table_name: str
    #: the related entities as named now: ``{field: {"old": text, "new": text}}`` (audit_trail.displays)
    displays: dict | None = None
    #: the entities this same change happened to, ``entity_id`` among them (a ``QuerySet.update()`` that
    #: set many rows from the same old values to the same new ones): one trail row each, built once
    entity_ids: tuple[str, ...] | None = None

    def as_writer_kwargs(self) -> dict:
        kwargs = {
            "action_type": self.action_type,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "changes": self.diff.as_dict(),
            "table_name": self.table_name,
            "old_value": self.diff.old_values(),
            "new_value": self.diff.new_values(),
            "displays": self.displays or {},
        }
        if self.entity_ids is not None:
            kwargs["entity_ids"] = self.entity_ids
        return kwargs


def by_name(spec: ModelSpec, values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    name_of = spec.name_of
    return {name_of[a]: v for a, v in values.items() if a in name_of}


class Lookups:
    """The related codes one statement looks up itself (PostgreSQL), one
    :class:`audit.capture.writer.Substitution` per related row."""

    def __init__(self, connection, start=()):
        self.connection = connection
        self.subs: list = list(start)
        self._tokens: dict = {}

    def token_for(self, related, attr: str, pk) -> str:
        key = (related, pk)
        found = self._tokens.get(key)
        if found is None:
            qn = self.connection.ops.quote_name
            meta = related._meta
            found = self._tokens[key] = writer.token(len(self.subs))
            self.subs.append(writer.Substitution(
                found, f"SELECT {qn(meta.get_field(attr).column)} FROM {qn(meta.db_table)} "
                       f"WHERE {qn(meta.pk.column)} = %s", (pk,), fallback=str(pk)))
        return found

    def display_token_for(self, related, attr: str, shown: str, pk) -> str:
        """The related row's display text ("PE001 · Priya Eriksen", as :func:`display_text`
        builds it), read by the same statement as its code; ``""`` when the row is gone."""
        key = (related, pk, "display")
        found = self._tokens.get(key)
        if found is None:
            qn = self.connection.ops.quote_name
            meta = related._meta
            code, name = qn(meta.get_field(attr).column), qn(meta.get_field(shown).column)
            found = self._tokens[key] = writer.token(len(self.subs))
            self.subs.append(writer.Substitution(
                found, f"SELECT CASE WHEN COALESCE(btrim({name}), '') = '' THEN {code}::text "
                       f"ELSE {code}::text || ' · ' || btrim({name}) END FROM {qn(meta.db_table)} "
                       f"WHERE {qn(meta.pk.column)} = %s", (pk,), fallback=""))
        return found


def build_change(instance, spec: ModelSpec, *, old: dict | None, new: dict | None, action: str | None = None,
                 code_cache: dict | None = None, lookups: Lookups | None = None) -> Change | None:
    """Diff attname-keyed ``old``/``new`` values of ``instance``; ``None``
    when an update changed nothing. With ``lookups`` (PostgreSQL) a related
    code not known here is left to the statement instead of queried."""
    diff = diff_values(by_name(spec, old), by_name(spec, new), masked=spec.config.mask,
                       excluded=spec.config.exclude, ignored=spec.auto_now, normalize=spec.normalize)
    if not diff:
        return None
    displays: dict = {}
    diff = resolve_fk_codes(instance, spec, diff, code_cache, lookups, displays=displays)
    return Change(
        action_type=action or classify(diff),
        entity_type=spec.config.entity_type,
        entity_id=spec.config.entity_id(instance),
        diff=diff,
        table_name=spec.table_name,
        displays=displays,
    )


def code_attname(model) -> str | None:
    """The attribute holding a related model's code, or None for its pk."""
    config = registry.get_config(model)
    if config is None or config.code_field in ("pk", "id"):
        return None
    return config.code_field


def display_attname(model) -> str | None:
    """The field that names a related model's rows after their code (``full_name``), or None."""
    config = registry.get_config(model)
    if config is None or code_attname(model) is None:
        return None
    return config.display_field


def display_text(code, name) -> str:
    """How a related entity is named in a history: "PE001 · Priya Eriksen", the code alone
    when it has no name."""
    name = "" if name is None else str(name).strip()
    return f"{code} · {name}" if name else str(code)


def resolve_fk_codes(instance, spec: ModelSpec, diff: Diff, code_cache: dict | None = None,
                     lookups: Lookups | None = None, displays: dict | None = None) -> Diff:
    """Replace foreign-key pks in ``diff`` by the related entity's code
    (``PE001``, ``MR001``): from the related object when it is cached on the
    instance or in ``code_cache`` (the bulk paths' one query per field:
    ``{model: {pk: (code, display)}}``), else looked up by the statement
    (``lookups``), else one query per changed foreign key.

    In the same step, for a related model with a display field, its display
    text ("PE001 · Priya Eriksen") goes into ``displays`` (``{field: {"old":
    ..., "new": ...}}``): read from the same object, the same statement or
    the same query as the code, never one more."""
    fks = spec.fk_fields
    if not fks or not any(c.field in fks for c in diff.changes):
        return diff
    changes = []
    for change in diff.changes:
        fk = fks.get(change.field)
        if fk is None:
            changes.append(change)
            continue
        related = fk.related_model
        attr = code_attname(related)
        if attr is None:
            changes.append(FieldChange(change.field, _s(change.old), _s(change.new)))
            continue
        shown = display_attname(related) if displays is not None else None
        known: dict[Any, str] = {}
        names: dict[Any, str] = {}
        if code_cache is not None:
            for pk, (code, display) in code_cache.get(related, {}).items():
                known[pk] = code
                if display is not None:
                    names[pk] = display
        if fk.is_cached(instance):
            obj = fk.get_cached_value(instance)
            if obj is not None and obj.pk is not None:
                known[obj.pk] = getattr(obj, attr)
                if shown and shown in obj.__dict__:  # a deferred name is read by the statement instead
                    names[obj.pk] = display_text(known[obj.pk], obj.__dict__[shown])
        wanted = {v for v in (change.old, change.new) if v is not None and (v not in known or (shown and v not in names))}
        if wanted and lookups is not None:
            for pk in wanted:
                if pk not in known:
                    known[pk] = lookups.token_for(related, attr, pk)
                if shown and pk not in names:
                    names[pk] = lookups.display_token_for(related, attr, shown, pk)
        elif wanted:
            db = instance._state.db or "default"
            if shown:
                for pk, code, name in related._base_manager.using(db).filter(pk__in=wanted).values_list(
                        "pk", attr, shown):
                    known[pk], names[pk] = code, display_text(code, name)
            else:
                known.update(related._base_manager.using(db).filter(pk__in=wanted).values_list("pk", attr))
        changes.append(FieldChange(change.field, _code(change.old, known), _code(change.new, known)))
        if shown and (change.old is not None or change.new is not None):
            displays[change.field] = {"old": _name(change.old, names), "new": _name(change.new, names)}
    return Diff(diff.mode, tuple(changes))


def _name(pk, names):
    return None if pk is None else names.get(pk)


def _s(value):
    return None if value is None else str(value)


def _code(pk, known):
    if pk is None:
        return None
    code = known.get(pk)
    return str(code) if code is not None else str(pk)


def prefetch_codes(spec: ModelSpec, rows: list[dict], db: str, attnames=None) -> dict:
    """For the bulk paths: one query per foreign key field (among
    ``attnames``) for the codes and display texts of every related pk in
    ``rows`` (attname-keyed dicts): ``{model: {pk: (code, display or None)}}``."""
    cache: dict = {}
    for fk in spec.fk_fields.values():
        if attnames is not None and fk.attname not in attnames:
            continue
        attr = code_attname(fk.related_model)
        if attr is None:
            continue
        shown = display_attname(fk.related_model)
        pks = {row.get(fk.attname) for row in rows} - {None}
        if pks:
            found = fk.related_model._base_manager.using(db).filter(pk__in=pks)
            if shown:
                entries = {pk: (code, display_text(code, name)) for pk, code, name in found.values_list("pk", attr, shown)}
            else:
                entries = {pk: (code, None) for pk, code in found.values_list("pk", attr)}
            cache.setdefault(fk.related_model, {}).update(entries)
    return cache


# -- reverts ----------------------------------------------------------------------


def context_action() -> str | None:
    """The action type the audit context names for updates (``revert`` inside the admin's
    revert, :class:`audit.admin.revert.RevertHistoryAdmin`), or None."""
    return get_context().action or None


# -- the one path --------------------------------------------------------------


@dataclass
class _Deletes:
    """One ``delete()`` in progress: the codes of the instances it deletes
    (noted at ``pre_delete``, before any row is gone, so a child's link to
    its deleted parent still reads ``MR001``), and what its ``post_delete``
    receivers recorded."""

    codes: dict
    items: list
    lookups: Lookups | None
    #: ids of the instances whose rows the delete's own statement wrote (:func:`delete_in_one_statement`)
    recorded: set = field(default_factory=set)


_deletes: contextvars.ContextVar[_Deletes | None] = contextvars.ContextVar("audit_deletes", default=None)


@contextlib.contextmanager
def one_write_per_delete(using: str):
    """Collect what the ``post_delete`` receivers of one ``delete()`` (the
    instance and everything its cascade deletes) record, and write it with
    one statement at its end, inside its transaction (nothing when it
    fails)."""
    if _deletes.get() is not None or not capture_enabled():
        yield
        return
    connection = connections[using]
    pending = _Deletes({}, [], Lookups(connection) if connection.vendor == "postgresql" else None)
    token = _deletes.set(pending)
    try:
        yield
    finally:
        _deletes.reset(token)
    rows, histories = _pending_rows(pending)
    if rows or histories:
        writer.write(using, rows, histories=histories, subs=pending.lookups.subs if pending.lookups else ())


def _pending_rows(pending: _Deletes, deleted: dict | None = None) -> tuple[list, list]:
    """The trail and snapshot rows gathered so far (and forgotten: each is written once).
    ``deleted``: ``{table: index of its DELETE}`` of the statement that deletes the rows, which
    then writes each trail row only if its row's DELETE removed it (:attr:`writer.Row.gate`)."""
    shared = writer.row_context() if pending.items else None
    rows = []
    for change, _, now, (table, pk) in pending.items:
        if change is not None:
            row = writer.build_row(**change.as_writer_kwargs(), now=now, context=shared)
            if deleted is not None and table in deleted:
                row = replace(row, gate=(deleted[table], str(pk)))
            rows.append(row)
    histories = [snapshot for _, snapshot, _, _ in pending.items if snapshot is not None]
    pending.items.clear()
    return rows, histories


def one_statement_delete(using) -> bool:
    """Whether a delete in progress (inside :func:`one_write_per_delete`) can run its DELETEs
    and its audit rows as one statement: PostgreSQL."""
    return _deletes.get() is not None and _postgresql(using)


def record_delete(model, instance, *, using) -> None:
    """What ``post_delete`` records for a tracked instance: its ``delete`` change from its
    snapshot and its snapshot row (or, capture off, the snapshot row alone)."""
    if capture_enabled():
        spec = spec_for(model)
        old = {**(state.snapshot(instance) or {}), **current_values(instance, spec.attnames)}
        record_change(instance, old=old, new=None, using=using, history_type="-")
    elif history.spec_for(model) is not None:
        save_history_only(instance, "-", using=using)


def record_before_delete(model, instance, *, using) -> None:
    """:func:`record_delete` ahead of the statement that deletes ``instance``
    (:func:`delete_in_one_statement`), so its ``post_delete`` records nothing."""
    record_delete(model, instance, using=using)
    _deletes.get().recorded.add(id(instance))


def deleting() -> bool:
    """Whether a delete is in progress (inside :func:`one_write_per_delete`)."""
    return _deletes.get() is not None


def nothing_to_record(instance) -> None:
    """A collected row its delete did not remove (another transaction deleted it first):
    its ``post_delete`` records nothing."""
    _deletes.get().recorded.add(id(instance))


def recorded_before_delete(instance) -> bool:
    pending = _deletes.get()
    return pending is not None and id(instance) in pending.recorded


def delete_in_one_statement(using, batches) -> list[int]:
    """PostgreSQL: the ``DELETE`` of each ``(model, pks)`` of ``batches`` and the audit and
    snapshot rows recorded so far, as one statement (data-modifying CTEs); the number of
    rows each DELETE removed."""
    connection = connections[using]
    deletes = []
    for model, pks in batches:
        pk = model._meta.pk
        deletes.append(writer.Delete(model._meta.db_table, pk.column, writer.cast_type(pk, connection),
                                     [pk.get_db_prep_value(value, connection) for value in pks]))
    pending = _deletes.get()
    rows, histories = _pending_rows(pending, deleted={d.table: i for i, d in enumerate(deletes)})
    return writer.write(using, rows, histories=histories, subs=pending.lookups.subs, deletes=deletes)


def note_deleting(instance) -> None:
    """``pre_delete`` inside :func:`one_write_per_delete`: remember the
    instance's code for the rows that refer to it."""
    pending = _deletes.get()
    if pending is None:
        return
    model = type(instance)._meta.concrete_model
    attr = code_attname(model)
    if attr is not None and instance.pk is not None:
        code, shown = getattr(instance, attr), display_attname(model)
        display = display_text(code, instance.__dict__[shown]) if shown and shown in instance.__dict__ else None
        pending.codes.setdefault(model, {})[instance.pk] = (code, display)


def _postgresql(using) -> bool:
    return connections[using].vendor == "postgresql"


def record_change(instance, *, old: dict | None, new: dict | None, action: str | None = None,
                  using: str | None = None, history_type: str | None = None) -> None:
    """Record one change of a tracked instance: create (``old=None``),
    delete (``new=None``) or update; nothing when nothing changed.

    ``history_type`` (``+``, ``~``, ``-``) asks for the simple-history
    snapshot row of this save/delete too, for models whose rows the capture
    path writes (:mod:`audit.capture.history`): in the same statement as the audit
    rows, and even when no audited field changed (simple-history writes a
    row for every save)."""
    model = type(instance)._meta.concrete_model
    spec = spec_for(model)
    if spec is None or not capture_enabled():
        return
    using = using or instance._state.db
    revert = context_action()
    if action is None and old is not None and new is not None and revert:
        action = revert
    now = timezone.now()
    pending = _deletes.get() if new is None else None
    if pending is not None:
        change = build_change(instance, spec, old=old, new=new, action=action, code_cache=pending.codes,
                              lookups=pending.lookups)
        snapshot = history_row(instance, history_type, using=using, now=now) if history_type else None
        pending.items.append((change, snapshot, now, (model._meta.db_table, instance.pk)))
        return
    lookups = Lookups(connections[using]) if _postgresql(using) else None
    change = build_change(instance, spec, old=old, new=new, action=action, lookups=lookups)
    snapshot = None
    if history_type is not None:
        snapshot = history_row(instance, history_type, using=using, now=now)
    rows = [] if change is None else [writer.build_row(**change.as_writer_kwargs(), now=now)]
    if rows or snapshot is not None:
        writer.write(using, rows, histories=[snapshot] if snapshot is not None else (),
                     subs=lookups.subs if lookups else ())


def _one_statement_spec(model, using):
    """The capture spec of ``model`` when its write, snapshot and audit rows
    can be one statement: PostgreSQL, and the snapshot row written by the
    capture path (simple-history would write its own after the statement,
    or receivers of its signals must run). None otherwise."""
    if not _postgresql(using):
        return None
    spec = spec_for(model)
    if spec is None:
        return None
    hspec = history.spec_for(model)
    if hspec is None and getattr(model._meta, "simple_history_manager_attribute", None):
        return None
    if hspec is not None and hspec.has_listeners():
        return None
    return spec


def one_statement_mode(instance, using, save_kwargs) -> str | None:
    """``"update"`` or ``"create"`` when this ``save()`` can be one
    UPDATE- or INSERT-and-audit statement (PostgreSQL, plain values, the
    snapshot row written by the capture, no multi-table inheritance; a
    create only when the primary key is the only database-generated value)."""
    model = type(instance)
    meta = model._meta
    if meta.parents or meta.select_on_save or meta.proxy or _one_statement_spec(model, using) is None:
        return None
    d = instance.__dict__
    if not instance._state.adding and instance.pk is not None and not save_kwargs.get("force_insert"):
        mode = "update"
    elif instance._state.adding and instance.pk is None and not (save_kwargs.get("force_update")
                                                                   or save_kwargs.get("update_fields")):
        if meta.auto_field is None or meta.pk is not meta.auto_field or list(meta.db_returning_fields) != [meta.pk]:
            return None
        mode = "create"
    else:
        return None
    if any(hasattr(d.get(f.attname), "resolve_expression") for f in meta.concrete_fields):
        return None
    return mode


def update_in_one_statement(instance, base_qs, using, pk_val, values, update_fields) -> bool | None:
    """The UPDATE of a captured save() with its snapshot and audit rows in
    one statement. Returns whether the row was updated, or None when the
    ordinary path must run."""
    spec = spec_for(type(instance))
    if any(hasattr(v, "resolve_expression") for _, _, v in values):
        return None
    compiled = compat.update_sql(base_qs, pk_val, values, using)
    if compiled is None:
        return None
    update_sql, update_params = compiled
    new = current_values(instance, spec.attnames_for(update_fields))
    old = state.snapshot(instance) or {}
    action = context_action()
    lookups = Lookups(connections[using])
    change = build_change(instance, spec, old=old, new=new, action=action, lookups=lookups)
    now = timezone.now()
    snapshot = history_row(instance, "~", using=using, now=now)
    rows = [] if change is None else [writer.build_row(**change.as_writer_kwargs(), now=now)]
    head = writer.Head("u", f"{update_sql} RETURNING {'*' if snapshot is not None else '1'}", update_params)
    updated = writer.write(using, rows, head=head, histories=[snapshot] if snapshot is not None else (),
                           subs=lookups.subs)
    if updated:
        state.of(instance).written = True
    return updated > 0


def insert_in_one_statement(instance, using, fields, returning_fields, raw) -> list | None:
    """The INSERT of a captured save() with its snapshot and audit rows in
    one statement. The new primary key, unknown while the rows are built,
    is a substitution the statement fills in (the trail's entity id when
    the entity has no code, the ``id`` field row, the JSON of the changes).
    Returns the returned row as ``Model._do_insert`` does, or None when the
    ordinary path must run."""
    if raw:
        return None
    model = type(instance)
    spec = spec_for(model)
    compiled = compat.insert_sql(model, instance, fields, returning_fields, using, raw)  # runs auto_now pre_save
    if compiled is None:
        return None
    insert_sql, insert_params, compiler = compiled
    if any(hasattr(v, "resolve_expression") for v in insert_params):
        return None
    meta = model._meta
    d = instance.__dict__
    pk_attname = meta.pk.attname
    connection = connections[using]
    new_pk = writer.Substitution(writer.token(0), f"SELECT {connection.ops.quote_name(meta.pk.column)} FROM i",
                                 number=True)
    lookups = Lookups(connection, start=[new_pk])
    now = timezone.now()
    d[pk_attname] = new_pk.token
    try:
        change = build_change(instance, spec, old=None, new=current_values(instance, spec.attnames), lookups=lookups)
        snapshot = history_row(instance, "+", using=using, now=now)
    finally:
        d[pk_attname] = None
    rows = [] if change is None else [writer.build_row(**change.as_writer_kwargs(), reason=None, now=now)]
    head_sql = insert_sql.rpartition(" RETURNING ")[0] + " RETURNING *"
    row = writer.write(using, rows, head=writer.Head("i", head_sql, insert_params, meta.pk.column),
                       histories=[snapshot] if snapshot is not None else (), subs=lookups.subs)
    state.of(instance).written = True
    return compat.converted(compiler, model, returning_fields, [row])


def history_row(instance, history_type: str, *, using, now) -> dict | None:
    """The simple-history row of this save/delete when the capture path
    writes it (None when simple-history does, or it is switched off)."""
    hspec = history.spec_for(type(instance))
    if hspec is None or not history.enabled_for(instance):
        return None
    ctx = get_context()
    reason = ctx.reason
    user = history_user()
    if hspec.has_listeners():  # receivers of simple-history's signals: its own path
        history.write_with_simple_history(hspec, instance, history_type, using, user=user, reason=reason)
        return None
    return history.row(hspec, instance, history_type, user_pk=user.pk if user is not None else None,
                       reason=reason or None, now=now)


def save_history_only(instance, history_type: str, *, using) -> None:
    """A snapshot row without audit rows (capture switched off for a delete,
    where simple-history has always written its row)."""
    snapshot = history_row(instance, history_type, using=using or instance._state.db, now=timezone.now())
    if snapshot is not None:
        writer.write_history(snapshot, using=using or instance._state.db)


def record_changes(changes: list[Change], *, using: str, extra=()) -> None:
    """``extra``: ``(sql, params)`` INSERTs to run in the same statement
    (PostgreSQL), e.g. the snapshot rows of the same rows."""
    if changes and capture_enabled():
        writer.write_changes([c.as_writer_kwargs() for c in changes], using=using, extra=extra or ())


# -- many-to-many ----------------------------------------------------------------


#: related models whose many-to-many rows are rights: a change to them is a
#: ``permission_change`` (a user's groups and permissions, a group's permissions)
PERMISSION_MODELS = frozenset({"auth.group", "auth.permission"})


def _is_permission_field(model, field_name: str) -> bool:
    try:
        related = model._meta.get_field(field_name).related_model
    except Exception:  # noqa: BLE001 - an unknown field is a plain update
        return False
    return related is not None and related._meta.label_lower in PERMISSION_MODELS


def record_m2m(instance, field_name: str, old_labels: list[str], new_labels: list[str], *, using=None) -> None:
    spec = spec_for(type(instance)._meta.concrete_model)
    if spec is None or not capture_enabled() or field_name in spec.config.exclude:
        return
    old, new = sorted(old_labels), sorted(new_labels)
    if old == new:
        return
    action = "permission_change" if _is_permission_field(spec.model, field_name) else "update"
    diff = Diff("update", (FieldChange(field_name, old, new),))
    writer.write_change(action_type=action, entity_type=spec.config.entity_type,
                        entity_id=spec.config.entity_id(instance), changes=diff.as_dict(),
                        table_name=spec.table_name, using=using or instance._state.db)


def _labels(queryset) -> list[str]:
    """Labels of the related rows in ``queryset`` (one query)."""
    model = queryset.model
    label = model._meta.label_lower
    if label == "auth.group":
        return [str(v) for v in queryset.values_list("name", flat=True)]
    if label == "auth.permission":
        return [f"{a}.{c}" for a, c in queryset.values_list("content_type__app_label", "codename")]
    attr = code_attname(model) or "pk"
    return [str(v) for v in queryset.values_list(attr, flat=True)]


def _m2m_field(through, tracked_model):
    for f in tracked_model._meta.many_to_many:
        if f.remote_field.through is through:
            return f
    return None


def _m2m_old(instance) -> dict:
    s = state.of(instance)
    if s.m2m_old is None:
        s.m2m_old = {}
    return s.m2m_old


def m2m_changed(through, instance, action, reverse, model, pk_set, using) -> None:
    """Receiver body for ``m2m_changed``: read the related labels before
    and after (one query each) and record a ``permission_change`` (groups,
    user_permissions, a group's permissions) or ``update`` of the many-to-many field."""
    if reverse:  # group.user_set.add(user): record on each affected user
        m2m = _m2m_field(through, model)
        if m2m is None or spec_for(model) is None:
            return
        if action in ("pre_add", "pre_remove", "pre_clear"):
            owners = model._base_manager.using(using)
            owners = owners.filter(pk__in=pk_set) if pk_set is not None else owners.filter(**{m2m.name: instance})
            _m2m_old(instance)[m2m.name] = [(owner, _labels(getattr(owner, m2m.name).all())) for owner in owners]
        elif action in ("post_add", "post_remove", "post_clear"):
            for owner, old in _m2m_old(instance).pop(m2m.name, []):
                record_m2m(owner, m2m.name, old, _labels(getattr(owner, m2m.name).all()), using=using)
        return
    spec = spec_for(type(instance)._meta.concrete_model)
    m2m = _m2m_field(through, type(instance)._meta.concrete_model) if spec else None
    if m2m is None:
        return
    if action in ("pre_add", "pre_remove", "pre_clear"):
        _m2m_old(instance)[m2m.name] = _labels(getattr(instance, m2m.name).all())
    elif action in ("post_add", "post_remove", "post_clear"):
        old = _m2m_old(instance).pop(m2m.name, None)
        if old is not None:
            record_m2m(instance, m2m.name, old, _labels(getattr(instance, m2m.name).all()), using=using)


# -- who and why, for simple-history ------------------------------------------------------


def history_reason(model, reason: str) -> str:
    """The reason as simple-history can store it: no NUL bytes, cut to its
    column (``history_change_reason`` is a 100-character field by default)."""
    limit = 100
    name = getattr(model._meta, "simple_history_manager_attribute", None)
    if name:
        f = getattr(model, name).model._meta.get_field("history_change_reason")
        limit = f.max_length or writer.TEXT_LIMIT
    return writer.clean_text(reason, limit)


def history_user():
    """The actor as a User for simple-history's ``history_user``: the
    context's actor (a user_id string costs one query), else the request's
    authenticated user, else ``None``."""
    from django.contrib.auth import get_user_model

    ctx = get_context()
    actor = ctx.actor
    if actor is not None:
        if isinstance(actor, str):
            User = get_user_model()  # noqa: N806
            return User._default_manager.filter(**{User.USERNAME_FIELD: actor}).first()
        return actor if getattr(actor, "pk", None) is not None else None
    user = getattr(ctx.request, "user", None) if ctx.request is not None else None
    if user is not None and getattr(user, "is_authenticated", False):
        return user
    return None


__all__ = ["CREATE", "DELETE", "record_change", "record_changes", "record_m2m", "capture_enabled"]
