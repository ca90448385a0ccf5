"""Retention: legal holds and the batched purge (``manage.py purge_audit``).

- :func:`place_hold` / :func:`lift_hold`: a hold keeps an entity's, a user's
  and/or a time range's records from being purged; placing and lifting are
  recorded (a system event and an activity, in the same transaction).
- :func:`plan` counts what a purge would delete; :func:`purge` deletes it in
  short batches, each its own transaction: (optionally) archive the batch's
  rows to the gzip'd JSON Lines archive and fsync it, then ``SET LOCAL
  audit.allow_purge = 'on'`` (the append-only triggers' one exception, on
  PostgreSQL), delete by id, and append a ``purge`` link to the seal chain
  naming the deleted ids (so ``verify_audit`` still passes afterwards).
  ``update_history`` rows of a purged ``audit_trail`` row go with it.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from audit import conf
from audit.capture import writer
from audit.context import audit_context
from audit.models import AuditTrail, LegalHold, SealKind, UpdateHistory
from audit.operations import integrity
from core.errors import DomainError


def _purge_order(models: dict) -> tuple[str, ...]:
    """The seal's tables reordered for deleting: a table whose rows point at another audit table's
    rows by a foreign key comes before that table (the database refuses to delete an
    ``audit_trail`` row while its ``update_history`` rows remain); the tables with no such link
    follow in the seal's order."""
    parents = {table: {f.related_model._meta.db_table for f in model._meta.concrete_fields
                       if f.many_to_one and f.related_model._meta.db_table in models} - {table}
               for table, model in models.items()}
    linked = [t for t in models if parents[t] or any(t in p for p in parents.values())]
    order: list[str] = []
    while linked:
        child = next(t for t in linked if not any(t in parents[u] for u in linked if u != t))
        order.append(child)
        linked.remove(child)
    return (*order, *(t for t in models if t not in order))


#: The order the purge deletes in, derived from the seal's (integrity.TABLES): children first.
PURGE_ORDER = _purge_order(integrity.MODELS)


# -- legal holds ----------------------------------------------------------------------------------


def _code(actor) -> str:
    return writer.actor_code(actor) or "system"


