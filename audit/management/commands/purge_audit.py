"""``manage.py purge_audit``: delete audit records past their retention, in short batches."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit.models import AUDIT_TABLES
from audit.operations import retention

TABLE_CHOICES = AUDIT_TABLES


def _positive_int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise CommandError(f"{name}: {value!r} is not a whole number.") from None
    if not low <= number <= high:
        raise CommandError(f"{name}: {number} is out of range ({low}..{high}).")
    return number


class Command(BaseCommand):
    help = (
        "Delete audit records older than each table's retention period (AUDIT_RETENTION_DAYS; "
        "activity_logs and system_events 365 days, audit_trail and update_history 7 years), except records "
        "under legal hold. Works in short batches, each its own transaction; --archive writes every deleted "
        "row to a gzip'd JSON Lines file, flushed and fsynced before the batch is deleted. update_history rows "
        "of a purged audit_trail row go with it. Each batch is recorded in the seal chain (verify_audit still "
        "passes) and the purge as the system event audit_purged. Asks for confirmation on a terminal; use "
        "--yes otherwise. Example: manage.py purge_audit --table activity_logs --archive /backup/a.jsonl.gz --yes"
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")
        parser.add_argument("--older-than", dest="older_than", metavar="DAYS",
                            help="Override the retention: delete records older than DAYS days (1..36500).")
        parser.add_argument("--table", action="append", dest="tables", metavar="NAME",
                            help=f"Purge only this table (repeatable): {', '.join(TABLE_CHOICES)}. Default: all.")
        parser.add_argument("--archive", metavar="PATH",
                            help="Write the deleted rows to this new gzip'd JSON Lines file first (.jsonl.gz).")
        parser.add_argument("--batch-size", dest="batch_size", default="5000", metavar="N",
                            help="Rows per delete transaction (1..50000, default 5000).")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, dry_run, older_than, tables, archive, batch_size, yes, **options):
        # every flag is checked before anything is read or deleted
        older = _positive_int("--older-than", older_than, 1, 36500) if older_than is not None else None
        size = _positive_int("--batch-size", batch_size, 1, 50_000)
        unknown = [t for t in tables or [] if t not in TABLE_CHOICES]
        if unknown:
            raise CommandError(f"--table: unknown table {', '.join(map(repr, unknown))}; "
                               f"use one of {', '.join(TABLE_CHOICES)}.")
        selected = list(dict.fromkeys(tables or TABLE_CHOICES))
        target = None
        if archive:
            target = Path(archive)
            if not target.parent.is_dir():
                raise CommandError(f"--archive: directory {str(target.parent)!r} does not exist.")
            if target.exists():
                raise CommandError(f"--archive: {str(target)!r} already exists; an archive is never overwritten.")

        the_plan = retention.plan(tables=selected, older_than=older)
        for table, count in the_plan.counts.items():
            self.stdout.write(f"{table}: {count} record{'s' if count != 1 else ''} older than "
                              f"{the_plan.cutoffs[table]:%Y-%m-%d %H:%M:%S} UTC"
                              f"{' (and their update_history rows)' if table == 'audit_trail' else ''}")
        if the_plan.holds:
            self.stdout.write(f"{len(the_plan.holds)} legal hold(s) active: "
                              + "; ".join(f"#{h.pk} {h.describe()}" for h in the_plan.holds))
        if dry_run:
            self.stdout.write(self.style.WARNING(f"Dry run: {the_plan.total} records would be deleted; "
                                                 "nothing was deleted."))
            return
        if the_plan.total == 0:
            self.stdout.write("Nothing to purge.")
        elif not yes:
            if not sys.stdin.isatty():
                raise CommandError("Refusing to delete without confirmation: standard input is not a terminal. "
                                   "Pass --yes to purge unattended.")
            answer = input(f"Delete {the_plan.total} audit records? Type 'yes' to continue: ")
            if answer.strip().lower() != "yes":
                raise CommandError("Cancelled: nothing was deleted.")

        store = retention.Archive(target) if target else None
        progress = tqdm(total=the_plan.total, unit="rows", file=sys.stderr, disable=options["verbosity"] == 0 or None)
        try:
            deleted = retention.purge(plan=the_plan, batch_size=size, archive=store, on_rows=progress.update)
        finally:
            progress.close()
            if store is not None:
                store.close()
        for table, count in deleted.items():
            self.stdout.write(f"{table}: deleted {count}")
        suffix = f"; archived to {target}" if target else ""
        self.stdout.write(self.style.SUCCESS(f"Purged {sum(deleted.values())} audit records{suffix}."))
