"""Forwarding keeps up (issue 16.5), on PostgreSQL: audit rows written at a steady rate,
forwarded by the product's own worker and scheduler to a local HTTP sink (JSON Lines).

    python -m bench.forwarding [--output PATH]

Creates the database ``BENCH_FORWARDING_DB`` (``bench_forwarding``; 127.0.0.1:5432, user
postgres, ``BENCH_PG_ADMIN_URL`` names another server), starts an HTTP collector on
127.0.0.1 (a port chosen at run time), one ``manage.py run_worker --queue-name forwarding``
and one ``manage.py run_scheduler`` (``AUDIT_FORWARD_EVERY`` 1 s), then writes
``activity_logs`` rows at ``BENCH_FORWARD_RATE`` rows per second (1,000) for
``BENCH_FORWARD_SECONDS`` (30), committed in batches every 50 ms. Each row's lag is the time
from its commit to its arrival at the sink; reported: p50, p95 and max lag (target p95
<= 5 s), the rate achieved by the writer, rows forwarded per second, and whether every row
arrived (duplicates counted). Then the headroom: ``BENCH_FORWARD_BURST`` rows (20,000)
written at once and the rate at which the same worker drains them. Results go to ``bench/results/forwarding.json``.
An unreachable server is a skip.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.capture import postgresql_database, setup_django

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "forwarding.json"
TARGETS = {"rate_rows_per_s": 1000, "lag_p95_s": 5.0}
BATCH_EVERY = 0.05


def _env_int(name, default):
    value = int(os.environ.get(name, default))
    if value < 1:
        raise SystemExit(f"{name} must be at least 1")
    return value


def database():
    """This section's scratch PostgreSQL database (BENCH_FORWARDING_DB), from :func:`bench.capture.postgresql_database`."""
    return postgresql_database("BENCH_FORWARDING_DB", "bench_forwarding")


