"""``manage.py export_audit``: the API export's records and filters, for operators."""

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
        "is written. Example: manage.py export_audit --hours 24 --format csv --output /tmp/audit.csv"
    )

    def add_arguments(self, parser):
        parser.add_argument("--hours", default="24", help="Hours back from now: > 0 and <= 8760, decimals allowed.")
        parser.add_argument("--format", dest="fmt", choices=("csv", "jsonl"), default="csv", help="csv or jsonl.")
        parser.add_argument("--output", required=True, help="File to write ('-' for standard output).")
        parser.add_argument("--user-id", dest="user_id", help="Actor's user_id (exact).")
        parser.add_argument("--action-type", dest="action_type", help="Action type (exact).")
        parser.add_argument("--entity-type", dest="entity_type", help="Entity type (exact).")
        parser.add_argument("--entity-id", dest="entity_id", help="Entity code such as MR001 (exact).")
        parser.add_argument("--status", help="completed, failed or pending.")

    def handle(self, *args, hours, fmt, output, **options):
        data = {"hours": str(hours)}
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
