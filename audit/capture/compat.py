"""Every private Django, simple-history and psycopg API the capture relies
on, in one place, each with what it relies on. :func:`problems` checks them
against the installed versions; a test (``tests/audit/capture/test_compat.py``)
and the system check ``audit.E010`` fail loudly when an upgrade changes one,
instead of the capture going silently wrong.

Nothing here imports from the rest of :mod:`audit.capture`.
"""

from __future__ import annotations

import inspect
from collections import Counter
from functools import reduce
from operator import attrgetter, or_

from django.db import connections, router, transaction
from django.db.models import Model, QuerySet, deletion, signals
from django.db.models import sql as djsql

# -- Django: the model methods the one-statement save overrides ---------------------------------

#: ``Model._do_insert`` / ``_do_update`` are the last steps of ``Model.save()``
#: before the SQL; the one-statement path replaces them (PostgreSQL) so that the
#: row's INSERT or UPDATE and its audit rows are one statement. Their
#: signatures as of Django 5.2:
DO_INSERT = ("self", "manager", "using", "fields", "returning_fields", "raw")
DO_UPDATE = ("self", "base_qs", "using", "pk_val", "values", "update_fields", "forced_update")
#: ``refresh_from_db`` is public, but its override must keep its signature
REFRESH_FROM_DB = ("self", "using", "fields", "from_queryset")


class ModelHooks:
    """The overrides of Django's private ``Model`` methods, each handing
    over to a method of the capture's model mixin
    (:class:`audit.capture.querysets.AuditedModelMixin`) that returns None
    when Django's own path must run."""

    def _do_insert(self, manager, using, fields, returning_fields, raw):
        rows = self._capture_insert(using, fields, returning_fields, raw)
        if rows is not None:
            return rows
        return super()._do_insert(manager, using, fields, returning_fields, raw)

    def _do_update(self, base_qs, using, pk_val, values, update_fields, forced_update):
        updated = self._capture_update(base_qs, using, pk_val, values, update_fields)
        if updated is not None:
            return updated
        return super()._do_update(base_qs, using, pk_val, values, update_fields, forced_update)

    def refresh_from_db(self, using=None, fields=None, from_queryset=None):
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        self._capture_refreshed()


#: the UPDATE text of a plain save, by (model, database, its fields and which of them are NULL),
#: once Django's compiler has written it and the parameters below were found equal to its own;
#: False where they were not (that shape always takes Django's compiler)
_PLAIN_UPDATES: dict[tuple, str | bool] = {}


def _plain_update_key(base_qs, values, using) -> tuple | None:
    """The shape of an UPDATE whose text does not depend on its values: the model's base queryset
    with no condition of its own, every value a plain one (no expression, no model instance) of
    a field with the ``%s`` placeholder. None for anything else."""
    query = base_qs.query
    if query.where or query.annotations or query.extra or query.select_related:
        return None
    shape = []
    for field, _model, value in values:
        if (hasattr(value, "resolve_expression") or hasattr(value, "prepare_database_save")
                or hasattr(field, "get_placeholder")):
            return None
        shape.append((field.attname, value is None))
    return (base_qs.model, using, tuple(shape))


def _plain_update_params(model, pk_val, values, connection) -> list | None:
    """The parameters Django's compiler binds to a plain UPDATE: each value through its field's
    ``get_db_prep_save`` (NULL is written in the text, not bound), then the primary key as an
    exact lookup prepares it."""
    params = []
    for field, _model, value in values:
        if value is None:
            continue
        prepared = field.get_db_prep_save(value, connection=connection)
        if prepared is None or hasattr(prepared, "as_sql"):
            return None
        params.append(prepared)
    pk = model._meta.pk
    params.append(pk.get_db_prep_value(pk.get_prep_value(pk_val), connection, prepared=True))
    return params