@transaction.atomic
def place_hold(*, actor, reason: str, entity_type: str = "", entity_id: str = "", user_id: str = "",
               starts_at: dt.datetime | None = None, ends_at: dt.datetime | None = None) -> LegalHold:
    """Put records on hold: an entity (type and id), a user, a time range,
    or a combination (all given conditions must hold)."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("A legal hold needs a reason.")
    entity_type, entity_id, user_id = (entity_type or "").strip(), str(entity_id or "").strip(), \
        (user_id or "").strip()
    if bool(entity_type) != bool(entity_id):
        raise DomainError("An entity hold needs both the entity type and the entity id.")
    if not (entity_type or user_id or starts_at or ends_at):
        raise DomainError("Say what to hold: an entity, a user or a time range.")
    if starts_at and ends_at and starts_at > ends_at:
        raise DomainError("The hold's start is after its end.")
    hold = LegalHold.objects.create(entity_type=entity_type, entity_id=entity_id, user_id=user_id,
                                    starts_at=starts_at, ends_at=ends_at, reason=reason, placed_by=_code(actor))
    with audit_context(actor=actor, reason=reason):
        writer.write_system_event(event_type="legal_hold_placed", entity_type="legal_hold", entity_id=hold.pk,
                                  event_data={"hold": hold.describe(), "reason": reason}, severity="warning")
        writer.write_activity(activity="Placed legal hold", details=f"hold #{hold.pk} on {hold.describe()}: {reason}")
    return hold


@transaction.atomic
def lift_hold(*, hold: LegalHold, actor, reason: str) -> LegalHold:
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Lifting a legal hold needs a reason.")
    hold = LegalHold.objects.select_for_update().get(pk=hold.pk)
    if not hold.active:
        raise DomainError(f"Hold #{hold.pk} was already lifted.")
    hold.lifted_at, hold.lifted_by, hold.lift_reason = timezone.now(), _code(actor), reason
    hold.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
    with audit_context(actor=actor, reason=reason):
        writer.write_system_event(event_type="legal_hold_lifted", entity_type="legal_hold", entity_id=hold.pk,
                                  event_data={"hold": hold.describe(), "reason": reason}, severity="warning")
        writer.write_activity(activity="Lifted legal hold", details=f"hold #{hold.pk} on {hold.describe()}: {reason}")
    return hold


def active_holds(using: str = "default") -> list[LegalHold]:
    return list(LegalHold.objects.using(using).filter(lifted_at__isnull=True))


def _hold_q(table: str, hold: LegalHold, prefix: str = "") -> Q | None:
    """The rows of ``table`` a hold covers (None: the hold cannot apply)."""
    q = Q()
    if hold.entity_type:
        if table in ("audit_trail", "system_events"):
            q &= Q(**{f"{prefix}entity_type": hold.entity_type, f"{prefix}entity_id": hold.entity_id})
        else:
            return None
    if hold.user_id:
        if table == "system_events":
            return None
        q &= Q(**{f"{prefix}user_id": hold.user_id})
    if hold.starts_at:
        q &= Q(**{f"{prefix}timestamp__gte": hold.starts_at})
    if hold.ends_at:
        q &= Q(**{f"{prefix}timestamp__lte": hold.ends_at})
    return q


def held_q(table: str, holds: list[LegalHold]) -> Q | None:
    """One ``Q`` for every row of ``table`` under any of ``holds``."""
    combined = None
    for hold in holds:
        q = _hold_q(table, hold)
        if q is not None:
            combined = q if combined is None else combined | q
    return combined


def purgeable(table: str, cutoff: dt.datetime, holds: list[LegalHold], using: str = "default") -> QuerySet:
    """Rows of ``table`` older than ``cutoff`` and under no hold. An
    ``update_history`` row also stays while its ``audit_trail`` row is held
    (entity holds reach it through its trail row)."""
    model = integrity.MODELS[table]
    qs = model.objects.using(using).filter(timestamp__lt=cutoff)
    held = held_q(table, holds)
    if held is not None:
        qs = qs.exclude(held)
    if table == "update_history":
        trail_held = held_q("audit_trail", holds)
        if trail_held is not None:
            qs = qs.exclude(Exists(AuditTrail.objects.using(using).filter(trail_held, pk=OuterRef("audit_id"))))
    return qs.order_by()


def cutoffs(*, tables: list[str], older_than: int | None, now: dt.datetime | None = None) -> dict[str, dt.datetime]:
    now = now or timezone.now()
    return {t: now - dt.timedelta(days=older_than if older_than is not None else conf.retention_days(t))
            for t in tables}


@dataclass
class Plan:
    cutoffs: dict[str, dt.datetime]
    counts: dict[str, int]
    holds: list[LegalHold]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def plan(*, tables: list[str], older_than: int | None = None, using: str = "default") -> Plan:
    cuts = cutoffs(tables=tables, older_than=older_than)
    holds = active_holds(using)
    counts = {t: purgeable(t, cuts[t], holds, using).count() for t in PURGE_ORDER if t in cuts}
    return Plan(cuts, counts, holds)


# -- archive ------------------------------------------------------------------------------------


class Archive:
    """gzip'd JSON Lines: ``{"table": ..., "row": {...}}`` per line. Each
    batch is flushed through gzip (``Z_SYNC_FLUSH``) and fsynced before its
    rows are deleted, so an interrupted purge leaves a readable archive of
    every row it deleted."""

    def __init__(self, path):
        self.path = path
        self._raw = open(path, "xb")  # never overwrite an earlier archive
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=6)

    def write(self, table: str, rows: list[tuple]) -> None:
        columns = integrity.SPECS[table].columns
        lines = []
        for row in rows:
            record = dict(zip(columns, integrity.canonical_values(table, row)[1:], strict=True))
            lines.append(json.dumps({"table": table, "row": record}, ensure_ascii=False, sort_keys=True,
                                    default=str))
        if lines:
            self._gz.write(("\n".join(lines) + "\n").encode())

    def sync(self) -> None:
        self._gz.flush(zlib.Z_SYNC_FLUSH)
        self._raw.flush()
        os.fsync(self._raw.fileno())

    def close(self) -> None:
        self._gz.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()


# -- the purge ----------------------------------------------------------------------------------


def _fetch(connection, table: str, ids: list[int], where_column: str = "id") -> list[tuple]:
    if not ids:
        return []
    sql = integrity._select(table, connection, where=f"WHERE {where_column} IN ({', '.join(['%s'] * len(ids))})")
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        return cursor.fetchall()


def _delete(connection, table: str, ids: list[int], column: str = "id") -> int:
    if not ids:
        return 0
    total = 0
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 10_000):
            chunk = ids[start:start + 10_000]
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(table)} WHERE {column} IN "
                           f"({', '.join(['%s'] * len(chunk))})", chunk)
            total += cursor.rowcount
    return total


def purge(*, plan: Plan, batch_size: int = 5000, archive: Archive | None = None, using: str | None = None,
          on_rows: Callable[[int], None] | None = None) -> dict[str, int]:
    """Delete what ``plan`` describes, batch by batch. Returns the rows
    deleted per table (``update_history`` includes rows that went with their
    trail row). Records the purge as the system event ``audit_purged``."""
    using = using or conf.purge_database()  # the purge role's connection when DATABASE_PURGE_URL is set
    connection = connections[using]
    postgres = connection.vendor == "postgresql"
    deleted = dict.fromkeys(plan.counts, 0)
    if "audit_trail" in plan.counts:
        deleted.setdefault("update_history", 0)
    for table in PURGE_ORDER:
        if table not in plan.counts:
            continue
        qs = purgeable(table, plan.cutoffs[table], plan.holds, using)
        last_id = 0
        while True:
            ids = list(qs.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            last_id = ids[-1]
            with integrity.chain_lock(using):
                with transaction.atomic(using=using):
                    if postgres:
                        with connection.cursor() as cursor:
                            cursor.execute("SET LOCAL audit.allow_purge = 'on'")
                    ranges = {table: integrity.to_ranges(ids)}
                    history_ids: list[int] = []
                    if table == "audit_trail":
                        history_ids = sorted(UpdateHistory.objects.using(using).filter(audit_id__in=ids)
                                             .values_list("pk", flat=True))
                        ranges["update_history"] = integrity.to_ranges(history_ids)
                    if archive is not None:
                        archive.write(table, _fetch(connection, table, ids))
                        if history_ids:
                            archive.write("update_history", _fetch(connection, "update_history", history_ids))
                        archive.sync()  # on disk before anything is deleted
                    if history_ids:
                        deleted["update_history"] += _delete(connection, "update_history", history_ids)
                    count = _delete(connection, table, ids)
                    deleted[table] += count
                    link = integrity.append_link(kind=SealKind.PURGE, ranges=ranges, using=using,
                                                 details={"table": table,
                                                          "cutoff": integrity.utc_text(plan.cutoffs[table])})
                integrity.write_anchor(link)
            if on_rows:
                on_rows(count)
    with audit_context(actor="system"):
        writer.write_system_event(
            event_type="audit_purged", severity="info",
            event_data={"deleted": deleted, "cutoffs": {t: integrity.utc_text(c) for t, c in plan.cutoffs.items()},
                        "holds": [h.pk for h in plan.holds], "archive": str(archive.path) if archive else ""},
            using=using)
    return deleted
