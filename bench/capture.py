"""Cost of audit capture: the same workload with capture on and off, in one
process, on one database.

    python -m bench.capture --db sqlite|postgresql [--output PATH]

Run by ``python -m bench`` (``make bench``) once per database, each in its own
process because Django reads ``DATABASE_URL`` once, at set-up. The SQLite
database is a temporary file; the PostgreSQL one (``bench_marine`` at
127.0.0.1:5432, user postgres; ``BENCH_PG_ADMIN_URL`` names another server) is created and dropped
here. An unreachable server is a skip, not a failure.

Workload, on maintenance requests (a tracked model with a simple-history
snapshot): create, update through ``save()``, update through
``save(update_fields=[...])``, delete, and ``QuerySet.update()`` of
``BENCH_BULK`` (1,000) rows; each in autocommit (one transaction per
operation) and inside one transaction (``atomic`` around a chunk of
operations, time per operation); then an API ``PATCH`` of a
maintenance request end to end (test client, Bearer token). On PostgreSQL
also a captured update through ``save()`` with its statement prepared (the
default) and not (``AUDIT_PREPARED_STATEMENTS`` off), in autocommit.

"On" is everything the product does: the audit_trail row, its update_history
rows and the simple-history snapshot. "Off" is plain Django:
``audit_context(enabled=False)`` and ``SIMPLE_HISTORY_ENABLED=False``, and
for the API a middleware stack without the audit middleware. On and off
alternate in small chunks (5 operations in autocommit, 20 inside a
transaction, one PATCH; the order swaps every chunk) so that load from
anything else on the machine weighs on both alike. Results are medians. The run checks that "off" wrote no audit row and "on" did.

Environment: ``BENCH_N`` (operations of each kind per mode and round,
default 80), ``BENCH_ROUNDS`` (default 6), ``BENCH_BULK`` (rows of the
QuerySet.update(), default 1000), ``BENCH_API_N`` (PATCH requests per mode
and round, default ``BENCH_N // 2``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
import warnings

OPS = ("create", "update", "update_fields", "delete", "queryset_update")
TX_MODES = ("autocommit", "atomic")
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB_NAME = "bench_marine"
#: operations per on/off alternation: per-operation samples in autocommit,
#: one per-operation mean per chunk inside a transaction
CHUNK = {"autocommit": 5, "atomic": 20}
BULK_REPEATS = 2  # QuerySet.update() statements per mode, per round and transaction mode


def _env_int(name: str, default: int) -> int:
    value = int(os.environ.get(name, default))
    if value < 1:
        raise SystemExit(f"{name} must be at least 1")
    return value


# -- databases -----------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_database():
    folder = tempfile.mkdtemp(prefix="bench-capture-")
    try:
        yield f"sqlite:///{folder}/bench.sqlite3"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def database_name(env_var: str, default: str) -> str:
    """The scratch database's name: ``default`` unless ``env_var`` names another (letters, digits
    and underscores only: it is written into ``CREATE DATABASE``)."""
    name = os.environ.get(env_var, default)
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"{env_var} must be letters, digits and underscores")
    return name


@contextlib.contextmanager
def postgresql_database(env_var: str = "BENCH_PG_DB", default: str = PG_DB_NAME, *, reuse: bool = False,
                        keep: bool = False):
    """Create a scratch database, ``default`` unless ``env_var`` names another
    (so that two benches on one server never drop each other's database),
    dropping a leftover, and drop it afterwards; yields its URL, or None when
    the server cannot be reached. Every bench section's database comes from here.
    ``reuse``: an existing database of that name is kept as it is (the caller decides
    whether its data will do); ``keep``: it is not dropped afterwards."""
    import psycopg

    admin_url = os.environ.get("BENCH_PG_ADMIN_URL", PG_ADMIN_URL)
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        print(f"bench: PostgreSQL unreachable at {admin_url} ({exc.__class__.__name__}); skipped", file=sys.stderr)
        yield None
        return
    name = database_name(env_var, default)
    try:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
        if exists and not reuse:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        if not (exists and reuse):
            admin.execute(f"CREATE DATABASE {name}")
        base = admin_url.rsplit("/", 1)[0]
        yield f"{base}/{name}"
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may never have been set up
            pass
        if not keep:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def setup_django(database_url: str, *, settings: str = "marine_center.settings_test", run_syncdb: bool = False) -> None:
    """``run_syncdb``: also create the tables of apps without migrations (the
    bench-only app of :mod:`bench.peers`, with its own ``settings``)."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    os.environ["DEBUG"] = "0"  # DEBUG keeps every query in memory
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost,127.0.0.1"
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic here
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if run_syncdb:  # after the migrations: the bench-only tables refer to the product's
        call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 for a server the bench starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc, timeout: float = 60) -> bool:
    """Wait until the server ``proc`` started accepts connections on ``port`` of 127.0.0.1;
    False when it exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                return False
            time.sleep(0.2)


# -- switches --------------------------------------------------------------------------------


@contextlib.contextmanager
def capture(on: bool, actor):
    """On: the product as shipped, with an actor and a reason as a request
    would give. Off: plain Django (no audit rows, no history snapshot)."""
    from django.test.utils import override_settings

    from audit.context import audit_context

    if on:
        with audit_context(actor=actor, reason="bench", ip_address="127.0.0.1", request_id="bench"):
            yield
    else:
        with audit_context(enabled=False), override_settings(SIMPLE_HISTORY_ENABLED=False):
            yield


def audit_row_count() -> int:
    from audit.models import AuditTrail, UpdateHistory
    from maintenance.models import MaintenanceRequest

    return AuditTrail.objects.count() + UpdateHistory.objects.count() + MaintenanceRequest.history.count()


# -- the workload ------------------------------------------------------------------------------


class Workload:
    def __init__(self, *, n: int, bulk: int, api_n: int):
        from accounts.models import User

        self.n, self.bulk, self.api_n = n, bulk, api_n
        self.seq = 0
        with capture(False, None):
            self.user = User.objects.create_user(user_id="BEN001", password="Bench-Pass-2025!", role="admin",
                                                 full_name="Bench Admin")
            self.bulk_ids = self._make_bulk_rows()
        self.flip = 0

    def _code(self) -> str:
        self.seq += 1
        return f"B{self.seq:07d}"

    def _new(self):
        from maintenance.models import MaintenanceRequest

        return MaintenanceRequest(code=self._code(), vessel="MV Bench", title="Bilge pump service",
                                  description="Routine", requested_by=self.user)

    def _make_bulk_rows(self) -> list[int]:
        from maintenance.models import MaintenanceRequest

        objs = MaintenanceRequest.objects.bulk_create([self._new() for _ in range(self.bulk)])
        return [o.pk for o in objs]

    def _timed(self, tx: str, items, op) -> list[float]:
        """Run ``op(item)`` for each item; per-operation microseconds: one
        sample per operation in autocommit, one (the batch mean) in atomic."""
        from django.db import transaction

        if tx == "autocommit":
            samples = []
            for item in items:
                start = time.perf_counter_ns()
                op(item)
                samples.append((time.perf_counter_ns() - start) / 1000)
            return samples
        start = time.perf_counter_ns()
        with transaction.atomic():
            for item in items:
                op(item)
        return [(time.perf_counter_ns() - start) / 1000 / max(len(items), 1)]

    def _interleaved(self, tx: str, objs: dict, op, out: dict) -> None:
        """Run ``op`` over both modes' objects in small alternating chunks (on
        then off, then off then on, ...), so that whatever else the machine
        does weighs on both modes alike."""
        chunk = CHUNK[tx]
        n = len(objs[True])
        for i, start in enumerate(range(0, n, chunk)):
            for on in ((True, False) if i % 2 == 0 else (False, True)):
                with capture(on, self.user):
                    out[on] += self._timed(tx, objs[on][start:start + chunk], op)

    def run_crud(self, tx: str, samples: dict) -> None:
        """create, update, update_fields, delete of ``n`` requests per mode,
        then ``QuerySet.update()`` of the bulk rows; samples[op][on] grows."""
        from maintenance.models import MaintenanceRequest

        objs = {on: [self._new() for _ in range(self.n)] for on in (True, False)}
        self._interleaved(tx, objs, lambda o: o.save(), samples["create"])

        def update(o):
            o.title = f"Bilge pump service #{o.pk}-{self.seq}"
            o.save()

        self._interleaved(tx, objs, update, samples["update"])

        def update_fields(o):
            o.description = f"Routine check {self.seq}"
            o.save(update_fields=["description"])

        self._interleaved(tx, objs, update_fields, samples["update_fields"])
        self._interleaved(tx, objs, lambda o: o.delete(), samples["delete"])

        qs = MaintenanceRequest.objects.filter(pk__in=self.bulk_ids)
        for i in range(BULK_REPEATS):
            for on in ((True, False) if i % 2 == 0 else (False, True)):
                self.flip ^= 1
                priority = "high" if self.flip else "low"  # every row changes every time
                with capture(on, self.user):
                    samples["queryset_update"][on] += self._timed(tx, [priority], lambda p: qs.update(priority=p))

    def run_prepared(self, samples: dict) -> None:
        """PostgreSQL: update through ``save()``, captured, with the capture's
        statement prepared (the default) and not (``AUDIT_PREPARED_STATEMENTS``
        off), alternating in chunks in autocommit; samples[prepared] grows."""
        from django.test.utils import override_settings

        objs = {flag: [self._new() for _ in range(self.n)] for flag in (True, False)}
        with capture(True, self.user):
            for flag in (True, False):
                for o in objs[flag]:
                    o.save()

        def update(o):
            o.title = f"Bilge pump service #{o.pk}-{self.seq}"
            o.save()

        chunk = CHUNK["autocommit"]
        for i, start in enumerate(range(0, self.n, chunk)):
            for flag in ((True, False) if i % 2 == 0 else (False, True)):
                with capture(True, self.user), override_settings(AUDIT_PREPARED_STATEMENTS=flag):
                    samples[flag] += self._timed("autocommit", objs[flag][start:start + chunk], update)

    # -- API PATCH -------------------------------------------------------------------------

    def api_ready(self) -> str | None:
        """None when the maintenance API answers a PATCH, else why not."""
        from django.urls import NoReverseMatch, reverse

        try:
            reverse("maintenance-request-detail", kwargs={"code": "MR001"})
        except NoReverseMatch:
            try:
                reverse("maintenance-request-detail", kwargs={"pk": "MR001"})
            except NoReverseMatch:
                return "no /api/maintenance-requests/<code>/ route"
        from knox.models import AuthToken
        from rest_framework.test import APIClient

        from maintenance.services import create_request

        with capture(False, None):
            self.api_request = create_request(actor=self.user, vessel="MV Bench", title="API bench")
            _, token = AuthToken.objects.create(self.user)
        from django.conf import settings
        from django.test.utils import override_settings

        self.api_url = f"/api/maintenance-requests/{self.api_request.code}/"
        # Two clients: "on" runs the product's middleware stack; "off" is plain
        # Django, its handler built (on its first request) without the audit
        # middleware, which would otherwise open a fresh, enabled context.
        self.clients = {True: APIClient(), False: APIClient()}
        plain = [m for m in settings.MIDDLEWARE if not m.startswith("audit.")]
        for on, client in self.clients.items():
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            with override_settings(MIDDLEWARE=settings.MIDDLEWARE if on else plain), capture(on, self.user):
                response = client.patch(self.api_url, {"title": "API bench 0", "change_reason": "bench"},
                                        format="json")
            if response.status_code != 200:
                return f"PATCH {self.api_url} answered {response.status_code}: {response.content[:200]!r}"
        return None

    def run_api(self, samples: dict) -> None:
        """``api_n`` PATCH requests per mode, alternating on and off."""

        def patch(on):
            self.seq += 1
            response = self.clients[on].patch(
                self.api_url, {"title": f"API bench {self.seq}", "change_reason": "bench"}, format="json"
            )
            if response.status_code != 200:
                raise RuntimeError(f"PATCH answered {response.status_code}: {response.content[:200]!r}")

        for i in range(self.api_n):
            for on in ((True, False) if i % 2 == 0 else (False, True)):
                with capture(on, self.user):
                    samples[on] += self._timed("autocommit", [on], patch)

    def check_switch(self, api: bool) -> dict:
        """Audit rows (trail, field rows, snapshots) written by a little of
        each workload with capture on, and with it off (must be 0)."""
        from maintenance.models import MaintenanceRequest

        counts = {}
        for on in (True, False):
            key = "on" if on else "off"
            before = audit_row_count()
            with capture(on, self.user):
                objs = [self._new() for _ in range(3)]
                for o in objs:
                    o.save()
                for o in objs:
                    o.title = "checked"
                    o.save()
                MaintenanceRequest.objects.filter(pk__in=self.bulk_ids[:3]).update(vessel=f"MV Check {key}")
                for o in objs:
                    o.delete()
            counts[key] = audit_row_count() - before
            if api:
                before = audit_row_count()
                with capture(on, self.user):
                    self.clients[on].patch(self.api_url, {"title": f"checked {key}"}, format="json")
                counts[f"api_{key}"] = audit_row_count() - before
        return counts


    def count_queries(self) -> dict:
        """Statements (BEGIN/COMMIT included) one operation of each kind
        issues in autocommit, on and off: the round trips behind a ratio."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from maintenance.models import MaintenanceRequest

        def one_of_each(obj, label: str, qs, priority: str) -> dict:
            def update():
                obj.title = f"counted {label}"
                obj.save()

            def update_fields():
                obj.description = f"counted {label}"
                obj.save(update_fields=["description"])

            return {"create": obj.save, "update": update, "update_fields": update_fields, "delete": obj.delete,
                    "queryset_update": lambda: qs.update(priority=priority)}

        counts = {op: {} for op in OPS}
        for on in (True, False):
            key = "on" if on else "off"
            self.flip ^= 1
            steps = one_of_each(self._new(), key, MaintenanceRequest.objects.filter(pk__in=self.bulk_ids),
                                "high" if self.flip else "low")
            with capture(on, self.user):
                for op in OPS:
                    with CaptureQueriesContext(connection) as ctx:
                        steps[op]()
                    counts[op][key] = len(ctx.captured_queries)
        return counts