def update_sql(base_qs, pk_val, values, using) -> tuple[str, list] | None:
    """The UPDATE ``Model._do_update`` would run (its ``values`` are
    ``(field, model, value)`` triples), or None when it is not one plain
    statement. Relies on ``QuerySet.query.chain(UpdateQuery)``,
    ``UpdateQuery.add_update_fields`` and ``related_updates`` (as
    ``QuerySet._update`` uses them).

    Compiling the UPDATE (a filtered queryset, an UpdateQuery, its compiler) was the largest
    Python cost of a captured save. A save of the same fields writes the same text, so a plain
    one (:func:`_plain_update_key`) reuses the text Django wrote for its shape, with the
    parameters bound as Django binds them; the first save of each shape compiles through Django
    and checks that those parameters are Django's own, else its shape keeps Django's path."""
    key = _plain_update_key(base_qs, values, using)
    cached = _PLAIN_UPDATES.get(key) if key is not None else None
    if cached:
        params = _plain_update_params(base_qs.model, pk_val, values, connections[using])
        if params is not None:
            return cached, params
    compiled = _compiled_update(base_qs, pk_val, values, using)
    if key is not None and cached is None and compiled is not None:
        params = _plain_update_params(base_qs.model, pk_val, values, connections[using])
        _PLAIN_UPDATES[key] = compiled[0] if params == compiled[1] else False
    return compiled


def _compiled_update(base_qs, pk_val, values, using) -> tuple[str, list] | None:
    """Django's compiler's UPDATE for ``Model._do_update``'s arguments."""
    query = base_qs.filter(pk=pk_val).query.chain(djsql.UpdateQuery)
    query.add_update_fields(values)
    query.annotations = {}
    if query.related_updates:
        return None
    sql, params = query.get_compiler(using).as_sql()
    return (sql, list(params)) if sql else None


#: INSERT texts by shape (model, database, fields, returning fields), as :data:`_PLAIN_UPDATES`
#: for UPDATEs: a create of the same fields writes the same text, its values bound; False: the
#: shape's parameters were not the plain ones (:func:`_plain_insert_params`), it keeps Django's path
_PLAIN_INSERTS: dict[tuple, str | bool] = {}


def _plain_insert_key(model, fields, returning_fields, using, raw) -> tuple | None:
    """The shape of an INSERT whose text does not depend on its values: no raw save, no field with
    a placeholder of its own. None for anything else."""
    if raw or any(hasattr(field, "get_placeholder") for field in fields):
        return None
    return (model, using, tuple(f.attname for f in fields), tuple(f.attname for f in returning_fields or ()))


def _plain_insert_params(instance, fields, connection, *, pre_save=True) -> list | None:
    """The parameters Django's compiler binds to a plain INSERT (``SQLInsertCompiler.prepare_value``
    of ``pre_save_val``): each field's ``pre_save`` (which sets ``auto_now`` on the instance), then
    its ``get_db_prep_save``; None when a value is an expression. ``pre_save=False``: the values
    the instance holds after a compile has run ``pre_save``."""
    params = []
    for field in fields:
        value = field.pre_save(instance, True) if pre_save else getattr(instance, field.attname)
        if hasattr(value, "resolve_expression"):
            return None
        params.append(field.get_db_prep_save(value, connection=connection))
    return params


def insert_sql(model, instance, fields, returning_fields, using, raw):
    """The INSERT ``Model._do_insert`` would run, as ``(sql, params,
    compiler)``, or None when it is not one statement returning only the
    primary key. Relies on ``InsertQuery.insert_values`` (which runs the
    fields' ``pre_save``, so ``auto_now`` is set on the instance) and on the
    compiler's ``returning_fields`` / ``returning_params`` (as
    ``QuerySet._insert`` sets them).

    As :func:`update_sql` does for UPDATEs, a create of a shape seen before reuses the text
    Django's compiler wrote for it, with the parameters bound as Django binds them (the
    compiler returned then compiles nothing: it converts the returned row); the first create of
    each shape compiles through Django and checks that those parameters are Django's own, else
    its shape keeps Django's path."""
    connection = connections[using]
    key = _plain_insert_key(model, fields, returning_fields, using, raw)
    cached = _PLAIN_INSERTS.get(key) if key is not None else None
    if cached:
        params = _plain_insert_params(instance, fields, connection)
        if params is not None:
            return cached, params, djsql.InsertQuery(model).get_compiler(using=using)
    query = djsql.InsertQuery(model)
    query.insert_values(fields, [instance], raw=raw)
    compiler = query.get_compiler(using=using)
    compiler.returning_fields = returning_fields
    statements = compiler.as_sql()
    if len(statements) != 1 or compiler.returning_params:
        return None
    sql, params = statements[0]
    if key is not None and cached is None:
        plain = _plain_insert_params(instance, fields, connection, pre_save=False)
        _PLAIN_INSERTS[key] = sql if plain == list(params) else False
    return sql, list(params), compiler


