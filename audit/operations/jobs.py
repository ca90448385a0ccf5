"""The audit's periodic background jobs, on the ``ops`` queue.

Sealing (every ``AUDIT_SEAL_EVERY`` seconds, default a minute), verification
(``AUDIT_VERIFY_EVERY``, an hour) and the retention purge
(``AUDIT_PURGE_EVERY``, a day, at 00:00 UTC) run only on the ops host, the one
worker that serves ``ops`` and holds the seal file, its key and the purge
database URL. ``manage.py run_scheduler`` enqueues them once per period.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from audit.models import AUDIT_TABLES
from audit.operations import integrity, retention, verification
from core.background import OPS_QUEUE, periodic, retry, task


def _every(name: str, default: float):
    return lambda: float(getattr(settings, name, default))


@periodic(name="audit.seal", every=_every("AUDIT_SEAL_EVERY", 60.0))
@retry(max_attempts=2, base_delay=5, max_delay=30)  # the next period's seal covers what this one missed
@task(queue_name=OPS_QUEUE)
def seal_audit() -> dict:
    """Seal the audit rows written since the last seal."""
    link = integrity.seal()
    return {"seq": link.seq, "rows": link.row_count}


@periodic(name="audit.verify", every=_every("AUDIT_VERIFY_EVERY", 3600.0))
@retry(max_attempts=1)  # a failed check is recorded as an event, not retried
@task(queue_name=OPS_QUEUE)
def verify_audit() -> dict:
    """Verify every sealed row; a failure records ``integrity_check_failed``."""
    report = verification.verify_and_record(source="schedule")
    return {"ok": report.ok, "never_sealed": report.never_sealed, "findings": len(report.findings),
            "rows_checked": report.rows_checked}


def archive_path(now: dt.datetime | None = None) -> Path:
    now = now or timezone.now()
    directory = Path(getattr(settings, "AUDIT_ARCHIVE_DIR", "") or Path(settings.BASE_DIR) / "var" / "archive")
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"audit-{now:%Y%m%dT%H%M%S%fZ}.jsonl.gz"


@periodic(name="audit.purge", every=_every("AUDIT_PURGE_EVERY", 86400.0))
@task(queue_name=OPS_QUEUE)
def purge_audit() -> dict:
    """Delete audit records past their retention (legal holds kept), archived first."""
    plan = retention.plan(tables=list(AUDIT_TABLES))
    if plan.total == 0:
        return {"deleted": {}, "archive": ""}
    store = retention.Archive(archive_path())
    try:
        deleted = retention.purge(plan=plan, archive=store)
    finally:
        store.close()
    return {"deleted": deleted, "archive": str(store.path)}
