"""Operations at scale on PostgreSQL: purge, seal, verify, and writes while sealing.

    python -m bench.operations [--output PATH]

Creates the database ``bench_operations`` (``BENCH_OPS_DB`` names another; 127.0.0.1:5432,
user postgres; ``BENCH_PG_ADMIN_URL`` names another server), fills ``activity_logs`` with
``BENCH_OPS_N`` rows (default 1,000,000) dated two years back, and measures:

1. **seal**: one ``seal()`` over all N rows, rows per second;
2. **verify**: one ``verify()`` over them, rows per second (target >= 100,000);
3. **purge**: ``retention.purge`` of the N rows in batches of
   ``BENCH_OPS_BATCH`` (5,000), rows per second, while a writer on its own
   connection inserts one audit row per transaction in a loop; the longest
   insert it saw is the wait the purge caused (target <= 100 ms);
4. **writes with sealing**: audit writes (``log_entity_change``: one
   ``audit_trail`` and one ``update_history`` row per transaction) for
   ``BENCH_OPS_SECONDS`` (5) per chunk, alternating chunks without and with
   ``manage.py seal_audit --loop 1`` running in another process,
   ``BENCH_OPS_ROUNDS`` (3) rounds; the ratio of medians (target >= 90%).

Results go to ``bench/results/operations.json``. An unreachable server is a
skip. Rows are inserted with ``generate_series`` (the capture path is not
under test here).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.capture import postgresql_database, setup_django

# BENCH_OPS_DB names another database, so that two checkouts can run the bench on one server at once
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "operations.json"
TARGETS = {"verify_rows_per_s": 100_000, "purge_writer_max_wait_ms": 100, "write_ratio_sealing": 0.90}


def _env_int(name, default):
    value = int(os.environ.get(name, default))
    if value < 1:
        raise SystemExit(f"{name} must be at least 1")
    return value


def database():
    """This section's scratch PostgreSQL database (BENCH_OPS_DB), from :func:`bench.capture.postgresql_database`."""
    return postgresql_database("BENCH_OPS_DB", "bench_operations")


