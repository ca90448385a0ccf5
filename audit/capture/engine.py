"""Automatic change capture: snapshots, the diff of one instance, and the
one :func:`record_change` path that every entry point (save, delete, m2m,
bulk querysets) goes through.

How a save is captured (see :mod:`audit.capture.receivers`):

1. ``post_init`` stores the loaded concrete values in
   ``instance.__dict__["_audit_snapshot"]`` (no extra SELECT later);
2. ``pre_save`` tops the snapshot up with one SELECT only when it cannot be
   trusted (instance not loaded from the database, e.g. built by
   simple-history's revert, or fields that were deferred), and hands
   simple-history the actor and reason;
3. ``post_save`` diffs the snapshot against the saved values and calls
   :func:`record_change`, inside the save's transaction (the models inherit
   :class:`audit.capture.querysets.AuditedModelMixin`, whose ``save()`` opens one).

Fields with ``auto_now`` (``updated_at``) are recorded on create but never
count as a change on update, so a save that changes nothing writes nothing.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.db import connections, models
from django.utils import timezone

from audit.capture import history, registry, writer
from audit.capture.diff import CREATE, DELETE, Diff, FieldChange, classify, diff_values
from audit.context import get_context

SNAPSHOT = "_audit_snapshot"
_REVERT_PATH = re.compile(r"/history/[^/]+/?$")


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
    def field_by_name(self) -> dict[str, models.Field]:
        return {f.name: f for f in self.fields}

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
    d[SNAPSHOT] = {a: d[a] for a in spec.attnames if a in d}


def current_values(instance, attnames) -> dict[str, Any]:
    d = instance.__dict__
    return {a: d[a] for a in attnames if a in d}


def ensure_trusted_snapshot(instance, spec: ModelSpec, update_fields=None) -> None:
    """Before an update, make sure the snapshot holds the stored values of
    the fields about to be saved; one SELECT only when it does not."""
    if instance.pk is None:
        return
    snapshot = instance.__dict__.get(SNAPSHOT)
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
        instance.__dict__[SNAPSHOT] = snapshot if loaded else None
        return
    snapshot = dict(snapshot)
    snapshot.update(row)
    instance.__dict__[SNAPSHOT] = snapshot


# -- building one change -----------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One change ready for :func:`audit.capture.writer.write_changes`."""

    action_type: str
    entity_type: str
    entity_id: str
    diff: Diff
    table_name: str

    def as_writer_kwargs(self) -> dict:
        return {
            "action_type": self.action_type,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "changes": self.diff.as_dict(),
            "table_name": self.table_name,
            "old_value": self.diff.old_values(),
            "new_value": self.diff.new_values(),
        }


