"""``manage.py run_scheduler``: enqueue the periodic jobs, once per period."""

from __future__ import annotations

import signal
import socket
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections
from django.utils.crypto import get_random_string

from core.engine import scheduler


class Command(BaseCommand):
    help = (
        "Enqueue the periodic jobs (seal every AUDIT_SEAL_EVERY seconds, verify every AUDIT_VERIFY_EVERY, purge "
        "every AUDIT_PURGE_EVERY; 0 switches a job off) when their period starts. Any number of schedulers may "
        "run: a unique row per job and period in scheduled_runs lets only one of them enqueue it. --once runs "
        "a single tick. Stops on SIGTERM or Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--interval", default="1", metavar="SECONDS",
                            help="Seconds between two ticks (0.1..60, default 1).")
        parser.add_argument("--once", action="store_true", help="Run one tick and exit.")

    def handle(self, *args, interval, once, **options):
        try:
            every = float(interval)
        except ValueError:
            raise CommandError(f"--interval: {interval!r} is not a number of seconds.") from None
        if not 0.1 <= every <= 60:
            raise CommandError("--interval: use 0.1 to 60 seconds.")
        name = f"{socket.gethostname()}-{get_random_string(6)}"
        verbose = options["verbosity"] > 0
        if once:
            enqueued = scheduler.tick(scheduler_id=name)
            if verbose:
                self.stdout.write(f"Enqueued {len(enqueued)} job(s){': ' + ', '.join(enqueued) if enqueued else ''}.")
            return
        stop = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.append(True))
        if verbose:
            self.stdout.write(f"Scheduler {name}: {job_list(scheduler.jobs())}.")
        last_prune = 0.0
        while not stop:
            started = time.monotonic()
            close_old_connections()
            try:
                for job in scheduler.tick(scheduler_id=name):
                    if options["verbosity"] > 1:  # the worker says when a job ran and how it ended
                        self.stdout.write(f"enqueued {job}")
                if started - last_prune > 3600:
                    scheduler.prune()
                    last_prune = started
            except Exception as exc:  # the database may be restarting: try again next tick
                self.stderr.write(f"tick failed: {type(exc).__name__}: {exc}")
            deadline = started + every
            while not stop and time.monotonic() < deadline:
                time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
        self.stdout.write("Scheduler stopped.")


def job_list(jobs) -> str:
    """"audit.seal every 60 s, audit.forward off, ...": a job whose interval is 0 never runs."""
    return ", ".join(f"{job.name} every {job.interval():g} s" if job.interval() > 0 else f"{job.name} off"
                     for job in jobs) or "no jobs"
