"""A QuerySet whose bulk paths (``update``, ``delete``, ``bulk_create``,
``bulk_update``) are captured like single saves, and the model mixin that
makes a single save atomic with its audit rows.

Tracked models use ``AuditedQuerySet.as_manager()`` (the user model
``BaseUserManager.from_queryset(AuditedQuerySet)``) and inherit
:class:`AuditedModelMixin`. Every bulk path runs in one transaction with its
audit rows, records row by row with the old values (read and locked before
the write, and only the rows read are written: on PostgreSQL ``update()``
reads, locks and writes in one statement), uses the context's actor and
reason, and writes the simple-history snapshots (``INSERT ... SELECT`` where
the capture path owns them, else ``bulk_history_create``) so the per-model
history stays consistent.

``delete()`` and ``QuerySet.delete()``: Django's Collector loads the rows (the
capture receivers are connected for the model, so it cannot fast-delete) and
sends ``pre_delete`` for each; :class:`AuditedCollector` then deletes them and
writes their audit rows in one statement on PostgreSQL (elsewhere the audit
rows of the whole delete are one write at its end).
"""

from __future__ import annotations

import contextvars
import dataclasses
import json

from django.db import connections, models, router, transaction
from django.db.models import signals

from audit.capture import compat, engine, history, state
from audit.capture.receivers import on_post_delete
from audit.context import get_context

_CHUNK = 500
# Django's bulk_update() runs QuerySet.update() per batch: those are recorded
# by bulk_update itself, not again by update().
_inside_bulk_update = contextvars.ContextVar("audit_inside_bulk_update", default=False)


class AuditedModelMixin(compat.ModelHooks):
    """Makes a single ``save()`` or ``delete()`` atomic with its audit rows.

    On PostgreSQL a save is one statement (its UPDATE or INSERT, the
    snapshot and the audit rows: :func:`engine.update_in_one_statement`,
    reached through Django's ``_do_update``/``_do_insert``, which
    :class:`audit.capture.compat.ModelHooks` overrides), atomic on its own in
    autocommit. Otherwise ``save()`` opens ``transaction.atomic`` around
    Django's save and its ``post_save`` audit rows (``savepoint=False``:
    inside an outer transaction it costs nothing). A ``delete()`` and its
    cascade are written as one audit statement at its end."""

    def save(self, *args, **kwargs):
        if not engine.capture_enabled():
            return super().save(*args, **kwargs)
        using = kwargs.get("using") or router.db_for_write(self.__class__, instance=self)
        mode = engine.one_statement_mode(self, using, kwargs)
        if mode is not None:
            s = state.of(self)
            s.mode = mode
            try:
                return super().save(*args, **kwargs)
            finally:
                s.mode, s.written = None, False
        with transaction.atomic(using=using, savepoint=False):
            return super().save(*args, **kwargs)

    save.alters_data = True

    def _capture_insert(self, using, fields, returning_fields, raw):
        s = state.peek(self)
        if s is None or s.mode != "create" or not engine.capture_enabled():
            return None
        s.mode = None
        return engine.insert_in_one_statement(self, using, fields, returning_fields, raw)

    def _capture_update(self, base_qs, using, pk_val, values, update_fields):
        s = state.peek(self)
        if s is None or s.mode != "update" or not values or not engine.capture_enabled():
            return None
        s.mode = None
        return engine.update_in_one_statement(self, base_qs, using, pk_val, values, update_fields)

    def _capture_refreshed(self):
        spec = engine.spec_for(type(self)._meta.concrete_model)
        if spec is not None:
            state.remember(self, engine.current_values(self, spec.attnames))

    def delete(self, using=None, keep_parents=False):
        using = using or router.db_for_write(self.__class__, instance=self)
        with transaction.atomic(using=using, savepoint=False), engine.one_write_per_delete(using):
            return compat.delete_model(self, AuditedCollector, using=using, keep_parents=keep_parents)

    delete.alters_data = True


