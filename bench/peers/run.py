"""Our capture beside its peers, in one process and one run, on PostgreSQL.

    python -m bench.peers [--output PATH]

Five copies of ``MaintenanceRequest`` with its comments and attachments
(:mod:`bench.peers.models`): untracked (the baseline of every ratio); ours
(the product's capture, its audit_trail and update_history rows and the
simple-history snapshot, actor, IP, reason and request id in the context);
django-pghistory's triggers without context and with ``pghistory.context``
carrying actor, IP and reason; django-simple-history (its user from the
request, as its middleware sets it); django-auditlog (its actor and address
from ``set_actor``, as its middleware sets them).

Operations: the realistic edit (status, assignee and title through
``save()``), a title-only ``save()``, ``save(update_fields=[status,
assigned_to, updated_at])``, create, delete (with two comments and an
attachment cascading), and ``QuerySet.update()`` of ``BENCH_BULK`` rows;
each in autocommit and inside one transaction. Delete is also timed on our
model with the capture switched off, for the capture's own on ÷ off.

The variants take turns in small chunks (5 operations in autocommit, 20
inside a transaction; the order rotates every chunk) so that load from the
rest of the machine weighs on all alike. Results are medians (µs per
operation; ``QuerySet.update()`` per statement), with the ratio to the
untracked copy. A check before timing makes sure every tracked variant
wrote its rows.

Environment: ``BENCH_PEERS_N`` (operations per variant, kind and round,
default 60), ``BENCH_PEERS_ROUNDS`` (default 4), ``BENCH_BULK`` (default
1000). Needs PostgreSQL (pghistory is PostgreSQL-only): unreachable is a
skip.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import sys
import time
import types

VARIANTS = ("plain", "ours", "pghistory", "pghistory_context", "simple_history", "auditlog")
#: our model with the capture switched off, timed for delete only (the capture's own on ÷ off)
OURS_OFF = "ours_off"
LABELS = {
    "plain": "untracked", "ours": "ours", "pghistory": "pghistory", "pghistory_context": "pghistory+context",
    "simple_history": "simple-history", "auditlog": "auditlog", OURS_OFF: "ours, capture off",
}
OPS = ("edit", "title", "update_fields", "create", "delete", "queryset_update")
OP_LABELS = {
    "edit": "edit: status+assignee+title, save()",
    "title": "title only, save()",
    "update_fields": "save(update_fields=[status, assigned_to, updated_at])",
    "create": "create",
    "delete": "delete (cascade: 2 comments, 1 attachment)",
    "queryset_update": "QuerySet.update() of {bulk} rows",
}
TX_MODES = ("autocommit", "atomic")
CHUNK = {"autocommit": 5, "atomic": 20}
#: QuerySet.update() statements per variant, round and mode: each is one sample (24 per variant and mode
#: with 4 rounds), so that one statement slowed by the machine does not move the median
BULK_REPEATS = 6
#: the capture targets (issue 15): op -> (largest ratio to untracked, largest ratio to pghistory+context);
#: delete's first bound is ours on ÷ ours off; queryset_update's is µs added per row
TARGETS = {"edit": (1.5, 1.25), "create": (1.6, 1.25), "delete": (1.4, 1.25), "queryset_update": (50.0, 1.25)}


def _env_int(name: str, default: int) -> int:
    value = int(os.environ.get(name, default))
    if value < 1:
        raise SystemExit(f"{name} must be at least 1")
    return value


def setup_django(database_url: str) -> None:
    from bench.capture import setup_django as product_setup

    product_setup(database_url, settings="bench.settings_peers", run_syncdb=True)
    import pgtrigger

    pgtrigger.install()


# -- the variants ---------------------------------------------------------------------------


class Variant:
    """One copy of the models and the context its library is used with."""

    def __init__(self, name: str, models_: tuple, users):
        self.name = name
        self.request, self.comment, self.attachment = models_
        self.users = users

    @contextlib.contextmanager
    def active(self):
        from django.test.utils import override_settings

        from audit.context import audit_context

        user = self.users[0]
        if self.name == "ours":
            with audit_context(actor=user, reason="bench", ip_address="127.0.0.1", request_id="bench"):
                yield
        elif self.name == OURS_OFF:
            with audit_context(enabled=False), override_settings(SIMPLE_HISTORY_ENABLED=False):
                yield
        elif self.name == "pghistory_context":
            import pghistory

            with pghistory.context(user=user.pk, ip="127.0.0.1", reason="bench"):
                yield
        elif self.name == "simple_history":
            from simple_history.models import HistoricalRecords

            HistoricalRecords.context.request = types.SimpleNamespace(user=user)
            try:
                yield
            finally:
                del HistoricalRecords.context.request
        elif self.name == "auditlog":
            from auditlog.context import set_actor

            with set_actor(user, remote_addr="127.0.0.1"):
                yield
        else:
            yield


def _variants(users) -> dict[str, Variant]:
    from bench.peers import models as m

    copies = {
        "plain": (m.PlainRequest, m.PlainComment, m.PlainAttachment),
        "ours": (m.OursRequest, m.OursComment, m.OursAttachment),
        "pghistory": (m.PghRequest, m.PghComment, m.PghAttachment),
        "pghistory_context": (m.PghRequest, m.PghComment, m.PghAttachment),
        "simple_history": (m.ShRequest, m.ShComment, m.ShAttachment),
        "auditlog": (m.AlRequest, m.AlComment, m.AlAttachment),
        OURS_OFF: (m.OursRequest, m.OursComment, m.OursAttachment),
    }
    return {name: Variant(name, models_, users) for name, models_ in copies.items()}


def tracked_rows() -> dict[str, int]:
    """Rows each library has written so far."""
    from auditlog.models import LogEntry
    from django.db import connection

    from audit.models import AuditTrail, UpdateHistory
    from bench.peers import models as m

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pghistory_context")
        contexts = cursor.fetchone()[0]
    pgh = sum(getattr(m, f"Pgh{k}Event").objects.count() for k in ("Request", "Comment", "Attachment"))
    return {
        "ours": AuditTrail.objects.filter(entity_type__startswith="bench_").count() + UpdateHistory.objects.filter(
            table_name__startswith="bench_peers").count() + m.OursRequest.history.count(),
        "pghistory_events": pgh,
        "pghistory_contexts": contexts,
        "simple_history": m.ShRequest.history.count() + m.ShComment.history.count(),
        "auditlog": LogEntry.objects.count(),
    }


# -- where the time goes ---------------------------------------------------------------------


class DatabaseClock:
    """The time spent inside database calls: every statement (through Django's execute
    wrapper, which the capture's own cursor passes through too: the round trip, the server's
    work and, in autocommit, the commit) and every commit of a transaction. The rest of an
    operation's time is the client's Python (Django's, the library's, psycopg's)."""

    def __init__(self):
        self.ns = 0

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter_ns()
        try:
            return execute(sql, params, many, context)
        finally:
            self.ns += time.perf_counter_ns() - start

    @contextlib.contextmanager
    def installed(self, connection):
        commit = connection._commit

        def timed_commit():
            start = time.perf_counter_ns()
            try:
                return commit()
            finally:
                self.ns += time.perf_counter_ns() - start

        connection._commit = timed_commit
        try:
            with connection.execute_wrapper(self):
                yield
        finally:
            del connection._commit


CLOCK = DatabaseClock()


# -- the workload ---------------------------------------------------------------------------


class Workload:
    def __init__(self, *, n: int, bulk: int):
        from accounts.models import User
        from audit.context import audit_context

        self.n, self.bulk, self.seq, self.flip = n, bulk, 0, 0
        with audit_context(enabled=False):
            self.users = [User.objects.create_user(user_id=f"BPE00{i}", password="Bench-Pass-2025!", role="staff",
                                                   full_name=f"Bench Peer {i}") for i in (1, 2)]
        self.variants = _variants(self.users)
        self.bulk_ids = {}
        # rows of its own for each variant: pghistory and pghistory+context share a model, and an update
        # of rows the other variant has just set to the same value changes nothing (its trigger writes no event)
        for name in VARIANTS:
            v = self.variants[name]
            with self._quiet(v):
                objs = v.request.objects.bulk_create([self._new(v) for _ in range(bulk)])
            self.bulk_ids[name] = [o.pk for o in objs]

    @contextlib.contextmanager
    def _quiet(self, variant):
        """Set-up outside the timings, written without capture where it can be."""
        from audit.context import audit_context

        with audit_context(enabled=False):
            yield

    def _new(self, v):
        self.seq += 1
        return v.request(code=f"P{self.seq:08d}", vessel="MV Bench", title="Bilge pump service",
                         description="Routine", requested_by=self.users[0])

    # one operation of each kind, on one object of a variant

    def _edit(self, o):
        self.seq += 1
        o.status = "in_progress" if o.status != "in_progress" else "approved"
        o.assigned_to = self.users[self.seq % 2]
        o.title = f"Bilge pump service {self.seq}"
        o.save()

    def _title(self, o):
        self.seq += 1
        o.title = f"Bilge pump service {self.seq}"
        o.save()

    def _update_fields(self, o):
        self.seq += 1
        o.status = "pending" if o.status != "pending" else "approved"
        o.assigned_to = self.users[self.seq % 2]
        o.save(update_fields=["status", "assigned_to", "updated_at"])

    @staticmethod
    def _timed(tx: str, items, op) -> list[tuple[float, float]]:
        """``(µs in all, µs of it inside the database calls)`` per operation (per chunk's
        operation inside a transaction, its commit included)."""
        from django.db import transaction

        if tx == "autocommit":
            samples = []
            for item in items:
                start, db = time.perf_counter_ns(), CLOCK.ns
                op(item)
                samples.append(((time.perf_counter_ns() - start) / 1000, (CLOCK.ns - db) / 1000))
            return samples
        start, db = time.perf_counter_ns(), CLOCK.ns
        with transaction.atomic():
            for item in items:
                op(item)
        n = max(len(items), 1)
        return [((time.perf_counter_ns() - start) / 1000 / n, (CLOCK.ns - db) / 1000 / n)]

    def _interleaved(self, tx, names, objs: dict, op, out: dict) -> None:
        chunk = CHUNK[tx]
        for i, start in enumerate(range(0, self.n, chunk)):
            shift = i % len(names)
            for name in (*names[shift:], *names[:shift]):
                with self.variants[name].active():
                    out[name] += self._timed(tx, objs[name][start:start + chunk], op)

    def _add_children(self, name, objs) -> None:
        v = self.variants[name]
        with self._quiet(v):
            comments, files = [], []
            for o in objs:
                comments += [v.comment(request=o, author=self.users[0], body=f"note {k}") for k in (1, 2)]
                files.append(v.attachment(request=o, uploaded_by=self.users[0], file="attachments/x.pdf",
                                          original_name="x.pdf", content_type="application/pdf", size=1024))
            v.comment.objects.bulk_create(comments)
            v.attachment.objects.bulk_create(files)

    def run(self, tx: str, samples: dict) -> None:
        names = list(VARIANTS)
        objs = {name: [self._new(self.variants[name]) for _ in range(self.n)] for name in names}
        self._interleaved(tx, names, objs, lambda o: o.save(), samples["create"])
        self._interleaved(tx, names, objs, self._edit, samples["edit"])
        self._interleaved(tx, names, objs, self._title, samples["title"])
        self._interleaved(tx, names, objs, self._update_fields, samples["update_fields"])
        # delete: a fresh set for "ours, capture off" (created with the capture on, as the others)
        with self.variants["ours"].active():
            objs[OURS_OFF] = [self._new(self.variants[OURS_OFF]) for _ in range(self.n)]
            for o in objs[OURS_OFF]:
                o.save()
        for name in (*names, OURS_OFF):
            self._add_children(name, objs[name])
        self._interleaved(tx, (*names, OURS_OFF), objs, lambda o: o.delete(), samples["delete"])
        for i in range(BULK_REPEATS):
            shift = i % len(names)
            self.flip ^= 1
            priority = "high" if self.flip else "low"  # every row changes every time
            for name in (*names[shift:], *names[:shift]):
                v = self.variants[name]
                qs = v.request.objects.filter(pk__in=self.bulk_ids[name])
                with v.active():
                    samples["queryset_update"][name] += self._timed(tx, [(qs, priority)],
                                                                    lambda item: item[0].update(priority=item[1]))


def _median(values):
    return statistics.median(values) if values else None


def summarize(samples: dict, bulk: int) -> dict:
    """Medians per operation and variant: µs in all, the ratio to untracked, and the split into
    the database calls (``db_us``) and the client's Python (``python_us``); then ``floor``: what
    our figure would be if the capture added no Python to Django's own, i.e. our database time
    plus the baseline's Python (untracked; for delete, ours with capture off), in the unit of
    the operation's target."""
    out = {}
    for op, by_variant in samples.items():
        base = _median([total for total, _ in by_variant["plain"]])
        row = {}
        for name, values in by_variant.items():
            if not values:
                continue
            us = _median([total for total, _ in values])
            row[name] = {"us": round(us, 1), "ratio": round(us / base, 2), "samples": len(values),
                         "db_us": round(_median([db for _, db in values]), 1),
                         "python_us": round(_median([total - db for total, db in values]), 1)}
            if op == "queryset_update":
                row[name]["added_us_per_row"] = round((us - base) / bulk, 1)
        row["ours_to_pghistory_context"] = round(row["ours"]["us"] / row["pghistory_context"]["us"], 2)
        baseline = row[OURS_OFF] if op == "delete" else row["plain"]
        floor_us = row["ours"]["db_us"] + baseline["python_us"]
        if op == "delete":
            row["ours_capture_on_off"] = round(row["ours"]["us"] / row[OURS_OFF]["us"], 2)
        if op == "queryset_update":
            row["floor"] = round((row["ours"]["db_us"] - baseline["db_us"]) / bulk, 1)
        else:
            row["floor"] = round(floor_us / (baseline["db_us"] + baseline["python_us"]), 2)
        row["floor_to_pghistory_context"] = round(floor_us / row["pghistory_context"]["us"], 2)
        out[op] = row
    return out


def verdicts(result: dict) -> dict:
    """For each target of issue 15: the measured value and whether it is met."""
    found = {}
    for tx in TX_MODES:
        for op, (bound, peer_bound) in TARGETS.items():
            row = result[tx][op]
            if op == "delete":
                value, what = row["ours_capture_on_off"], "on/off"
            elif op == "queryset_update":
                value, what = row["ours"]["added_us_per_row"], "µs/row"
            else:
                value, what = row["ours"]["ratio"], "x untracked"
            peer = row["ours_to_pghistory_context"]
            found[f"{tx}.{op}"] = {"value": value, "bound": bound, "unit": what, "met": value <= bound,
                                   "to_pghistory_context": peer, "peer_bound": peer_bound,
                                   "peer_met": peer <= peer_bound}
            if "floor" in row:  # the same figures with no capture Python beyond Django's own
                found[f"{tx}.{op}"].update(floor=row["floor"], floor_to_pghistory_context=row["floor_to_pghistory_context"])
    return found


def table(result: dict) -> str:
    bulk = result.get("meta", {}).get("bulk_rows", 1000)
    cols = [*VARIANTS]
    head = f"{'mode':<11} {'operation':<52}" + "".join(f"{LABELS[c]:>20}" for c in cols) + f"{'ours/pgh+ctx':>14}"
    lines = [head, "-" * len(head)]
    for tx in TX_MODES:
        for op in OPS:
            row = result[tx][op]
            cells = []
            for c in cols:
                cell = row.get(c)
                cells.append(f"{cell['us']:>10,.0f} {cell['ratio']:>5.2f}x  " if cell else f"{'':>20}")
            extra = f"{row['ours_to_pghistory_context']:>13.2f}x"
            lines.append(f"{tx:<11} {OP_LABELS[op].format(bulk=f'{bulk:,}'):<52}" + "".join(cells) + extra)
            if op == "delete":
                lines.append(f"{'':<11} {'  delete, ours with capture off; capture on ÷ off':<52}"
                             f"{'':>20}{row[OURS_OFF]['us']:>10,.0f} {row['ours_capture_on_off']:>5.2f}x")
            if op == "queryset_update":
                lines.append(f"{'':<11} {'  µs added per row':<52}"
                             + "".join(f"{row[c]['added_us_per_row']:>18.1f}  " for c in cols))
    lines.append("")
    lines.append("targets (issue 15): ")

    def verdict(met, value, bound, unit):
        # a target missed says by how much: "NOT MET by 0.08x", "NOT MET by 22.1 µs/row"
        if met:
            return "met"
        gap = value - bound
        return f"NOT MET by {gap:.1f} {unit}" if unit == "µs/row" else f"NOT MET by {gap:.2f}x"

    missed = False
    for key, v in result.get("targets", {}).items():
        missed = missed or not (v["met"] and v["peer_met"])
        lines.append(f"  {key:<28} {v['value']:>7} {v['unit']:<12} (<= {v['bound']}): "
                     f"{verdict(v['met'], v['value'], v['bound'], v['unit'])};"
                     f"  ours / pghistory+context {v['to_pghistory_context']:.2f}x (<= {v['peer_bound']}): "
                     f"{verdict(v['peer_met'], v['to_pghistory_context'], v['peer_bound'], 'x')}")
        if "floor" in v and not (v["met"] and v["peer_met"]):
            lines.append(f"  {'':<28} with no capture Python beyond Django's own: {v['floor']} {v['unit']} "
                         f"({'within' if v['floor'] <= v['bound'] else 'still over'} its bound), "
                         f"{v['floor_to_pghistory_context']:.2f}x pghistory+context "
                         f"({'within' if v['floor_to_pghistory_context'] <= v['peer_bound'] else 'still over'})")
    lines.extend(["", "where the time goes: µs inside the database calls + µs of client Python, medians"])
    for tx in TX_MODES:
        for op in ("edit", "create", "delete", "queryset_update"):
            row = result[tx].get(op, {})
            parts = [f"{LABELS[c]} {row[c]['db_us']:,.0f} + {row[c]['python_us']:,.0f}"
                     for c in ("plain", "ours", OURS_OFF, "pghistory_context") if c in row and "db_us" in row[c]]
            if parts:
                lines.append(f"  {tx + '.' + op:<28} " + ";  ".join(parts))
    if missed:
        lines.append("  where a gap comes from, measured: docs/benchmarks.md, 'Capture beside the peers' "
                     "(the floor of a save, the delete as one statement, QuerySet.update(): where the time goes)")
    meta = result.get("meta", {})
    lines.append(f"({meta.get('server')}; n={meta.get('n')}, rounds={meta.get('rounds')}, load average "
                 f"{meta.get('load_average_1m')} on {meta.get('cpus')} CPUs; µs per operation, medians, "
                 f"ratio to the untracked copy)")
    return "\n".join(lines)


def run() -> dict:
    from django.db import connection

    from bench.capture import _server_version

    n = _env_int("BENCH_PEERS_N", 60)
    rounds = _env_int("BENCH_PEERS_ROUNDS", 4)
    bulk = _env_int("BENCH_BULK", 1000)
    load_before = os.getloadavg()[0]
    work = Workload(n=n, bulk=bulk)

    # warm-up (not measured), then the check that every tracked variant wrote its rows
    saved, work.n = work.n, min(n, 10)
    before = tracked_rows()
    work.run("autocommit", {op: {name: [] for name in (*VARIANTS, OURS_OFF)} for op in OPS})
    work.n = saved
    after = tracked_rows()
    written = {k: after[k] - before[k] for k in after}
    missing = [k for k, v in written.items() if v <= 0]
    if missing:
        raise SystemExit(f"bench.peers: {', '.join(missing)} wrote no rows in the warm-up: {written}")

    samples = {tx: {op: {name: [] for name in (*VARIANTS, OURS_OFF)} for op in OPS} for tx in TX_MODES}
    gc.collect()
    gc.disable()
    try:
        with CLOCK.installed(connection):
            for r in range(rounds):
                for tx in TX_MODES:
                    work.run(tx, samples[tx])
                    gc.collect()
                print(f"bench.peers: round {r + 1}/{rounds} done", file=sys.stderr)
    finally:
        gc.enable()
    from importlib.metadata import version

    import django
    import pghistory
    import simple_history

    result = {tx: summarize(samples[tx], bulk) for tx in TX_MODES}
    result["targets"] = verdicts(result)
    result["meta"] = {
        "n": n, "rounds": rounds, "bulk_rows": bulk, "chunk": CHUNK,
        "units": "microseconds per operation (queryset_update: per statement), medians; ratio to untracked",
        "server": _server_version(connection), "django": django.get_version(), "python": platform.python_version(),
        "peers": {"django-pghistory": version("django-pghistory"), "django-pgtrigger": version("django-pgtrigger"),
                  "django-simple-history": simple_history.__version__, "django-auditlog": version("django-auditlog")},
        "cpus": os.cpu_count(), "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "rows_written_in_warm_up": written,
    }
    del pghistory
    return result


def main(argv=None) -> int:
    from bench.capture import postgresql_database

    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", help="write the JSON here (default: stdout)")
    args = parser.parse_args(argv)
    with postgresql_database() as url:
        if url is None:
            result = {"skipped": "PostgreSQL unreachable at 127.0.0.1:5432"}
        else:
            setup_django(url)
            result = run()
            print(table(result), file=sys.stderr)
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text + "\n")
    else:
        print(text)
    return 0
