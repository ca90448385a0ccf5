"""``manage.py seal_audit``: seal the audit rows written since the last seal."""

from __future__ import annotations

import signal
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from audit import conf
from audit.operations import integrity, signing


class Command(BaseCommand):
    help = (
        "Hash every audit row written since the last seal (on PostgreSQL: rows whose transactions have "
        "finished, by transaction horizon) into a new seal chained to the previous one, and write the newest "
        "seal, with an HMAC keyed by AUDIT_SEAL_KEY, to AUDIT_SEAL_FILE. Every seal is signed with the Ed25519 key of AUDIT_SIGNING_KEY_FILE. A seal is written even when nothing is new. "
        "Takes no lock that application writes wait on. --loop SECONDS repeats it until stopped (or run it "
        "from a systemd timer or cron; see README 'Production')."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", metavar="SECONDS", help="Seal every SECONDS seconds (0.5..86400) until stopped.")

    def handle(self, *args, loop, **options):
        interval = None
        if loop is not None:
            try:
                interval = float(loop)
            except ValueError:
                raise CommandError(f"--loop: {loop!r} is not a number of seconds.") from None
            if not 0.5 <= interval <= 86400:
                raise CommandError("--loop: use 0.5 to 86400 seconds.")
        if not conf.seal_key():
            raise CommandError("AUDIT_SEAL_KEY is not set: the seal file cannot be signed.")
        try:
            active = signing.signer()
        except (signing.SigningKeyMissing, signing.SigningKeyInvalid) as exc:
            raise CommandError(str(exc)) from None
        if active.generated and options["verbosity"] > 0:
            self.stdout.write(self.style.WARNING(
                f"Signing with a development key generated at {active.source.removeprefix('development key ')} "
                f"(key id {active.key_id}); production requires AUDIT_SIGNING_KEY_FILE."))
        stop = []
        if interval is not None:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.append(True))
        while True:
            started = time.monotonic()
            link = integrity.seal()
            if options["verbosity"] > 0:
                self.stdout.write(f"seal #{link.seq}: {link.row_count} rows, hash {link.hash[:16]}… "
                                  f"({time.monotonic() - started:.3f} s) -> {conf.seal_file()}")
            if interval is None:
                return
            close_old_connections()
            deadline = started + interval
            while not stop and time.monotonic() < deadline:
                time.sleep(min(0.2, max(deadline - time.monotonic(), 0)))
            if stop:
                self.stdout.write("stopped.")
                return