class Collector:
    """An HTTP sink on 127.0.0.1 noting when each record (by row id) first arrived."""

    def __init__(self):
        self.arrived: dict[int, float] = {}
        self.records = 0
        self.posts = 0
        lock = threading.Lock()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                now = time.time()
                with lock:
                    collector.posts += 1
                    for line in body.splitlines():
                        if line:
                            uid = json.loads(line)["metadata"]["uid"]
                            collector.records += 1
                            collector.arrived.setdefault(int(uid.rsplit(":", 1)[1]), now)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def run(url: str) -> dict:
    setup_django(url)
    from audit.models import ActivityLog

    rate = _env_int("BENCH_FORWARD_RATE", 1000)
    seconds = _env_int("BENCH_FORWARD_SECONDS", 30)
    burst = _env_int("BENCH_FORWARD_BURST", 20000)
    collector = Collector()
    sink = f"http://127.0.0.1:{collector.port}/bench"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "marine_center.settings_test", "DEBUG": "0", "LOG_LEVEL": "ERROR",
           "TASKS_BACKEND": "database", "AUDIT_FORWARD_SINKS": sink, "AUDIT_FORWARD_EVERY": "1",
           "ALERT_SWEEP_EVERY": "0", "AUDIT_SEAL_EVERY": "0", "AUDIT_VERIFY_EVERY": "0", "AUDIT_PURGE_EVERY": "0"}
    procs = [subprocess.Popen([sys.executable, "manage.py", *command], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for command in (("run_worker", "--queue-name", "forwarding", "--interval", "0.1", "--no-startup-delay"),
                             ("run_scheduler", "--interval", "0.5"))]
    committed: dict[int, float] = {}
    try:
        time.sleep(3)  # start-up of the worker and the scheduler
        per_batch = max(1, round(rate * BATCH_EVERY))
        batches = round(seconds / BATCH_EVERY)
        start = time.perf_counter()
        for b in range(batches):
            pause = start + b * BATCH_EVERY - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            rows = ActivityLog.objects.bulk_create(
                [ActivityLog(user_id="PE001", activity="Viewed maintenance request", details=f"bench {b}.{i}",
                             ip_address="10.0.0.7", request_id=f"bench-{b}-{i}", method="GET",
                             path="/requests/", status_code=200) for i in range(per_batch)])
            now = time.time()  # autocommit: committed when bulk_create returns
            for row in rows:
                committed[row.pk] = now
        wrote_for = time.perf_counter() - start
        deadline = time.monotonic() + 120
        while len(set(committed) & set(collector.arrived)) < len(committed) and time.monotonic() < deadline:
            time.sleep(0.2)
        drained_for = time.perf_counter() - start
        # headroom: a backlog written at once, drained by the same worker
        burst_started = time.perf_counter()
        burst_ids = [row.pk for row in ActivityLog.objects.bulk_create(
            [ActivityLog(user_id="PE001", activity="Viewed maintenance request", details=f"burst {i}",
                         request_id=f"burst-{i}", method="GET", path="/requests/", status_code=200)
             for i in range(burst)], batch_size=1000)]
        deadline = time.monotonic() + 300
        while not set(burst_ids) <= set(collector.arrived) and time.monotonic() < deadline:
            time.sleep(0.1)
        burst_for = time.perf_counter() - burst_started
        burst_arrived = len(set(burst_ids) & set(collector.arrived))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        collector.stop()
    lags = [collector.arrived[pk] - at for pk, at in committed.items() if pk in collector.arrived]
    missing = len(committed) - len(lags)
    return {
        "rows": len(committed), "rate_asked_per_s": rate, "seconds": seconds,
        "rate_written_per_s": round(len(committed) / wrote_for, 1),
        "forwarded_per_s": round(len(lags) / drained_for, 1),
        "arrived": len(lags), "missing": missing, "duplicates": collector.records - len(collector.arrived),
        "posts": collector.posts,
        "backlog_rows": burst, "backlog_arrived": burst_arrived,
        "backlog_drained_per_s": round(burst_arrived / burst_for, 1),
        "lag_p50_s": round(statistics.median(lags), 3) if lags else None,
        "lag_p95_s": round(percentile(lags, 95), 3) if lags else None,
        "lag_max_s": round(max(lags), 3) if lags else None,
        "meta": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()[0],
                 "host": socket.gethostname(), "targets": TARGETS, "sink": "HTTP JSON Lines on 127.0.0.1",
                 "batch_rows": 500, "forward_every_s": 1, "database": "PostgreSQL"},
    }


def table(results: dict) -> str:
    ok = (results["lag_p95_s"] is not None and results["lag_p95_s"] <= TARGETS["lag_p95_s"]
          and results["rate_written_per_s"] >= 0.95 * TARGETS["rate_rows_per_s"] and results["missing"] == 0)
    return "\n".join([
        "Forwarding (PostgreSQL -> local HTTP sink)",
        f"  {results['rows']:,} rows written at {results['rate_written_per_s']:,}/s (asked {results['rate_asked_per_s']:,}/s "
        f"for {results['seconds']} s); arrived {results['arrived']:,}, missing {results['missing']}, "
        f"duplicates {results['duplicates']}, in {results['posts']} POSTs",
        f"  commit -> at the sink: p50 {results['lag_p50_s']} s, p95 {results['lag_p95_s']} s, "
        f"max {results['lag_max_s']} s (target: 1,000 rows/s with p95 <= 5 s: {'met' if ok else 'NOT met'})",
        f"  a backlog of {results['backlog_rows']:,} rows written at once: drained at "
        f"{results['backlog_drained_per_s']:,} rows/s ({results['backlog_arrived']:,} arrived; one worker)",
        f"  (load average {results['meta']['load']:.2f} on {results['meta']['cpus']} CPUs)",
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.forwarding", description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    with database() as url:
        if url is None:
            return 0
        results = run(url)
    print(table(results))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"\nwritten: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