def _server_version(connection) -> str:
    if connection.vendor == "postgresql":
        v = connection.pg_version
        return f"PostgreSQL {v // 10000}.{v % 10000}"
    return f"SQLite {connection.Database.sqlite_version}"


def _summary(on: list[float], off: list[float]) -> dict:
    on_us, off_us = statistics.median(on), statistics.median(off)
    return {"on_us": round(on_us, 1), "off_us": round(off_us, 1), "ratio": round(on_us / off_us, 2),
            "samples": min(len(on), len(off))}


def run(db: str) -> dict:
    from tqdm import tqdm

    n = _env_int("BENCH_N", 80)
    rounds = _env_int("BENCH_ROUNDS", 6)
    bulk = _env_int("BENCH_BULK", 1000)
    api_n = _env_int("BENCH_API_N", max(n // 2, 1))

    load_before = os.getloadavg()[0]
    work = Workload(n=n, bulk=bulk, api_n=api_n)
    api_problem = work.api_ready()
    if api_problem:
        print(f"bench: API PATCH skipped: {api_problem}", file=sys.stderr)

    # samples[tx][op][on|off], api[on|off]
    samples = {tx: {op: {True: [], False: []} for op in OPS} for tx in TX_MODES}
    api = {True: [], False: []}
    from django.db import connection

    prepared = {True: [], False: []} if connection.vendor == "postgresql" else None

    # warm-up (caches, plans, lazy imports; not measured) and a check that
    # "off" writes no audit row and "on" does
    saved_n, work.n = work.n, min(work.n, 20)
    work.run_crud("autocommit", {op: {True: [], False: []} for op in OPS})
    work.n = saved_n
    switch = work.check_switch(api=not api_problem)
    queries = work.count_queries()

    steps = rounds * (len(TX_MODES) + (0 if api_problem else 1))
    gc.collect()
    gc.disable()  # no collector pauses inside the timings; collected between steps
    try:
        with tqdm(total=steps, desc=f"capture bench ({db})", file=sys.stderr, leave=False) as bar:
            for _ in range(rounds):
                for tx in TX_MODES:
                    work.run_crud(tx, samples[tx])
                    gc.collect()
                    bar.update()
                if not api_problem:
                    work.run_api(api)
                    gc.collect()
                    bar.update()
                if prepared is not None:
                    work.run_prepared(prepared)
                    gc.collect()
    finally:
        gc.enable()

    from django.db import connection

    result: dict = {tx: {op: _summary(samples[tx][op][True], samples[tx][op][False]) for op in OPS}
                    for tx in TX_MODES}
    for op in OPS:
        result["autocommit"][op]["queries"] = queries[op]
    if prepared is not None:
        # captured update through save(), the capture statement prepared or not (AUDIT_PREPARED_STATEMENTS)
        p_us, u_us = statistics.median(prepared[True]), statistics.median(prepared[False])
        result["prepared_statements"] = {"update_prepared_us": round(p_us, 1), "update_unprepared_us": round(u_us, 1),
                                         "saved_us": round(u_us - p_us, 1), "samples": len(prepared[True])}
    if api_problem:
        result["api_patch"] = {"skipped": api_problem}
    else:
        result["api_patch"] = _summary(api[True], api[False])
    import django

    result["meta"] = {
        "n": n, "rounds": rounds, "bulk_rows": bulk, "api_n": api_n,
        "units": "microseconds per operation (queryset_update: per statement of bulk_rows rows), medians",
        "server": _server_version(connection),
        "django": django.get_version(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "chunk": CHUNK,
        "audit_rows_written_on": switch["on"],
        "audit_rows_written_off": switch["off"],
        "switch_check": switch,
    }
    if switch["off"] or switch.get("api_off"):
        print(f"bench: WARNING: capture 'off' still wrote audit rows: {switch}", file=sys.stderr)
    if not switch["on"]:
        print("bench: WARNING: capture 'on' wrote no audit row", file=sys.stderr)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capture", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--output", help="write the JSON here (default: stdout)")
    args = parser.parse_args(argv)

    database = sqlite_database() if args.db == "sqlite" else postgresql_database()
    with database as url:
        if url is None:
            result = {"skipped": "PostgreSQL unreachable at 127.0.0.1:5432"}
        else:
            setup_django(url)
            result = run(args.db)
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