class AuditedCollector(compat.Collector):
    """Django's Collector whose last step, on PostgreSQL, is one statement: the DELETE of
    every collected row and the audit and snapshot rows of the tracked ones (data-modifying
    CTEs), then the ``post_delete`` signals, model by model as Django sends them (the
    capture's own receivers then record nothing). The cascade's SELECTs, the ``pre_delete``
    signals, fast deletes and field updates stay Django's. Elsewhere, or when two collected
    models share a table, Django's DELETE per model with ``post_delete`` after each."""

    def delete_instances(self, deleted_counter) -> None:
        tables = [model._meta.db_table for model in self.data]
        if not tables or not engine.one_statement_delete(self.using) or len(set(tables)) != len(tables):
            if engine.deleting() and engine.writer.json_rows_supported(connections[self.using]):
                return self._delete_returning(deleted_counter)
            return super().delete_instances(deleted_counter)
        for model, instances in self.data.items():
            if on_post_delete in compat.live_receivers(signals.post_delete, model):
                for obj in instances:
                    engine.record_before_delete(model, obj, using=self.using)
        counts = engine.delete_in_one_statement(
            self.using, [(model, [obj.pk for obj in instances]) for model, instances in self.data.items()])
        for (model, instances), count in zip(self.data.items(), counts, strict=True):
            if count:
                deleted_counter[model._meta.label] += count
            self.send_post_delete(model, instances)

    def _delete_returning(self, deleted_counter) -> None:
        """SQLite 3.35+: Django's DELETE per model, but ``RETURNING`` the keys it removed, so
        that a collected row another transaction deleted first records nothing at its
        ``post_delete`` (which Django still sends, as it does for every collected row)."""
        connection = connections[self.using]
        qn = connection.ops.quote_name
        for model, instances in self.data.items():
            pk = model._meta.pk
            keys = [pk.get_db_prep_value(obj.pk, connection) for obj in instances]
            removed = set()
            with transaction.mark_for_rollback_on_error(self.using), connection.cursor() as cursor:
                for chunk in _chunks(keys):
                    cursor.execute(f"DELETE FROM {qn(model._meta.db_table)} WHERE {qn(pk.column)} IN "
                                   f"({', '.join(['%s'] * len(chunk))}) RETURNING {qn(pk.column)}", chunk)
                    removed.update(row[0] for row in cursor.fetchall())
            if removed:
                deleted_counter[model._meta.label] += len(removed)
            for obj, key in zip(instances, keys, strict=True):
                if key not in removed:
                    engine.nothing_to_record(obj)
            self.send_post_delete(model, instances)


def _history_manager(model):
    name = getattr(model._meta, "simple_history_manager_attribute", None)
    return getattr(model, name) if name else None


def _bulk_history(model, objs, *, update: bool) -> None:
    manager = _history_manager(model)
    if manager is None or not objs:
        return
    manager.bulk_history_create(objs, update=update, default_user=engine.history_user(),
                                default_change_reason=engine.history_reason(model, get_context().reason or ""))


def _set_based(connection) -> bool:
    """Whether the bulk paths can work on sets in SQL: PostgreSQL, or SQLite
    with JSON functions and RETURNING (3.35+)."""
    return connection.vendor == "postgresql" or engine.writer.json_rows_supported(connection)


def _history_select(model, pks, using, *, objs=None):
    """PostgreSQL or SQLite 3.35+, a model whose snapshot rows the capture path writes: the
    simple-history rows of the rows ``pks`` (just updated) as one ``INSERT ...
    SELECT`` from the table, for the statement that writes their audit rows;
    the row simple-history's ``bulk_history_create`` would write, without a
    historical instance per row. None when ``_bulk_history`` must run.
    ``objs``: the instances of those rows where the caller has them (they may carry
    simple-history attributes of a caller; :meth:`AuditedQuerySet._update_returning`'s rows
    have no instances)."""
    from django.conf import settings

    hspec = history.spec_for(model)
    if hspec is None or not pks or not _set_based(connections[using]):
        return None
    if not getattr(settings, "SIMPLE_HISTORY_ENABLED", True):
        return ()
    if objs is not None and any("_history_date" in o.__dict__ or "_history_user" in o.__dict__
                                or "_change_reason" in o.__dict__ for o in objs):
        return None
    from django.utils import timezone

    connection = connections[using]
    qn = connection.ops.quote_name
    user = engine.history_user()
    reason = engine.history_reason(model, get_context().reason or "")
    if connection.vendor == "postgresql":
        among, pks = "= ANY(%s)", pks
    else:
        among, pks = "IN (SELECT value FROM json_each(%s))", json.dumps(pks)
    sql = (history.copy_sql(hspec, "s", qn, f"{qn(model._meta.db_table)} AS s")
           + f" WHERE s.{qn(model._meta.pk.column)} {among}")
    params = [hspec.date_field.get_db_prep_save(timezone.now(), connection), "~",
              user.pk if user is not None else None, reason, pks]
    return ((sql, params),)


