"""Process waiting system events and send due alert deliveries (the alerts' sweep)."""

import time

from django.core.management.base import BaseCommand, CommandError

from alerts import processing


class Command(BaseCommand):
    help = ("Process the system events nobody processed yet (their rules, their deliveries), take back "
            "deliveries of workers that died, and send the deliveries that are due. Safe to run on several "
            "hosts at once: each event is processed once and each delivery sent once.")

    def add_arguments(self, parser):
        parser.add_argument("--min-age", type=float, default=processing.SWEEP_MIN_AGE_SECONDS,
                            help="Leave events and new deliveries younger than this many seconds to their "
                                 "own task (default %(default)s).")
        parser.add_argument("--loop", action="store_true", help="Keep sweeping until interrupted.")
        parser.add_argument("--interval", type=float, default=5.0, help="Seconds between sweeps with --loop.")
        parser.add_argument("--until-empty", action="store_true",
                            help="Sweep until no unprocessed event and no due delivery is left.")

    def handle(self, *args, min_age, loop, interval, until_empty, **options):
        if min_age < 0 or interval <= 0:
            raise CommandError("--min-age must be 0 or more and --interval more than 0.")
        totals = {"events": 0, "recovered": 0, "attempted": 0}
        try:
            while True:
                counts = processing.sweep(min_age_seconds=min_age)
                for key, value in counts.items():
                    totals[key] += value
                if until_empty and not any(counts.values()):
                    break
                if not loop and not until_empty:
                    break
                if loop and not any(counts.values()):
                    time.sleep(interval)
        except KeyboardInterrupt:
            pass
        self.stdout.write(f"Processed {totals['events']} event(s), took back {totals['recovered']} stuck "
                          f"delivery(ies), attempted {totals['attempted']} delivery(ies).")