def fill(n: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for start in range(0, n, 200_000):
            count = min(200_000, n - start)
            cursor.execute(
                "INSERT INTO activity_logs (user_id, activity, details, timestamp, ip_address, request_id, "
                "user_agent, method, path, status_code) "
                "SELECT 'ST' || (g %% 50), 'API write', 'request MR' || g, "
                "now() - interval '730 days' + g * interval '1 millisecond', ('10.0.0.' || (g %% 200))::inet, "
                "md5(g::text), 'bench/1.0', 'POST', '/api/maintenance-requests/', 201 "
                "FROM generate_series(%s, %s) AS g", [start + 1, start + count])
        cursor.execute("ANALYZE activity_logs")


class Writer(threading.Thread):
    """Inserts one audit row per transaction on its own connection; records each latency."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.latencies = url, threading.Event(), []

    def run(self):
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                started = time.perf_counter()
                conn.execute("INSERT INTO system_events (timestamp, event_type, entity_type, entity_id, "
                             "event_data, severity, processed, request_id) "
                             "VALUES (now(), 'bench', '', '', '', 'info', false, '')")
                self.latencies.append(time.perf_counter() - started)
                time.sleep(0.002)


def write_rate(seconds: float) -> float:
    from audit import services
    from audit.context import audit_context

    done, deadline = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    with audit_context(actor="PE001", reason="bench", ip_address="127.0.0.1"):
        while time.perf_counter() < deadline:
            services.log_entity_change("maintenance_request", f"MR{done % 1000:03d}", "status", "pending",
                                       "approved", action_type="approve")
            done += 1
    return done / (time.perf_counter() - started)


def run(url: str) -> dict:
    n = _env_int("BENCH_OPS_N", 1_000_000)
    batch = _env_int("BENCH_OPS_BATCH", 5000)
    seconds = _env_int("BENCH_OPS_SECONDS", 5)
    rounds = _env_int("BENCH_OPS_ROUNDS", 3)
    seal_dir = tempfile.mkdtemp(prefix="bench-seal-")
    os.environ["AUDIT_SEAL_FILE"] = f"{seal_dir}/seal.json"
    setup_django(url)
    from django.db import connection

    from audit.operations import integrity, retention

    result = {"meta": {"n": n, "batch_size": batch, "server": None, "cpus": os.cpu_count(),
                       "load_average_1m": round(os.getloadavg()[0], 2), "python": platform.python_version()}}
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        result["meta"]["server"] = f"PostgreSQL {cursor.fetchone()[0]}"
    t = time.perf_counter()
    fill(n)
    result["fill_s"] = round(time.perf_counter() - t, 2)
    print(f"filled {n:,} rows in {result['fill_s']} s", file=sys.stderr)

    t = time.perf_counter()
    link = integrity.seal()
    elapsed = time.perf_counter() - t
    result["seal"] = {"rows": link.row_count, "seconds": round(elapsed, 2), "rows_per_s": round(link.row_count / elapsed)}
    print(f"seal: {result['seal']}", file=sys.stderr)

    t = time.perf_counter()
    report = integrity.verify()
    elapsed = time.perf_counter() - t
    result["verify"] = {"rows": report.rows_checked, "seconds": round(elapsed, 2),
                        "rows_per_s": round(report.rows_checked / elapsed), "ok": report.ok}
    print(f"verify: {result['verify']}", file=sys.stderr)

    writer = Writer(url)
    writer.start()
    time.sleep(1)
    baseline = list(writer.latencies)
    the_plan = retention.plan(tables=["activity_logs"])
    t = time.perf_counter()
    deleted = retention.purge(plan=the_plan, batch_size=batch)
    elapsed = time.perf_counter() - t
    during = writer.latencies[len(baseline):]
    writer.stop.set()
    writer.join()
    result["purge"] = {
        "rows": deleted["activity_logs"], "seconds": round(elapsed, 2),
        "rows_per_s": round(deleted["activity_logs"] / elapsed),
        "writer_inserts_during": len(during),
        "writer_max_wait_ms": round(max(during) * 1000, 1) if during else None,
        "writer_p99_wait_ms": round(sorted(during)[int(len(during) * 0.99)] * 1000, 1) if during else None,
        "writer_median_wait_ms": round(statistics.median(during) * 1000, 2) if during else None,
    }
    print(f"purge: {result['purge']}", file=sys.stderr)
    t = time.perf_counter()
    report = integrity.verify()
    result["verify_after_purge"] = {"ok": report.ok, "purged_rows_accounted": report.purged_missing,
                                    "seconds": round(time.perf_counter() - t, 2)}

    off, on = [], []
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "marine_center.settings_test", "DEBUG": "0"}
    for r in range(rounds):
        for sealing in ((False, True) if r % 2 == 0 else (True, False)):
            loop = None
            if sealing:
                loop = subprocess.Popen([sys.executable, "manage.py", "seal_audit", "--loop", "1", "--verbosity", "0"],
                                        cwd=ROOT, env=env)
                time.sleep(1.5)
            try:
                (on if sealing else off).append(write_rate(seconds))
            finally:
                if loop:
                    loop.terminate()
                    loop.wait(timeout=30)
    from audit.models import AuditSeal

    result["writes_with_sealing"] = {
        "off_per_s": round(statistics.median(off), 1), "on_per_s": round(statistics.median(on), 1),
        "ratio": round(statistics.median(on) / statistics.median(off), 3), "samples_off": [round(x) for x in off],
        "samples_on": [round(x) for x in on], "seconds_per_sample": seconds,
        "seals_written": AuditSeal.objects.filter(kind="seal").count(),
    }
    report = integrity.verify()
    result["verify_final"] = {"ok": report.ok, "rows": report.rows_checked}
    return result


def table(result: dict) -> str:
    if "skipped" in result:
        return f"operations: skipped ({result['skipped']})"
    s, v, p, w = result["seal"], result["verify"], result["purge"], result["writes_with_sealing"]

    def mark(ok):
        return "met" if ok else "NOT MET"

    return "\n".join([
        f"operations on {result['meta']['server']}, N = {result['meta']['n']:,} rows "
        f"(load average {result['meta']['load_average_1m']} on {result['meta']['cpus']} CPUs)",
        f"  seal            {s['rows_per_s']:>10,} rows/s  ({s['rows']:,} rows in {s['seconds']} s)",
        f"  verify          {v['rows_per_s']:>10,} rows/s  ({v['rows']:,} rows in {v['seconds']} s)  "
        f"target >= 100,000: {mark(v['rows_per_s'] >= TARGETS['verify_rows_per_s'])}",
        f"  purge           {p['rows_per_s']:>10,} rows/s  ({p['rows']:,} rows in {p['seconds']} s, "
        f"batches of {result['meta']['batch_size']:,})",
        f"  writer wait during purge: max {p['writer_max_wait_ms']} ms, p99 {p['writer_p99_wait_ms']} ms, "
        f"median {p['writer_median_wait_ms']} ms over {p['writer_inserts_during']} inserts  "
        f"target max <= 100 ms: {mark((p['writer_max_wait_ms'] or 0) <= TARGETS['purge_writer_max_wait_ms'])}",
        f"  audit writes    {w['off_per_s']:>10,}/s without sealing, {w['on_per_s']:,}/s with seal_audit --loop 1: "
        f"{w['ratio']:.1%}  target >= 90%: {mark(w['ratio'] >= TARGETS['write_ratio_sealing'])}",
        f"  verify after purge: {'ok' if result['verify_after_purge']['ok'] else 'FAILED'}; "
        f"final verify: {'ok' if result['verify_final']['ok'] else 'FAILED'}",
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operations", description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    with database() as url:
        result = {"skipped": "PostgreSQL unreachable"} if url is None else run(url)
    print(table(result))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"\nwritten: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