def converted(compiler, model, fields, rows) -> list[tuple]:
    """Returned rows through the fields' database converters, as
    ``SQLInsertCompiler.execute_sql`` does (``get_converters`` /
    ``apply_converters``)."""
    cols = [field.get_col(model._meta.db_table) for field in fields]
    converters = compiler.get_converters(cols)
    rows = [tuple(r) for r in rows]
    if converters:
        rows = [tuple(r) for r in compiler.apply_converters(rows, converters)]
    return rows


def update_query(query, values: dict):
    """``query`` (a QuerySet's) as an UpdateQuery setting ``values``, as
    ``QuerySet.update()`` builds it (``add_update_values``), or None when it
    would run more than one statement (``related_updates``) or is ordered."""
    query = query.chain(djsql.UpdateQuery)
    query.add_update_values(values)
    if query.order_by or query.related_updates:
        return None
    query.annotations = {}
    return query


# -- Django: the delete --------------------------------------------------------------------------

#: ``Collector.delete`` runs, in one transaction, the ``pre_delete`` signals, the fast deletes,
#: the field updates, then per model its ``DELETE`` and its ``post_delete`` signals. The
#: captured delete replaces only that last step (:meth:`Collector.delete_instances`), so
#: :class:`Collector` repeats Django 5.2's method around it, and ``Model.delete`` /
#: ``QuerySet.delete`` are repeated in :func:`delete_model` / :func:`delete_queryset` to use
#: it. The sources they repeat, by SHA-256 prefix (:func:`problems` reports a change):
DELETE_SOURCES = {"Collector.delete": "6fc1aeb89d3dc298", "Model.delete": "2ce5ebcdb1bbfcd0",
                  "QuerySet.delete": "36214e4533302e92"}


class Collector(deletion.Collector):
    """Django's Collector with its last step, the instances' ``DELETE`` statements and their
    ``post_delete`` signals, in :meth:`delete_instances`, for a subclass to replace."""

    def delete_instances(self, deleted_counter) -> None:
        """Django's own: per model (in ``self.data``'s order) its DELETE, then its post_delete."""
        for model, instances in self.data.items():
            query = djsql.DeleteQuery(model)
            count = query.delete_batch([obj.pk for obj in instances], self.using)
            if count:
                deleted_counter[model._meta.label] += count
            self.send_post_delete(model, instances)

    def send_post_delete(self, model, instances) -> None:
        if not model._meta.auto_created:
            for obj in instances:
                signals.post_delete.send(sender=model, instance=obj, using=self.using, origin=self.origin)

    def delete(self):  # Django 5.2's Collector.delete, its last loop in delete_instances()
        for model, instances in self.data.items():
            self.data[model] = sorted(instances, key=attrgetter("pk"))
        self.sort()
        deleted_counter = Counter()
        if len(self.data) == 1 and len(instances) == 1:
            instance = list(instances)[0]
            if self.can_fast_delete(instance):
                with transaction.mark_for_rollback_on_error(self.using):
                    count = djsql.DeleteQuery(model).delete_batch([instance.pk], self.using)
                setattr(instance, model._meta.pk.attname, None)
                return count, {model._meta.label: count}
        with transaction.atomic(using=self.using, savepoint=False):
            for model, obj in self.instances_with_model():
                if not model._meta.auto_created:
                    signals.pre_delete.send(sender=model, instance=obj, using=self.using, origin=self.origin)
            for qs in self.fast_deletes:
                count = qs._raw_delete(using=self.using)
                if count:
                    deleted_counter[qs.model._meta.label] += count
            for (field, value), instances_list in self.field_updates.items():
                updates, objs = [], []
                for instances in instances_list:
                    if isinstance(instances, QuerySet) and instances._result_cache is None:
                        updates.append(instances)
                    else:
                        objs.extend(instances)
                if updates:
                    reduce(or_, updates).update(**{field.name: value})
                if objs:
                    query = djsql.UpdateQuery(objs[0].__class__)
                    query.update_batch(list({obj.pk for obj in objs}), {field.name: value}, self.using)
            for instances in self.data.values():
                instances.reverse()
            self.delete_instances(deleted_counter)
        for model, instances in self.data.items():
            for instance in instances:
                setattr(instance, model._meta.pk.attname, None)
        return sum(deleted_counter.values()), dict(deleted_counter)