def _group_key(value):
    """``value`` as part of a grouping key: text, integers and None as themselves (their type
    is told apart by equality: ``"1" != 1``; ``True`` is not an ``int`` here), anything else
    by type and ``repr``."""
    kind = type(value)
    return value if kind is str or kind is int or value is None else (kind, repr(value))


@dataclasses.dataclass
class _Alike:
    """Rows of one update that went from the same old values to the same new ones (at most
    ``_CHUNK``): their change is built once, from ``first`` (an instance holding the new
    values) and ``old`` (the old values by attname), and written for each of ``entity_ids``."""

    first: models.Model
    old: dict
    pks: list
    entity_ids: list
    #: the rows' instances, on the general path (simple-history may write its rows from them)
    members: list | None = None


def _same_change(objs, old_rows, attnames, size=_CHUNK):
    """``objs`` (the updated rows' instances, on the general path) in lists whose members
    changed from the same old values to the same new ones (chunks of at most ``size``): their
    changes differ only in the entity, so each list's is built once. Values are told apart as
    :func:`_group_key` says (a ``Decimal("1.0")`` is not grouped with ``Decimal("1.00")``: their
    recorded texts differ); an unhashable or unrepresentable value leaves its row on its own."""
    groups: dict = {}
    for obj in objs:
        d, old = obj.__dict__, old_rows[obj.pk]
        try:
            key = (*map(_group_key, map(old.get, attnames)), *map(_group_key, map(d.get, attnames)))
        except Exception:  # noqa: BLE001 - a value whose repr fails is simply not grouped
            key = id(obj)
        groups.setdefault(key, []).append(obj)
    for members in groups.values():
        yield from _chunks(members, size)


def _chunks(items, size=_CHUNK):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


