"""``manage.py verify_audit``: check every sealed audit row, the seal chain and the seal file."""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit import conf
from audit.operations import verification


class Command(BaseCommand):
    help = (
        "Recompute the hash of every sealed audit row and of every seal, check the chain and the HMAC-signed "
        "seal file (AUDIT_SEAL_FILE), and name each altered, deleted or out-of-band row by table and id. Rows "
        "deleted by purge_audit are expected; rows written after the last seal are reported as unsealed. "
        "Exits with status 1 when anything is wrong, and records the critical system event "
        "integrity_check_failed. On an installation never sealed (no seal rows, no seal file) it says so and "
        "exits 0."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", default="1000", help="Name at most this many problems (default 1000).")

    def handle(self, *args, limit, **options):
        try:
            cap = int(limit)
            if cap < 1:
                raise ValueError
        except ValueError:
            raise CommandError(f"--limit: {limit!r} is not a positive whole number.") from None
        if not conf.seal_key():
            raise CommandError("AUDIT_SEAL_KEY is not set: the seal file cannot be checked.")
        started = time.monotonic()
        progress = tqdm(unit="rows", file=sys.stderr, disable=options["verbosity"] == 0 or None)
        try:
            report = verification.verify_and_record(limit=cap, progress=progress.update, source="verify_audit")
        finally:
            progress.close()
        elapsed = time.monotonic() - started
        for finding in report.findings:
            self.stdout.write(f"TAMPERED {finding}")
        unsealed = ", ".join(f"{t} {n}" for t, n in report.unsealed.items() if n)
        self.stdout.write(f"{report.rows_checked} rows and {report.links} seals checked in {elapsed:.2f} s; "
                          f"{report.purged_missing} rows purged by retention; "
                          f"unsealed (written after the last seal, not verified): {unsealed or 'none'}.")
        if report.findings:
            self.stderr.write(self.style.ERROR(f"Verification FAILED: {len(report.findings)} problem(s); "
                                               "recorded as the critical system event integrity_check_failed."))
            sys.exit(1)
        if report.never_sealed:
            self.stdout.write(self.style.SUCCESS("Nothing sealed yet: no seal in the database and no seal file, "
                                                 "so nothing can have been altered. The scheduler's seal job (or "
                                                 "manage.py seal_audit) seals the rows."))
            return
        self.stdout.write(self.style.SUCCESS("Verification passed."))
