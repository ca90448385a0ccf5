"""Probes for load balancers: ``GET /healthz`` and ``GET /readyz``.

Both are unauthenticated, answer a bare ``ok`` / ``not ready`` in plain text
(no detail of what failed reaches the caller; the reason goes to the server's
log) and are outside the activity log (``AUDIT_EXCLUDED_PATHS``).

- ``/healthz``: the process is up and serving requests. It touches nothing else.
- ``/readyz``: the database answers a query and no migration is left unapplied;
  503 otherwise. A stale worker heartbeat or a forwarding lag is deliberately
  not a reason: those are shown on the dashboard and alerted, and taking every
  web server out of rotation for them would only add an outage.
"""

from __future__ import annotations

import logging

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

# Once every migration was seen applied, later probes skip the (costly) migration
# graph walk: migrations are not un-applied under a running server.
_migrated = False


def _plain(text: str, status: int) -> HttpResponse:
    return HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")


@never_cache
@require_GET
def healthz(request):
    return _plain("ok", 200)


def _not_ready_reason() -> str | None:
    """Why this server should not take traffic, or None when it is ready."""
    global _migrated
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        if not _migrated:
            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
            if plan:
                return f"{len(plan)} unapplied migration(s), first {plan[0][0].app_label}.{plan[0][0].name}"
            _migrated = True
    except Exception as exc:  # noqa: BLE001 - any database failure means not ready; the probe itself must answer
        return f"database unavailable: {exc.__class__.__name__}: {exc}"
    return None


@never_cache
@require_GET
def readyz(request):
    reason = _not_ready_reason()
    if reason is not None:
        logger.warning("readyz: not ready: %s", reason)
        return _plain("not ready", 503)
    return _plain("ok", 200)
