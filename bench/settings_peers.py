"""Settings of the peer benchmark (:mod:`bench.peers.run`): the product's,
plus the peers and the bench-only app. Never used by the product."""

from marine_center.settings_test import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "pgtrigger", "pghistory", "auditlog", "bench.peers"]  # noqa: F405
# the bench app has no migrations (its tables come from --run-syncdb): bench.peers.run installs
# the pghistory triggers after its tables exist, not migration files
PGTRIGGER_MIGRATIONS = False
PGTRIGGER_INSTALL_ON_MIGRATE = False
