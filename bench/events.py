"""Acting on events, on PostgreSQL: latency from an event's commit to its ``processed``
mark and to its delivered e-mail, and processing throughput with 1 and 2 workers.

    python -m bench.events [--output PATH]

Creates the database ``bench_events`` (127.0.0.1:5432, user postgres;
``BENCH_PG_ADMIN_URL`` names another server) and measures:

1. **latency**: ``BENCH_EVENTS_LATENCY_N`` events (500) written one per
   transaction through ``log_system_event`` at ``BENCH_EVENTS_RATE`` per second
   (20), each matched by one rule sending one e-mail (file backend), served by
   one ``manage.py run_worker`` (the default database backend, polling every
   0.1 s); p50/p95 of commit -> ``processed_at`` and commit -> the delivery's
   ``sent_at`` (target: p95 commit -> processed <= 2 s);
2. **throughput**: ``BENCH_EVENTS_N`` events (2,000) inserted at once, drained by
   1 and by 2 ``manage.py process_events --until-empty`` processes (the same
   claim, rules and deliveries as the task, in a loop), events per second from
   the first start to the last exit (process start-up included), for events
   that match no rule (target >= 200/s with 2 workers) and for events that each
   send one e-mail.

Results go to ``bench/results/events.json``. An unreachable server is a skip.
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
import time
from pathlib import Path

from bench.capture import postgresql_database, setup_django

PG_DB_NAME = "bench_events"
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "events.json"
TARGETS = {"latency_processed_p95_s": 2.0, "throughput_no_rule_2_workers": 200.0}


def _env_int(name, default):
    value = int(os.environ.get(name, default))
    if value < 1:
        raise SystemExit(f"{name} must be at least 1")
    return value


def database():
    """This section's scratch PostgreSQL database (BENCH_EVENTS_DB), from :func:`bench.capture.postgresql_database`."""
    return postgresql_database("BENCH_EVENTS_DB", PG_DB_NAME)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def _env(url: str, mail_dir: str) -> dict:
    return {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "marine_center.settings_test", "DEBUG": "0", "LOG_LEVEL": "ERROR",
            "TASKS_BACKEND": "database", "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": mail_dir, "ALERT_SWEEP_EVERY": "0"}


def latency(url: str, mail_dir: str) -> dict:
    from alerts.models import AlertRule, Delivery
    from audit.models import SystemEvent
    from audit.services import log_system_event

    n = _env_int("BENCH_EVENTS_LATENCY_N", 500)
    rate = _env_int("BENCH_EVENTS_RATE", 20)
    AlertRule.objects.create(name="bench mail", event_type="bench_mail", recipient_emails="ops@example.com")
    worker = subprocess.Popen([sys.executable, "manage.py", "run_worker", "--queue-name", "default", "--interval",
                               "0.1", "--no-startup-delay"], cwd=ROOT, env=_env(url, mail_dir),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)  # the worker's start-up
        committed: dict[int, float] = {}
        start = time.perf_counter()
        for i in range(n):
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            event = log_system_event("bench_mail", "", "", {"n": i}, "info")
            committed[event.pk] = time.time()  # autocommit: committed when the call returns
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            left = Delivery.objects.filter(event_id__in=list(committed)).exclude(sent_at__isnull=False).count()
            if left == 0 and Delivery.objects.filter(event_id__in=list(committed)).count() == n:
                break
            time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    processed = {pk: at.timestamp() for pk, at in SystemEvent.objects.filter(pk__in=list(committed))
                 .exclude(processed_at=None).values_list("id", "processed_at")}
    sent = {pk: at.timestamp() for pk, at in Delivery.objects.filter(event_id__in=list(committed))
            .exclude(sent_at=None).values_list("event_id", "sent_at")}
    to_processed = [processed[pk] - committed[pk] for pk in committed if pk in processed]
    to_sent = [sent[pk] - committed[pk] for pk in committed if pk in sent]
    return {
        "events": n, "rate_per_s": rate, "processed": len(to_processed), "delivered": len(to_sent),
        "processed_p50_s": round(statistics.median(to_processed), 3) if to_processed else None,
        "processed_p95_s": round(percentile(to_processed, 95), 3) if to_processed else None,
        "delivered_p50_s": round(statistics.median(to_sent), 3) if to_sent else None,
        "delivered_p95_s": round(percentile(to_sent, 95), 3) if to_sent else None,
    }


def throughput(url: str, mail_dir: str, *, workers: int, event_type: str) -> dict:
    from audit.models import SystemEvent

    n = _env_int("BENCH_EVENTS_N", 2000)
    SystemEvent.objects.bulk_create([SystemEvent(event_type=event_type, severity="info", event_data=f'{{"n": {i}}}')
                                     for i in range(n)], batch_size=1000)
    command = [sys.executable, "manage.py", "process_events", "--until-empty", "--min-age", "0"]
    started = time.perf_counter()
    procs = [subprocess.Popen(command, cwd=ROOT, env=_env(url, mail_dir), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(workers)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    elapsed = time.perf_counter() - started
    left = SystemEvent.objects.filter(event_type=event_type, processed=False).count()
    return {"events": n, "workers": workers, "seconds": round(elapsed, 2), "events_per_s": round(n / elapsed, 1),
            "unprocessed_after": left, "exit_codes": [p.returncode for p in procs],
            "outputs": [o.strip().splitlines()[-1] if o.strip() else "" for o in outputs]}


def run(url: str) -> dict:
    setup_django(url)
    from alerts.models import AlertRule

    mail_dir = tempfile.mkdtemp(prefix="bench-mail-")
    results = {"latency": latency(url, mail_dir)}
    AlertRule.objects.create(name="bench one mail", event_type="bench_one_mail", recipient_emails="ops@example.com")
    for workers in (1, 2):
        results[f"no_rule_{workers}_workers"] = throughput(url, mail_dir, workers=workers,
                                                           event_type=f"bench_nomatch_{workers}")
        AlertRule.objects.filter(name="bench one mail").update(event_type=f"bench_one_mail_{workers}")
        results[f"one_mail_{workers}_workers"] = throughput(url, mail_dir, workers=workers,
                                                            event_type=f"bench_one_mail_{workers}")
    results["meta"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "load": os.getloadavg()[0], "targets": TARGETS}
    return results


def table(results: dict) -> str:
    lat = results["latency"]
    ok = lat["processed_p95_s"] is not None and lat["processed_p95_s"] <= TARGETS["latency_processed_p95_s"]
    lines = [
        "Events (PostgreSQL)",
        f"  commit -> processed   p50 {lat['processed_p50_s']} s, p95 {lat['processed_p95_s']} s "
        f"({lat['events']} events at {lat['rate_per_s']}/s; target p95 <= 2 s: {'met' if ok else 'NOT met'})",
        f"  commit -> e-mail sent p50 {lat['delivered_p50_s']} s, p95 {lat['delivered_p95_s']} s (file backend)",
    ]
    for kind, label in (("no_rule", "matching no rule"), ("one_mail", "each sending one e-mail")):
        one, two = results[f"{kind}_1_workers"], results[f"{kind}_2_workers"]
        line = f"  throughput, {label}: 1 worker {one['events_per_s']}/s, 2 workers {two['events_per_s']}/s"
        if kind == "no_rule":
            met = two["events_per_s"] >= TARGETS["throughput_no_rule_2_workers"]
            line += f" (target >= 200/s with 2: {'met' if met else 'NOT met'})"
        lines.append(line)
    lines.append(f"  (load average {results['meta']['load']:.2f} on {results['meta']['cpus']} CPUs)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__.splitlines()[0])
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