def by_name(spec: ModelSpec, values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    name_of = spec.name_of
    return {name_of[a]: v for a, v in values.items() if a in name_of}


def build_change(instance, spec: ModelSpec, *, old: dict | None, new: dict | None, action: str | None = None,
                 code_cache: dict | None = None) -> Change | None:
    """Diff attname-keyed ``old``/``new`` values of ``instance``; ``None``
    when an update changed nothing."""
    diff = diff_values(by_name(spec, old), by_name(spec, new), masked=spec.config.mask,
                       excluded=spec.config.exclude, ignored=spec.auto_now, normalize=spec.normalize)
    if not diff:
        return None
    diff = resolve_fk_codes(instance, spec, diff, code_cache)
    return Change(
        action_type=action or classify(diff),
        entity_type=spec.config.entity_type,
        entity_id=spec.config.entity_id(instance),
        diff=diff,
        table_name=spec.table_name,
    )


def code_attname(model) -> str | None:
    """The attribute holding a related model's code, or None for its pk."""
    config = registry.get_config(model)
    if config is None or config.code_field in ("pk", "id"):
        return None
    return config.code_field


def resolve_fk_codes(instance, spec: ModelSpec, diff: Diff, code_cache: dict | None = None) -> Diff:
    """Replace foreign-key pks in ``diff`` by the related entity's code
    (``PE001``, ``MR001``): from the related object when it is cached on the
    instance, else one query per changed foreign key (``code_cache`` lets the
    bulk paths share one query per field)."""
    fks = spec.fk_fields
    if not fks or not any(c.field in fks for c in diff.changes):
        return diff
    changes = []
    for change in diff.changes:
        field = fks.get(change.field)
        if field is None:
            changes.append(change)
            continue
        related = field.related_model
        attr = code_attname(related)
        if attr is None:
            changes.append(FieldChange(change.field, _s(change.old), _s(change.new)))
            continue
        known: dict[Any, str] = {}
        if code_cache is not None:
            known.update(code_cache.get(related, {}))
        if field.is_cached(instance):
            obj = field.get_cached_value(instance)
            if obj is not None and obj.pk is not None:
                known[obj.pk] = getattr(obj, attr)
        wanted = {v for v in (change.old, change.new) if v is not None and v not in known}
        if wanted:
            db = instance._state.db or "default"
            known.update(related._base_manager.using(db).filter(pk__in=wanted).values_list("pk", attr))
        changes.append(FieldChange(change.field, _code(change.old, known), _code(change.new, known)))
    return Diff(diff.mode, tuple(changes))


def _s(value):
    return None if value is None else str(value)


def _code(pk, known):
    if pk is None:
        return None
    code = known.get(pk)
    return str(code) if code is not None else str(pk)


def prefetch_codes(spec: ModelSpec, rows: list[dict], db: str, attnames=None) -> dict:
    """For the bulk paths: one query per foreign key field (among
    ``attnames``) for the codes of every related pk in ``rows``
    (attname-keyed dicts)."""
    cache: dict = {}
    for field in spec.fk_fields.values():
        if attnames is not None and field.attname not in attnames:
            continue
        attr = code_attname(field.related_model)
        if attr is None:
            continue
        pks = {row.get(field.attname) for row in rows} - {None}
        if pks:
            found = dict(field.related_model._base_manager.using(db).filter(pk__in=pks).values_list("pk", attr))
            cache.setdefault(field.related_model, {}).update(found)
    return cache


# -- the one path --------------------------------------------------------------


def revert_action() -> str | None:
    """``revert`` when the current request is a simple-history admin revert
    (POST to ``.../history/<version>/``)."""
    ctx = get_context()
    if ctx.method == "POST" and ctx.path and _REVERT_PATH.search(ctx.path):
        return "revert"
    return None


def revert_reason() -> str | None:
    ctx = get_context()
    if ctx.reason:
        return None
    match = _REVERT_PATH.search(ctx.path or "")
    version = match.group(0).strip("/").split("/")[-1] if match else ""
    return f"Reverted to history version {version}"


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
    ctx = get_context()
    reason = None
    revert = revert_action() if ctx.path else None
    if action is None and old is not None and new is not None and revert:
        action, reason = "revert", revert_reason()
    change = build_change(instance, spec, old=old, new=new, action=action)
    now = timezone.now()
    snapshot = None
    if history_type is not None:
        snapshot = history_row(instance, history_type, using=using, now=now, revert=revert)
    if change is None:
        if snapshot is not None:
            writer.write_history(snapshot, using=using)
        return
    writer.write_change(**change.as_writer_kwargs(), reason=reason, using=using, history=snapshot, now=now)


ONE_STATEMENT = "_audit_one_statement"  # save() chose the one-statement update
WRITTEN = "_audit_written"  # the one statement wrote the audit rows: post_save records nothing


def one_statement_update_possible(instance, using, save_kwargs) -> bool:
    """Whether this ``save()`` can be one UPDATE-and-audit statement
    (PostgreSQL, an update of a loaded row, plain values, no receiver of
    simple-history's signals, no multi-table inheritance)."""
    if instance._state.adding or instance.pk is None or save_kwargs.get("force_insert"):
        return False
    model = type(instance)
    if model._meta.parents or model._meta.select_on_save or model._meta.proxy:
        return False
    spec = _one_statement_spec(model, using)
    if spec is None:
        return False
    d = instance.__dict__
    return not any(hasattr(d.get(a), "resolve_expression") for a in spec.attnames)


def _one_statement_spec(model, using):
    """The capture spec of ``model`` when its write, snapshot and audit rows
    can be one statement: PostgreSQL, and the snapshot row written by the
    capture path (simple-history would write its own after the statement,
    or receivers of its signals must run). None otherwise."""
    if connections[using].vendor != "postgresql":
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


def update_in_one_statement(instance, base_qs, using, pk_val, values, update_fields) -> bool | None:
    """The UPDATE of a captured save() with its snapshot and audit rows in
    one statement (:func:`audit.capture.writer.update_with_change`). Returns whether
    the row was updated, or None when the ordinary path must run."""
    from django.db.models import sql as djsql

    spec = spec_for(type(instance))
    if any(hasattr(v, "resolve_expression") for _, _, v in values):
        return None
    query = base_qs.filter(pk=pk_val).query.chain(djsql.UpdateQuery)
    query.add_update_fields(values)
    query.annotations = {}
    if query.related_updates:
        return None
    update_sql, update_params = query.get_compiler(using).as_sql()
    if not update_sql:
        return None
    new = current_values(instance, spec.attnames_for(update_fields))
    old = instance.__dict__.get(SNAPSHOT) or {}
    ctx = get_context()
    reason = None
    action = None
    revert = revert_action() if ctx.path else None
    if revert:
        action, reason = "revert", revert_reason()
    change = build_change(instance, spec, old=old, new=new, action=action)
    now = timezone.now()
    snapshot = history_row(instance, "~", using=using, now=now, revert=revert)
    kwargs = None
    if change is not None:
        kwargs = {**change.as_writer_kwargs(), "reason": reason}
    rows = writer.update_with_change(connections[using], update_sql, update_params, change=kwargs,
                                     history=snapshot, now=now)
    if rows:
        instance.__dict__[WRITTEN] = True
    return rows > 0


CREATE_ONE_STATEMENT = "_audit_create_one_statement"  # save() chose the one-statement create
CREATE_WRITTEN = "_audit_create_written"  # the INSERT statement wrote the audit rows
#: stands for the primary key, unknown until the INSERT, in the values of a
#: one-statement create; the statement puts the new id in its place
PK_SENTINEL = f"__audit_new_pk_{secrets.token_hex(8)}__"


def one_statement_create_possible(instance, using, save_kwargs) -> bool:
    """Whether this ``save()`` can be one INSERT-and-audit statement
    (PostgreSQL, a new row whose only database-generated value is its auto
    primary key, plain values, simple-history's row written by us)."""
    if not instance._state.adding or instance.pk is not None:
        return False
    if save_kwargs.get("force_update") or save_kwargs.get("update_fields"):
        return False
    model = type(instance)
    meta = model._meta
    if meta.parents or meta.proxy or meta.select_on_save or meta.auto_field is None or meta.pk is not meta.auto_field:
        return False
    if list(meta.db_returning_fields) != [meta.pk] or _one_statement_spec(model, using) is None:
        return False
    d = instance.__dict__
    return not any(hasattr(d.get(f.attname), "resolve_expression") for f in meta.concrete_fields)


def insert_in_one_statement(instance, using, fields, returning_fields, raw) -> list | None:
    """The INSERT of a captured save() with its snapshot and audit rows in
    one statement (:func:`audit.capture.writer.insert_with_change`). Returns the
    returned row as ``Model._do_insert`` does, or None when the ordinary path
    must run."""
    from django.db.models import sql as djsql

    if raw:
        return None
    model = type(instance)
    spec = spec_for(model)
    query = djsql.InsertQuery(model)
    query.insert_values(fields, [instance], raw=raw)  # runs pre_save (auto_now) on the instance
    compiler = query.get_compiler(using=using)
    compiler.returning_fields = returning_fields
    statements = compiler.as_sql()
    if len(statements) != 1 or compiler.returning_params:
        return None
    insert_sql, insert_params = statements[0]
    if any(hasattr(v, "resolve_expression") for v in insert_params):
        return None
    d = instance.__dict__
    pk_attname = model._meta.pk.attname
    now = timezone.now()
    d[pk_attname] = PK_SENTINEL
    try:
        new = current_values(instance, spec.attnames)
        change = build_change(instance, spec, old=None, new=new)
        snapshot = history_row(instance, "+", using=using, now=now)
    finally:
        d[pk_attname] = None
    kwargs = None if change is None else {**change.as_writer_kwargs(), "reason": None}
    row = writer.insert_with_change(connections[using], insert_sql, insert_params, pk_column=model._meta.pk.column,
                                    change=kwargs, history=snapshot, now=now, sentinel=PK_SENTINEL)
    cols = [field.get_col(model._meta.db_table) for field in returning_fields]
    converters = compiler.get_converters(cols)
    rows = [tuple(row)]
    if converters:
        rows = [tuple(r) for r in compiler.apply_converters(rows, converters)]
    d[CREATE_WRITTEN] = True
    return rows


def history_row(instance, history_type: str, *, using, now, revert=None) -> dict | None:
    """The simple-history row of this save/delete when the capture path
    writes it (None when simple-history does, or it is switched off)."""
    hspec = history.spec_for(type(instance))
    if hspec is None or not history.enabled_for(instance):
        return None
    ctx = get_context()
    reason = ctx.reason or (revert_reason() if revert or revert_action() else "")
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


PERMISSION_FIELDS = frozenset({"groups", "user_permissions"})


def record_m2m(instance, field_name: str, old_labels: list[str], new_labels: list[str], *, using=None) -> None:
    spec = spec_for(type(instance)._meta.concrete_model)
    if spec is None or not capture_enabled() or field_name in spec.config.exclude:
        return
    old, new = sorted(old_labels), sorted(new_labels)
    if old == new:
        return
    action = "permission_change" if field_name in PERMISSION_FIELDS else "update"
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
    for field in tracked_model._meta.many_to_many:
        if field.remote_field.through is through:
            return field
    return None


OLD_M2M = "_audit_m2m_old"


def m2m_changed(through, instance, action, reverse, model, pk_set, using) -> None:
    """Receiver body for ``m2m_changed``: read the related labels before
    and after (one query each) and record a ``permission_change`` (groups,
    user_permissions) or ``update`` of the many-to-many field."""
    if reverse:  # group.user_set.add(user): record on each affected user
        field = _m2m_field(through, model)
        if field is None or spec_for(model) is None:
            return
        if action in ("pre_add", "pre_remove", "pre_clear"):
            owners = model._base_manager.using(using)
            owners = owners.filter(pk__in=pk_set) if pk_set is not None else owners.filter(**{field.name: instance})
            instance.__dict__.setdefault(OLD_M2M, {})[field.name] = [
                (owner, _labels(getattr(owner, field.name).all())) for owner in owners
            ]
        elif action in ("post_add", "post_remove", "post_clear"):
            for owner, old in instance.__dict__.get(OLD_M2M, {}).pop(field.name, []):
                record_m2m(owner, field.name, old, _labels(getattr(owner, field.name).all()), using=using)
        return
    spec = spec_for(type(instance)._meta.concrete_model)
    field = _m2m_field(through, type(instance)._meta.concrete_model) if spec else None
    if field is None:
        return
    if action in ("pre_add", "pre_remove", "pre_clear"):
        instance.__dict__.setdefault(OLD_M2M, {})[field.name] = _labels(getattr(instance, field.name).all())
    elif action in ("post_add", "post_remove", "post_clear"):
        old = instance.__dict__.get(OLD_M2M, {}).pop(field.name, None)
        if old is not None:
            record_m2m(instance, field.name, old, _labels(getattr(instance, field.name).all()), using=using)


def history_reason(model, reason: str) -> str:
    """The reason as simple-history can store it: no NUL bytes, cut to its
    column (``history_change_reason`` is a 100-character field by default)."""
    limit = 100
    name = getattr(model._meta, "simple_history_manager_attribute", None)
    if name:
        field = getattr(model, name).model._meta.get_field("history_change_reason")
        limit = field.max_length or writer.TEXT_LIMIT
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
