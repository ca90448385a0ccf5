"""``manage.py export_audit``: the API export's records and filters, for operators; ``--pack``
writes a signed export pack instead (:mod:`audit.operations.packs`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit import exports, services
from audit.api.filters import AuditTrailFilter
from audit.context import audit_context


class Command(BaseCommand):
    help = (
        "Export audit_trail records of the last --hours (with the API's filters) to a CSV or JSON Lines "
        "file, streamed from the database. The export is itself recorded in activity_logs before the file "
        "is written. Example: manage.py export_audit --hours 24 --format csv --output /tmp/audit.csv. "
        "--pack PATH writes a signed export pack (zip) that an outsider verifies offline with "
        "'python -m audit.verify_pack PATH --public-key KEY.pem'; with --entity-id and no --hours or --from "
        "it covers the entity's whole history and dossier."
    )

    def add_arguments(self, parser):
        parser.add_argument("--hours", help="Hours back from now: > 0 and <= 8760, decimals allowed (default 24).")
        parser.add_argument("--format", dest="fmt", choices=("csv", "jsonl"), default="csv", help="csv or jsonl.")
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--output", help="File to write ('-' for standard output).")
        target.add_argument("--pack", help="Write a signed export pack (zip) to this file instead.")
        parser.add_argument("--from", dest="from_", metavar="DATETIME",
                            help="Pack only: from this ISO 8601 date-time (UTC without a zone), instead of --hours.")
        parser.add_argument("--to", metavar="DATETIME", help="Pack only: up to this date-time, excluded.")
        parser.add_argument("--seal", action="store_true",
                            help="Pack only: seal first, so that rows written until now can be proven.")
        parser.add_argument("--user-id", dest="user_id", help="Actor's user_id (exact).")
        parser.add_argument("--action-type", dest="action_type", help="Action type (exact).")
        parser.add_argument("--entity-type", dest="entity_type", help="Entity type (exact).")
        parser.add_argument("--entity-id", dest="entity_id", help="Entity code such as MR001 (exact).")
        parser.add_argument("--status", help="completed, failed or pending.")

    def handle(self, *args, hours, fmt, output, pack=None, **options):
        if pack is not None:
            return self.write_pack(Path(pack), hours=hours, **options)
        if options.get("from_") or options.get("to") or options.get("seal"):
            raise CommandError("--from, --to and --seal apply to --pack only.")
        data = {"hours": "24" if hours is None else str(hours)}
        for name in ("user_id", "action_type", "entity_type", "entity_id", "status"):
            if options.get(name) is not None:
                data[name] = options[name]
        filterset = AuditTrailFilter(data=data)
        if not filterset.is_valid():
            problems = "; ".join(
                f"--{name.replace('_', '-')}: {' '.join(messages)}" for name, messages in filterset.errors.items()
            )
            raise CommandError(f"Bad flag: {problems}")
        to_stdout = output == "-"
        target = None if to_stdout else Path(output)
        if target is not None and not target.parent.is_dir():
            raise CommandError(f"--output: directory {str(target.parent)!r} does not exist.")

        queryset = filterset.qs
        total = queryset.count()
        try:
            with audit_context(actor="system"):
                services.log_activity(
                    "Exported audit trail",
                    f"command export_audit; format={fmt}; rows={total}; filters={filterset.describe()}",
                )
        except Exception as exc:
            raise CommandError(f"The export could not be recorded in the audit log, so it was refused: {exc}") from exc

        progress = tqdm(total=total, unit="rows", file=sys.stderr, disable=options["verbosity"] == 0 or None)
        written = 0

        def advance(n):
            nonlocal written
            written += n
            progress.update(n)

        chunks = (exports.csv_chunks(queryset, on_rows=advance) if fmt == "csv"
                  else exports.jsonl_chunks(queryset, on_rows=advance))
        try:
            if to_stdout:
                for chunk in chunks:
                    self.stdout.write(chunk, ending="")
            else:
                partial = target.with_name(target.name + ".part")
                with open(partial, "w", encoding="utf-8", newline="") as handle:
                    for chunk in chunks:
                        handle.write(chunk)
                os.replace(partial, target)
        finally:
            progress.close()
        message = f"Exported {written} audit_trail record{'s' if written != 1 else ''}"
        if to_stdout:
            self.stderr.write(message + ".")
        else:
            self.stdout.write(self.style.SUCCESS(f"{message} to {target}."))

    def write_pack(self, target: Path, *, hours, **options):
        from audit.api.filters import PackFilter
        from audit.operations import integrity, packs, signing

        data = {} if hours is None else {"hours": str(hours)}
        for name, flag in (("user_id", "user_id"), ("action_type", "action_type"), ("entity_type", "entity_type"),
                           ("entity_id", "entity_id"), ("status", "status"), ("from", "from_"), ("to", "to")):
            if options.get(flag) is not None:
                data[name] = options[flag]
        filterset = PackFilter(data=data)
        if not filterset.is_valid():
            problems = "; ".join(f"--{name.replace('_', '-')}: {' '.join(messages)}"
                                 for name, messages in filterset.errors.items())
            raise CommandError(f"Bad flag: {problems}")
        if not target.parent.is_dir():
            raise CommandError(f"--pack: directory {str(target.parent)!r} does not exist.")
        if target.exists():
            raise CommandError(f"--pack: {target} exists; a pack is never overwritten.")
        selection = filterset.selection()
        try:
            if options.get("seal"):
                link = integrity.seal()
                self.stdout.write(f"Sealed #{link.seq} ({link.row_count} new rows).")
            with audit_context(actor="system"):
                services.log_activity("Exported audit pack",
                                      f"command export_audit --pack; filters={filterset.describe()}")
        except (signing.SigningKeyMissing, signing.SigningKeyInvalid) as exc:
            raise CommandError(str(exc)) from None
        except Exception as exc:
            raise CommandError(f"The export could not be recorded in the audit log, so it was refused: {exc}") from exc
        partial = target.with_name(target.name + ".part")
        try:
            summary = packs.write_pack(partial, selection=selection, created_by="system", name=target.name)
        except (packs.PackTooLarge, signing.SigningKeyMissing, signing.SigningKeyInvalid) as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(str(exc)) from None
        os.replace(partial, target)
        for table, row_id in summary.mismatched:
            self.stderr.write(self.style.WARNING(f"{table} id {row_id} differs from its seal now: the pack will "
                                                 "fail verification for it (run verify_audit)."))
        left = "; ".join(f"{n} {reason}" for reason, n in summary.left_out.items())
        self.stdout.write(self.style.SUCCESS(
            f"Wrote pack {target}: {summary.rows.get('audit_trail', 0)} audit_trail and "
            f"{summary.rows.get('update_history', 0)} update_history rows in {len(summary.seals)} seals, "
            f"signed by key {summary.key_id[:12]}" + (f"; left out: {left}" if left else "") + "."))