class AuditedQuerySet(models.QuerySet):
    def _audit_spec(self):
        if not engine.capture_enabled():
            return None
        return engine.spec_for(self.model._meta.concrete_model)

    def _old_rows(self, pks_or_qs, attnames) -> dict:
        """``{pk: {attname: value}}`` in one query per chunk, rows locked
        (``SELECT ... FOR UPDATE``) where the database supports it."""
        features = connections[self.db].features
        base = self.model._base_manager.using(self.db)
        rows = {}
        if isinstance(pks_or_qs, models.QuerySet):
            sources = [pks_or_qs.order_by()]
        else:
            sources = [base.filter(pk__in=chunk).order_by() for chunk in _chunks(pks_or_qs)]
        for qs in sources:
            if features.has_select_for_update:
                qs = qs.select_for_update(**({"of": ("self",)} if features.has_select_for_update_of else {}))
            for row in qs.values("pk", *attnames):
                rows[row.pop("pk")] = row
        return rows

    def update(self, **kwargs):
        spec = self._audit_spec()
        if spec is None or not kwargs or _inside_bulk_update.get():
            return super().update(**kwargs)
        attnames = spec.attnames_for(set(kwargs))
        with transaction.atomic(using=self.db, savepoint=False):
            returned = self._update_returning(kwargs, spec, attnames)
            light = returned is not None
            if light:
                count, alike = returned
            else:
                old_rows = self._old_rows(self, attnames)
                if not old_rows:
                    return super().update(**kwargs)
                # exactly the rows read (and locked) above: a row that starts to match in between
                # (committed by another transaction) is not changed without its audit row
                base = self.model._base_manager.using(self.db)
                count = sum(models.QuerySet.update(base.filter(pk__in=chunk), **kwargs)
                            for chunk in _chunks(old_rows))
                new_objs = [obj for chunk in _chunks(old_rows) for obj in base.filter(pk__in=chunk)]
                entity_id = spec.config.entity_id
                alike = [_Alike(members[0], old_rows[members[0].pk], [o.pk for o in members],
                                [entity_id(o) for o in members], members)
                         for members in _same_change(new_objs, old_rows, attnames)]
            if not alike:
                return count
            changed, changes, built = [], [], {}
            # every row of a group holds the same values: the groups' codes are every row's
            codes = engine.prefetch_codes(spec, [*(a.old for a in alike), *(a.first.__dict__ for a in alike)], self.db,
                                           attnames)
            for a in alike:
                key = id(a.first)  # a group cut in chunks shares its first row: its change is built once
                if key not in built:
                    built[key] = engine.build_change(a.first, spec, old=a.old,
                                                     new=engine.current_values(a.first, attnames), code_cache=codes)
                change = built[key]
                if change is not None:
                    if len(a.entity_ids) > 1 or a.entity_ids[0] != change.entity_id:
                        change = dataclasses.replace(change, entity_ids=tuple(a.entity_ids))
                    changes.append(change)
                    changed.append(a)
            objs = None if light else [o for a in changed for o in a.members]
            snapshots = _history_select(self.model, [pk for a in changed for pk in a.pks], self.db, objs=objs)
            if snapshots is None and objs is not None:
                _bulk_history(self.model, objs, update=True)
            engine.record_changes(changes, using=self.db, extra=snapshots)
        return count

    update.alters_data = True

    def _update_returning(self, kwargs, spec, attnames):
        """The UPDATE returns the new values itself (no SELECT of the new
        rows, no model instance per row), for models whose snapshots are
        written by SQL (:func:`_history_select`). ``(count, groups)``: the
        updated rows as :class:`_Alike` groups, each group's first row a light
        instance holding the pk, the updated fields and the code (no instance
        for the other rows); None when the general path must run.

        PostgreSQL: one statement. A CTE locks the matching rows and reads
        their old values (``SELECT ... FOR UPDATE``), the UPDATE changes
        exactly those rows, and both come back joined: no row can start to
        match between the read and the write. SQLite 3.35+ (one writer at a
        time): the old rows, then ``UPDATE ... RETURNING``."""
        from django.db.models.base import ModelState
        from django.db.models.expressions import RawSQL

        model = self.model
        meta = model._meta
        connection = connections[self.db]
        if meta.parents or not _set_based(connection) or self.query.is_sliced or self.query.combinator:
            return None
        if history.spec_for(model) is None and _history_manager(model) is not None:
            return None  # simple-history writes its rows from instances
        postgresql = connection.vendor == "postgresql"
        qn = connection.ops.quote_name
        old_names = [f"o{i}" for i in range(len(attnames) + 1)]  # o0: the primary key
        if postgresql:
            target = model._base_manager.using(self.db).filter(pk__in=RawSQL("SELECT o0 FROM o", ()))
            query = compat.update_query(target.query, kwargs)
        else:
            query = compat.update_query(self.query, kwargs)
        if query is None:
            return None
        compiler = query.get_compiler(self.db)
        sql, params = compiler.as_sql()
        if not sql or query.related_updates:
            return None
        fields = {f.attname: f for f in meta.concrete_fields}
        wanted = [meta.pk.attname, *(a for a in attnames if a != meta.pk.attname)]
        code = spec.config.code_field
        code_at = None  # where the row holds its code (None: the entity id is the pk)
        if code not in ("pk", meta.pk.name):
            code_field = meta.get_field(code)
            if code_field.is_relation:
                return None  # the entity id is a related object's text: from an instance
            if code_field.attname not in wanted:
                wanted.append(code_field.attname)
            code_at = wanted.index(code_field.attname)
        table = f"{qn(meta.db_table)}." if postgresql else ""  # SQLite: unqualified
        sql += " RETURNING " + ", ".join(f"{table}{qn(fields[a].column)}" for a in wanted)
        cols = [fields[a].get_col(meta.db_table) for a in wanted]
        if postgresql:
            locked = self.order_by().select_for_update(of=("self",)).values_list("pk", *attnames)
            old_sql, old_params = locked.query.get_compiler(self.db).as_sql()
            sql = (f"WITH o({', '.join(old_names)}) AS ({old_sql}), u AS ({sql}) "
                   f"SELECT u.*, {', '.join(f'o.{n}' for n in old_names[1:])} "
                   f"FROM u JOIN o ON o.o0 = u.{qn(meta.pk.column)}")
            params = (*old_params, *params)
            cols += [fields[a].get_col(meta.db_table) for a in attnames]
            old_rows = None
        else:
            old_rows = self._old_rows(self, attnames)
            if not old_rows:
                return models.QuerySet.update(self, **kwargs), []
        with transaction.mark_for_rollback_on_error(using=self.db), connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        converters = compiler.get_converters(cols)
        if converters:
            rows = list(compiler.apply_converters(rows, converters))
        # the rows by old and new values, in one pass over the rows as they came
        width, new_at = len(wanted), [wanted.index(a) for a in attnames]
        groups: dict = {}
        for row in rows:
            pk = row[0]
            old_values = row[width:] if old_rows is None else tuple(map(old_rows[pk].get, attnames))
            try:
                key = (*map(_group_key, [row[i] for i in new_at]), *map(_group_key, old_values))
            except Exception:  # noqa: BLE001 - a value whose repr fails is simply not grouped
                key = object()
            group = groups.get(key)
            if group is None:
                group = groups[key] = (row, old_values, [], [])
            group[2].append(pk)
            value = pk if code_at is None else row[code_at]
            group[3].append(str(value if value not in (None, "") else pk))  # TrackedModel.entity_id
        alike = []
        using = self.db  # a property that asks the router: once, not per group
        for row, old_values, pks, entity_ids in groups.values():
            first = model.__new__(model)  # as Model.from_db would, without its per-field work
            first._state = ModelState()
            first._state.adding, first._state.db = False, using
            first.__dict__.update(zip(wanted, row, strict=False))  # the old values after them are not its own
            old = dict(zip(attnames, old_values, strict=True))
            alike.extend(_Alike(first, old, pks[start:start + _CHUNK], entity_ids[start:start + _CHUNK])
                         for start in range(0, len(pks), _CHUNK))
        return len(rows), alike

    def bulk_update(self, objs, fields, batch_size=None):
        spec = self._audit_spec()
        if spec is None:
            return super().bulk_update(objs, fields, batch_size=batch_size)
        objs = list(objs)
        attnames = spec.attnames_for(fields)
        with transaction.atomic(using=self.db, savepoint=False):
            old_rows = self._old_rows([o.pk for o in objs if o.pk is not None], attnames)
            token = _inside_bulk_update.set(True)
            try:
                count = super().bulk_update(objs, fields, batch_size=batch_size)
            finally:
                _inside_bulk_update.reset(token)
            codes = engine.prefetch_codes(spec, [*old_rows.values(), *(o.__dict__ for o in objs)], self.db,
                                           attnames)
            changed, changes = [], []
            for obj in objs:
                new = engine.current_values(obj, attnames)
                if obj.pk in old_rows:
                    change = engine.build_change(obj, spec, old=old_rows[obj.pk], new=new, code_cache=codes)
                    if change is not None:
                        changes.append(change)
                        changed.append(obj)
                state.remember(obj, new)
            _bulk_history(self.model, changed, update=True)
            engine.record_changes(changes, using=self.db)
        return count

    bulk_update.alters_data = True

    def bulk_create(self, objs, *args, **kwargs):
        spec = self._audit_spec()
        if spec is None:
            return super().bulk_create(objs, *args, **kwargs)
        with transaction.atomic(using=self.db, savepoint=False):
            objs = super().bulk_create(objs, *args, **kwargs)
            created = [o for o in objs if o.pk is not None]  # ignore_conflicts leaves pks unset: not recorded
            codes = engine.prefetch_codes(spec, [o.__dict__ for o in created], self.db)
            changes = []
            for obj in created:
                new = engine.current_values(obj, spec.attnames)
                changes.append(engine.build_change(obj, spec, old=None, new=new, code_cache=codes))
                state.of(obj).snapshot = dict(new)
            _bulk_history(self.model, created, update=False)
            engine.record_changes([c for c in changes if c is not None], using=self.db)
        return objs

    bulk_create.alters_data = True

    def delete(self):
        """Django's delete through :class:`AuditedCollector`, in one transaction with its
        audit rows."""
        if self._audit_spec() is None:
            return super().delete()
        with transaction.atomic(using=self.db, savepoint=False), engine.one_write_per_delete(self.db):
            return compat.delete_queryset(self, AuditedCollector)

    delete.alters_data = True
