"""``manage.py legal_hold``: place, lift and list legal holds on audit records."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from audit.models import LegalHold
from audit.operations import retention
from core.errors import DomainError


def _when(name, value):
    if value is None:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"{name}: {value!r} is not an ISO 8601 date and time (e.g. 2025-01-31T00:00:00Z).")
    if parsed.tzinfo is None:
        raise CommandError(f"{name}: give a time zone (e.g. a trailing Z for UTC).")
    return parsed


class Command(BaseCommand):
    help = (
        "Legal holds keep audit records from the retention purge. "
        "place: --entity TYPE:ID, --user USER_ID and/or --from/--to (ISO 8601), with --reason and --actor. "
        "lift: --id N --reason ... . list: the active holds (--all for lifted ones too). "
        "Placing and lifting are recorded as a system event and an activity."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("place", "lift", "list"))
        parser.add_argument("--entity", help="TYPE:ID, e.g. maintenance_request:MR001.")
        parser.add_argument("--user", help="The user_id whose records are held.")
        parser.add_argument("--from", dest="starts_at", help="Start of a held time range (ISO 8601).")
        parser.add_argument("--to", dest="ends_at", help="End of a held time range (ISO 8601).")
        parser.add_argument("--id", dest="hold_id", type=int, help="The hold to lift.")
        parser.add_argument("--reason", default="", help="Why (required to place or lift).")
        parser.add_argument("--actor", default="system", help="Who is placing or lifting (a user_id).")
        parser.add_argument("--all", action="store_true", help="list: lifted holds too.")

    def handle(self, *args, action, **o):
        try:
            if action == "list":
                holds = LegalHold.objects.all() if o["all"] else LegalHold.objects.filter(lifted_at__isnull=True)
                for hold in holds:
                    self.stdout.write(f"#{hold.pk} {hold.describe()} — {hold.reason} (by {hold.placed_by} "
                                      f"{hold.placed_at:%Y-%m-%d}{'' if hold.active else ', lifted'})")
                return
            if action == "lift":
                if not o["hold_id"]:
                    raise CommandError("lift needs --id.")
                hold = LegalHold.objects.filter(pk=o["hold_id"]).first()
                if hold is None:
                    raise CommandError(f"No hold #{o['hold_id']}.")
                retention.lift_hold(hold=hold, actor=o["actor"], reason=o["reason"])
                self.stdout.write(self.style.SUCCESS(f"Lifted hold #{hold.pk}."))
                return
            entity_type = entity_id = ""
            if o["entity"]:
                entity_type, sep, entity_id = o["entity"].partition(":")
                if not sep or not entity_type or not entity_id:
                    raise CommandError("--entity: use TYPE:ID, e.g. maintenance_request:MR001.")
            hold = retention.place_hold(actor=o["actor"], reason=o["reason"], entity_type=entity_type,
                                        entity_id=entity_id, user_id=o["user"] or "",
                                        starts_at=_when("--from", o["starts_at"]), ends_at=_when("--to", o["ends_at"]))
            self.stdout.write(self.style.SUCCESS(f"Placed hold #{hold.pk} on {hold.describe()}."))
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
