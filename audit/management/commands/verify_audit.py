"""``manage.py verify_audit``: check every sealed audit row, the seal chain and the seal file."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit import conf
from audit.operations import signing, verification


class Command(BaseCommand):
    help = (
        "Recompute the hash of every sealed audit row and of every seal, check the chain, each seal's Ed25519 "
        "signature (--public-key PATH: with that public key alone) and the signed seal file (AUDIT_SEAL_FILE), "
        "and name each altered, deleted or out-of-band row by table and id. Rows "
        "deleted by purge_audit are expected; rows written after the last seal are reported as unsealed. "
        "Exits with status 1 when anything is wrong, and records the critical system event "
        "integrity_check_failed. On an installation never sealed (no seal rows, no seal file) it says so and "
        "exits 0."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", default="1000", help="Name at most this many problems (default 1000).")
        parser.add_argument("--public-key", dest="public_keys", action="append", metavar="PATH",
                            help="Check the signatures with the PEM public key(s) in PATH alone (repeat for keys "
                                 "rotated out); without it, with the keys listed in the database.")

    def handle(self, *args, limit, public_keys=None, **options):
        try:
            cap = int(limit)
            if cap < 1:
                raise ValueError
        except ValueError:
            raise CommandError(f"--limit: {limit!r} is not a positive whole number.") from None
        keys = None
        if public_keys:
            keys = []
            for path in public_keys:
                try:
                    keys.extend(signing.load_public_keys(Path(path).read_bytes(), f"--public-key {path}"))
                except OSError as exc:
                    raise CommandError(f"--public-key {path}: {exc.strerror}.") from None
                except ValueError as exc:
                    raise CommandError(f"{exc}.") from None
        check_hmac = bool(conf.seal_key())
        if not check_hmac and keys is None:
            raise CommandError("AUDIT_SEAL_KEY is not set: the seal file cannot be checked "
                               "(give --public-key to check the signatures instead).")
        if not check_hmac:
            self.stdout.write("AUDIT_SEAL_KEY is not set: the seal file's HMAC is not checked, its signature is.")
        started = time.monotonic()
        progress = tqdm(unit="rows", file=sys.stderr, disable=options["verbosity"] == 0 or None)
        try:
            report = verification.verify_and_record(limit=cap, progress=progress.update, source="verify_audit",
                                                    public_keys=keys, check_hmac=check_hmac)
        finally:
            progress.close()
        elapsed = time.monotonic() - started
        for finding in report.findings:
            self.stdout.write(f"TAMPERED {finding}")
        unsealed = ", ".join(f"{t} {n}" for t, n in report.unsealed.items() if n)
        source = "the given public keys" if keys is not None else "the keys listed in the database"
        self.stdout.write(f"{report.signed_links} of {report.links} seals signature-checked with {source}"
                          + (f" (keys {', '.join(k[:12] for k in report.keys)})" if report.keys else "")
                          + (f"; {report.unsigned_links} predate signing" if report.unsigned_links else "") + ".")
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