def delete_model(instance, collector_class, using=None, keep_parents=False):
    """Django 5.2's ``Model.delete`` with ``collector_class``."""
    if not instance._is_pk_set():
        raise ValueError(f"{instance._meta.object_name} object can't be deleted because its "
                         f"{instance._meta.pk.attname} attribute is set to None.")
    using = using or router.db_for_write(instance.__class__, instance=instance)
    collector = collector_class(using=using, origin=instance)
    collector.collect([instance], keep_parents=keep_parents)
    return collector.delete()


def delete_queryset(queryset, collector_class):
    """Django 5.2's ``QuerySet.delete`` with ``collector_class``."""
    queryset._not_support_combined_queries("delete")
    if queryset.query.is_sliced:
        raise TypeError("Cannot use 'limit' or 'offset' with delete().")
    if queryset.query.distinct_fields:
        raise TypeError("Cannot call delete() after .distinct(*fields).")
    if queryset._fields is not None:
        raise TypeError("Cannot call delete() after .values() or .values_list()")
    del_query = queryset._chain()
    del_query._for_write = True
    del_query.query.select_for_update = False
    del_query.query.select_related = False
    del_query.query.clear_ordering(force=True)
    collector = collector_class(using=del_query.db, origin=queryset)
    collector.collect(del_query)
    deleted = collector.delete()
    queryset._result_cache = None
    return deleted


def _delete_problems() -> list[str]:
    import hashlib

    found = []
    for name, func in (("Collector.delete", deletion.Collector.delete), ("Model.delete", Model.delete),
                       ("QuerySet.delete", QuerySet.delete)):
        digest = hashlib.sha256(inspect.getsource(func).encode()).hexdigest()[:16]
        if digest != DELETE_SOURCES[name]:
            found.append(f"django {name} changed (source {digest}, audit.capture.compat repeats "
                         f"{DELETE_SOURCES[name]})")
    return found


# -- Django: signals ------------------------------------------------------------------------------


def live_receivers(signal, sender) -> list:
    """The synchronous receivers ``signal`` would call for ``sender``
    (``Signal._live_receivers`` returns ``(sync, async)`` since Django 5.0)."""
    sync_receivers, _async = signal._live_receivers(sender)
    return list(sync_receivers)


# -- Django: a test case's transaction --------------------------------------------------------------

#: Django's ``TestCase`` marks the atomic blocks it opens around each test
#: (``TestCase._enter_atomics`` sets ``atomic._from_testcase = True``; ``Atomic.__init__`` sets it
#: False for every other block). It is the only way to tell a test case's transaction from one the
#: application opened: the rows written "outside the transaction" of a refused action go through
#: a second connection only in the latter (:func:`audit.activity.outside_transaction`).
FROM_TESTCASE = "_from_testcase"


def in_test_case_transaction(connection) -> bool:
    """Whether one of ``connection``'s open atomic blocks (``connection.atomic_blocks``) is a
    test case's own."""
    return any(getattr(block, FROM_TESTCASE, False) for block in connection.atomic_blocks)


# -- simple-history --------------------------------------------------------------------------------

#: the revert view of simple-history's admin, ``<object id>/history/<version id>/``
#: (``SimpleHistoryAdmin.get_urls`` registers ``^([^/]+)/history/([^/]+)/$`` for
#: ``history_form_view``), which :class:`audit.admin.revert.RevertHistoryAdmin` overrides
#: to refuse a revert or to run it with its reason and the ``revert`` action in the audit context
SIMPLE_HISTORY_REVERT_URL = "^([^/]+)/history/([^/]+)/$"
HISTORY_FORM_VIEW = ("self", "request", "object_id", "version_id", "extra_context")

#: the attributes of ``HistoricalRecords`` the capture reads to decide whether it can
#: write simple-history's rows itself, and the methods it disconnects or calls
HISTORICAL_RECORDS_ATTRIBUTES = ("m2m_fields", "cascade_delete_history", "get_user", "user_id_field",
                                 "user_model", "history_id_field", "fields_included", "post_save",
                                 "post_delete", "create_historical_record")


def default_get_user():
    """simple-history's default ``get_user`` (the private
    ``simple_history.models._default_get_user``): only with it does the
    history user come from the request as the capture resolves it."""
    from simple_history.models import _default_get_user

    return _default_get_user


