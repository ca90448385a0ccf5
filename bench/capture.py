"""Cost of audit capture: the same workload with capture on and off, in one
process, on one database.

    python -m bench.capture --db sqlite|postgresql [--output PATH]

Run by ``python -m bench`` (``make bench``) once per database, each in its own
process because Django reads ``DATABASE_URL`` once, at set-up. The SQLite
database is a temporary file; the PostgreSQL one (``bench_marine`` at
127.0.0.1:5432, user postgres, or ``BENCH_PG_URL``) is created and dropped
here. An unreachable server is a skip, not a failure.

Workload, on maintenance requests (a tracked model with a simple-history
snapshot): create, update through ``save()``, update through
``save(update_fields=[...])``, delete, and ``QuerySet.update()`` of
``BENCH_BULK`` (1,000) rows; each in autocommit (one transaction per
operation) and inside one transaction (``atomic`` around a batch of
``BENCH_N`` operations, time per operation); then an API ``PATCH`` of a
maintenance request end to end (test client, Bearer token).

"On" is everything the product does: the audit_trail row, its update_history
rows and the simple-history snapshot. "Off" is plain Django:
``audit_context(enabled=False)`` and ``SIMPLE_HISTORY_ENABLED=False``. On and
off rounds alternate (and swap order every round) to cancel drift; results
are medians. The run checks that "off" wrote no audit row and "on" did.

Environment: ``BENCH_N`` (operations per batch, default 200), ``BENCH_ROUNDS``
(default 5), ``BENCH_BULK`` (rows of the QuerySet.update(), default 1000),
``BENCH_API_N`` (PATCH requests per batch, default ``BENCH_N // 2``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict

OPS = ("create", "update", "update_fields", "delete", "queryset_update")
TX_MODES = ("autocommit", "atomic")
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB_NAME = "bench_marine"


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


@contextlib.contextmanager
def postgresql_database():
    """Create ``bench_marine`` (dropping a leftover) and drop it afterwards.
    Yields None when the server cannot be reached."""
    import psycopg

    admin_url = os.environ.get("BENCH_PG_ADMIN_URL", PG_ADMIN_URL)
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        print(f"bench: PostgreSQL unreachable at {admin_url} ({exc.__class__.__name__}); skipped", file=sys.stderr)
        yield None
        return
    try:
        admin.execute(f"DROP DATABASE IF EXISTS {PG_DB_NAME} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {PG_DB_NAME}")
        base = admin_url.rsplit("/", 1)[0]
        yield f"{base}/{PG_DB_NAME}"
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may never have been set up
            pass
        admin.execute(f"DROP DATABASE IF EXISTS {PG_DB_NAME} WITH (FORCE)")
        admin.close()


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "marine_center.settings"
    os.environ.setdefault("TESTING", "1")  # a throwaway SECRET_KEY
    os.environ["DEBUG"] = "0"  # DEBUG keeps every query in memory
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost,127.0.0.1"
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic here
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


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
        sample per operation in autocommit, one (batch mean) in atomic."""
        from django.db import transaction

        items = list(items)
        gc.collect()
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

    def run_crud(self, tx: str, samples: dict) -> None:
        from maintenance.models import MaintenanceRequest

        objs = [self._new() for _ in range(self.n)]
        samples["create"] += self._timed(tx, objs, lambda o: o.save())

        def update(o):
            o.title = f"Bilge pump service #{o.pk}-{self.seq}"
            o.save()

        samples["update"] += self._timed(tx, objs, update)

        def update_fields(o):
            o.description = f"Routine check {self.seq}"
            o.save(update_fields=["description"])

        samples["update_fields"] += self._timed(tx, objs, update_fields)
        samples["delete"] += self._timed(tx, objs, lambda o: o.delete())

        self.flip ^= 1
        priority = "high" if self.flip else "low"
        qs = MaintenanceRequest.objects.filter(pk__in=self.bulk_ids)
        samples["queryset_update"] += self._timed(tx, [priority], lambda p: qs.update(priority=p))

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
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        self.api_url = f"/api/maintenance-requests/{self.api_request.code}/"
        response = self.client.patch(self.api_url, {"title": "API bench 0", "change_reason": "bench"}, format="json")
        if response.status_code != 200:
            return f"PATCH {self.api_url} answered {response.status_code}: {response.content[:200]!r}"
        return None

    def run_api(self, samples: list) -> None:
        def patch(i):
            self.seq += 1
            response = self.client.patch(
                self.api_url, {"title": f"API bench {self.seq}", "change_reason": "bench"}, format="json"
            )
            if response.status_code != 200:
                raise RuntimeError(f"PATCH answered {response.status_code}: {response.content[:200]!r}")

        samples += self._timed("autocommit", range(self.api_n), patch)


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

    n = _env_int("BENCH_N", 200)
    rounds = _env_int("BENCH_ROUNDS", 5)
    bulk = _env_int("BENCH_BULK", 1000)
    api_n = _env_int("BENCH_API_N", max(n // 2, 1))

    work = Workload(n=n, bulk=bulk, api_n=api_n)
    api_problem = work.api_ready()
    if api_problem:
        print(f"bench: API PATCH skipped: {api_problem}", file=sys.stderr)

    # samples[tx][op][on|off]
    samples = {tx: {op: {True: [], False: []} for op in OPS} for tx in TX_MODES}
    api = {True: [], False: []}
    leaks = defaultdict(int)  # audit rows written while capture was off
    written = defaultdict(int)  # audit rows written while capture was on

    def batch(on: bool, fn, *args):
        before = audit_row_count()
        with capture(on, work.user):
            fn(*args)
        delta = audit_row_count() - before
        (written if on else leaks)[fn.__name__] += delta

    # warm-up: caches, prepared plans, lazy imports (not measured)
    for on in (True, False):
        with capture(on, work.user):
            junk = {op: [] for op in OPS}
            saved_n, work.n = work.n, min(work.n, 20)
            work.run_crud("autocommit", junk)
            work.n = saved_n
            if not api_problem:
                saved_api, work.api_n = work.api_n, min(work.api_n, 5)
                work.run_api([])
                work.api_n = saved_api

    steps = rounds * (len(TX_MODES) + (0 if api_problem else 1)) * 2
    with tqdm(total=steps, desc=f"capture bench ({db})", file=sys.stderr, leave=False) as bar:
        for r in range(rounds):
            order = (True, False) if r % 2 == 0 else (False, True)
            for tx in TX_MODES:
                for on in order:
                    got = defaultdict(list)
                    batch(on, work.run_crud, tx, got)
                    for op in OPS:
                        samples[tx][op][on] += got[op]
                    bar.update()
            if not api_problem:
                for on in order:
                    batch(on, work.run_api, api[on])
                    bar.update()

    from django.db import connection

    result: dict = {tx: {op: _summary(samples[tx][op][True], samples[tx][op][False]) for op in OPS}
                    for tx in TX_MODES}
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
        "audit_rows_written_on": sum(written.values()),
        "audit_rows_written_off": sum(leaks.values()),
    }
    if sum(leaks.values()):
        print(f"bench: WARNING: capture 'off' still wrote {dict(leaks)} audit rows", file=sys.stderr)
    if not sum(written.values()):
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
