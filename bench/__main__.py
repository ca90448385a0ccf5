"""``python -m bench`` (``make bench``): the capture benchmark on SQLite and
PostgreSQL, one subprocess per database (Django reads ``DATABASE_URL`` once),
merged into one table and ``bench/results/capture.json``.

Options: ``--db sqlite|postgresql`` (repeatable; default both), ``--output``
(default ``bench/results/capture.json``). Sizes: ``BENCH_N``,
``BENCH_ROUNDS``, ``BENCH_BULK``, ``BENCH_API_N`` (see :mod:`bench.capture`).
With ``BENCH_OPS=1`` it also runs :mod:`bench.operations` (purge, seal,
verify, writes while sealing; ``bench/results/operations.json``;
``BENCH_OPS_N`` rows, default 1,000,000).

Then :mod:`bench.events` (acting on events on PostgreSQL: commit -> processed and
-> e-mail sent, throughput with 1 and 2 workers; ``bench/results/events.json``);
``BENCH_EVENTS=0`` skips it.

Then :mod:`bench.forwarding` (the audit stream forwarded to a local HTTP sink at 1,000
rows/s on PostgreSQL, lag from commit to the sink; ``bench/results/forwarding.json``).

Then :mod:`bench.stream` (1,000 SSE clients on one uvicorn worker on PostgreSQL:
database connections, delivery commit -> client, memory per idle client, rights;
``bench/results/stream.json``).

Then the peer benchmark (:mod:`bench.peers`, PostgreSQL): our capture beside
django-pghistory (without and with its context), django-simple-history and
django-auditlog on copies of ``MaintenanceRequest``, in one process and one
run, with the capture targets of issue 15; written under ``"peers"`` in
``bench/results/capture.json``.

``BENCH_ONLY`` runs only the sections it names (a comma list of ``capture``,
``peers``, ``events``, ``forwarding``, ``stream``, ``scale``, ``ops``): ``BENCH_ONLY=peers make bench`` runs the peer
benchmark alone and keeps the other results in the file. ``BENCH_PG_DB``
names the scratch PostgreSQL database (default ``bench_marine``).

With ``BENCH_SCALE`` set (``0.05``, ``1`` for full size) it then runs
:mod:`bench.api_scale`: the real-time audit API on generated data in
PostgreSQL, written to ``bench/results/api.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.capture import OPS, TX_MODES

RESULTS = Path(__file__).resolve().parent / "results" / "capture.json"

#: (database, mode, operation) -> the largest acceptable on/off ratio (issue 3).
TARGETS = {
    ("postgresql", "autocommit", "update"): 2.0,
    ("postgresql", "atomic", "update"): 2.0,
    ("postgresql", "api_patch", ""): 1.2,
}

LABELS = {
    "create": "create",
    "update": "update via save()",
    "update_fields": "update via save(update_fields)",
    "delete": "delete",
    "queryset_update": "QuerySet.update() of {bulk} rows",
}


def run_capture(db: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    try:
        proc = subprocess.run([sys.executable, "-m", "bench.capture", "--db", db, "--output", out],
                              cwd=Path(__file__).resolve().parent.parent)
        if proc.returncode != 0:
            return {"failed": f"bench.capture --db {db} exited with {proc.returncode}"}
        return json.loads(Path(out).read_text())
    finally:
        os.unlink(out)


def _mark(db: str, mode: str, op: str, ratio: float) -> str:
    target = TARGETS.get((db, mode, op))
    if target is None:
        return ""
    return f"target <= {target:.1f}x: " + ("met" if ratio <= target else "NOT MET")


def table(results: dict) -> str:
    lines = [f"{'database':<11} {'mode':<11} {'operation':<34} {'on µs':>10} {'off µs':>10} {'ratio':>7} "
             f"{'queries':>8}  target"]
    lines.append("-" * len(lines[0]) + "-" * 20)
    for db, data in results.items():
        if "skipped" in data or "failed" in data:
            lines.append(f"{db:<11} {data.get('skipped') or data.get('failed')}")
            continue
        bulk = data.get("meta", {}).get("bulk_rows", 1000)
        for mode in TX_MODES:
            for op in OPS:
                row = data[mode][op]
                label = LABELS[op].format(bulk=f"{bulk:,}")
                q = row.get("queries")
                queries = f"{q['on']}/{q['off']}" if q else ""
                lines.append(f"{db:<11} {mode:<11} {label:<34} {row['on_us']:>10,.1f} {row['off_us']:>10,.1f} "
                             f"{row['ratio']:>6.2f}x {queries:>8}  {_mark(db, mode, op, row['ratio'])}")
        api = data.get("api_patch", {})
        if "skipped" in api:
            lines.append(f"{db:<11} {'request':<11} {'API PATCH (end to end)':<34} skipped: {api['skipped']}")
        else:
            lines.append(f"{db:<11} {'request':<11} {'API PATCH (end to end)':<34} {api['on_us']:>10,.1f} "
                         f"{api['off_us']:>10,.1f} {api['ratio']:>6.2f}x {'':>8}  "
                         f"{_mark(db, 'api_patch', '', api['ratio'])}")
        prep = data.get("prepared_statements")
        if prep:
            lines.append(f"{db:<11} {'autocommit':<11} {'update via save(), prepared/not':<34} "
                         f"{prep['update_prepared_us']:>10,.1f} {prep['update_unprepared_us']:>10,.1f} "
                         f"{prep['update_prepared_us'] / prep['update_unprepared_us']:>6.2f}x {'':>8}  "
                         f"both captured: the prepared statement saves {prep['saved_us']:,.0f} µs")
        meta = data.get("meta", {})
        load = meta.get("load_average_1m")
        lines.append(f"{'':<11} ({meta.get('server')}; n={meta.get('n')}, rounds={meta.get('rounds')}, "
                     f"load average {load} on {meta.get('cpus')} CPUs, "
                     f"medians; queries: statements per operation in autocommit, on/off; "
                     f"switch check, audit rows written on/off: {meta.get('audit_rows_written_on')}/"
                     f"{meta.get('audit_rows_written_off')})")
    return "\n".join(lines)


def run_peers() -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    try:
        proc = subprocess.run([sys.executable, "-m", "bench.peers", "--output", out],
                              cwd=Path(__file__).resolve().parent.parent)
        if proc.returncode != 0:
            return {"failed": f"bench.peers exited with {proc.returncode}"}
        return json.loads(Path(out).read_text())
    finally:
        os.unlink(out)


SECTIONS = ("capture", "peers", "events", "forwarding", "stream", "scale", "ops")


def sections() -> set[str]:
    """The sections ``BENCH_ONLY`` names (all by default; ``scale`` and ``ops``
    also need ``BENCH_SCALE`` / ``BENCH_OPS`` unless named here)."""
    only = {s.strip() for s in os.environ.get("BENCH_ONLY", "").split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        raise SystemExit(f"BENCH_ONLY: unknown section(s) {', '.join(sorted(unknown))}; "
                         f"choose among {', '.join(SECTIONS)}")
    return only or {"capture", "peers", "events", "forwarding", "stream"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Capture on/off benchmark.")
    parser.add_argument("--db", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    wanted = sections()
    output = Path(args.output)
    results = json.loads(output.read_text()) if output.exists() else {}  # sections not run keep their results

    failed = []
    if "capture" in wanted:
        measured = {db: run_capture(db) for db in (args.db or ["postgresql", "sqlite"])}
        print(table(measured))
        results.update(measured)
        failed += [db for db, data in measured.items() if "failed" in data]
    if "peers" in wanted:  # bench.peers prints its own side-by-side table
        peers = run_peers()
        results["peers"] = peers
        if "failed" in peers or "skipped" in peers:
            print(f"\npeers: {peers.get('failed') or peers.get('skipped')}")
            failed += ["peers"] if "failed" in peers else []
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"\nwritten: {output}")
    if "events" in wanted and os.environ.get("BENCH_EVENTS", "1") != "0":
        # acting on events (bench.events): about two minutes on PostgreSQL
        proc = subprocess.run([sys.executable, "-m", "bench.events"], cwd=Path(__file__).resolve().parent.parent)
        if proc.returncode != 0:
            failed.append("events")
    if "forwarding" in wanted:
        # forwarding to a local HTTP sink at 1,000 rows/s (bench.forwarding): about 40 s on PostgreSQL
        proc = subprocess.run([sys.executable, "-m", "bench.forwarding"], cwd=Path(__file__).resolve().parent.parent)
        if proc.returncode != 0:
            failed.append("forwarding")
    if "stream" in wanted:
        # a thousand SSE clients on one uvicorn worker (bench.stream): about two minutes on PostgreSQL
        proc = subprocess.run([sys.executable, "-m", "bench.stream"], cwd=Path(__file__).resolve().parent.parent)
        if proc.returncode != 0:
            failed.append("stream")
    if os.environ.get("BENCH_SCALE") or "scale" in wanted:
        # the real-time API at scale (bench.api_scale): minutes of data loading, so only on request
        proc = subprocess.run([sys.executable, "-m", "bench.api_scale"], cwd=Path(__file__).resolve().parent.parent)
        if proc.returncode != 0:
            failed.append("api_scale")
    if os.environ.get("BENCH_OPS") or "ops" in wanted:
        # purge, seal, verify and writes while sealing on PostgreSQL (bench.operations): BENCH_OPS_N rows
        # (default 1,000,000), a few minutes, so only on request
        proc = subprocess.run([sys.executable, "-m", "bench.operations"], cwd=Path(__file__).resolve().parent.parent)
        if proc.returncode != 0:
            failed.append("operations")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