# -- psycopg -----------------------------------------------------------------------------------------

#: ``Cursor._send_query_prepared(name, pgq, *, binary=None)``: psycopg keeps the query it
#: ran (``_query``) only when it did not prepare it; Django's query log reads it from there
SEND_QUERY_PREPARED = "_send_query_prepared"


def capture_cursor_class():
    """A psycopg cursor that binds on the server (so psycopg can prepare what
    it runs) and keeps the statement it ran for Django's query log; None
    without psycopg 3."""
    try:
        import psycopg
    except ImportError:
        return None

    class CaptureCursor(psycopg.Cursor):
        def _send_query_prepared(self, name, pgq, *args, **kwargs):
            self._query = pgq
            return super()._send_query_prepared(name, pgq, *args, **kwargs)

    return CaptureCursor


# -- the check ---------------------------------------------------------------------------------------


def _parameters(func) -> tuple[str, ...]:
    return tuple(inspect.signature(func).parameters)


def _test_case_problems() -> list[str]:
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.transaction import Atomic
    from django.test import TestCase

    found = []
    if not isinstance(getattr(connections[DEFAULT_DB_ALIAS], "atomic_blocks", None), list):
        found.append("BaseDatabaseWrapper.atomic_blocks is no longer a list")
    if getattr(Atomic(DEFAULT_DB_ALIAS, True, False), FROM_TESTCASE, None) is not False:
        found.append(f"django.db.transaction.Atomic no longer sets {FROM_TESTCASE} = False")
    if f"{FROM_TESTCASE} = True" not in inspect.getsource(TestCase._enter_atomics):
        found.append(f"django.test.TestCase._enter_atomics no longer marks its blocks {FROM_TESTCASE}")
    return found


def problems() -> list[str]:
    """What no longer holds in the installed Django, simple-history or
    psycopg (empty when everything above is as relied on)."""
    found = []
    for name, expected in (("_do_insert", DO_INSERT), ("_do_update", DO_UPDATE),
                           ("refresh_from_db", REFRESH_FROM_DB)):
        actual = _parameters(getattr(Model, name))
        if actual != expected:
            found.append(f"django.db.models.Model.{name}{actual} is not {expected}")
    for cls, name in ((djsql.UpdateQuery, "add_update_fields"), (djsql.UpdateQuery, "add_update_values"),
                      (djsql.InsertQuery, "insert_values")):
        if not callable(getattr(cls, name, None)):
            found.append(f"django.db.models.sql.{cls.__name__}.{name} is gone")
    if not hasattr(djsql.UpdateQuery(Model), "related_updates"):
        found.append("UpdateQuery.related_updates is gone")
    from django.db.models.signals import post_save

    try:
        result = post_save._live_receivers(Model)
    except AttributeError:
        found.append("django.dispatch.Signal._live_receivers is gone")
    else:
        if not (isinstance(result, tuple) and len(result) == 2):
            found.append("Signal._live_receivers no longer returns (sync, async)")
    found.extend(_test_case_problems())
    found.extend(_delete_problems())
    try:
        from simple_history.admin import SimpleHistoryAdmin
        from simple_history.models import HistoricalRecords, _default_get_user  # noqa: F401
    except ImportError as exc:
        found.append(f"simple-history: {exc}")
    else:
        missing = [a for a in HISTORICAL_RECORDS_ATTRIBUTES if not hasattr(HistoricalRecords(), a)]
        if missing:
            found.append(f"simple_history HistoricalRecords lost {', '.join(missing)}")
        if _parameters(SimpleHistoryAdmin.history_form_view) != HISTORY_FORM_VIEW:
            found.append(f"SimpleHistoryAdmin.history_form_view is no longer {HISTORY_FORM_VIEW}")
        source = inspect.getsource(SimpleHistoryAdmin.get_urls)
        if SIMPLE_HISTORY_REVERT_URL not in source:
            found.append(f"SimpleHistoryAdmin.get_urls no longer registers {SIMPLE_HISTORY_REVERT_URL}")
    try:
        import psycopg
    except ImportError:
        pass
    else:
        method = getattr(psycopg.Cursor, SEND_QUERY_PREPARED, None)
        if method is None or _parameters(method)[:3] != ("self", "name", "pgq"):
            found.append(f"psycopg.Cursor.{SEND_QUERY_PREPARED}(self, name, pgq, ...) changed")
    return found
