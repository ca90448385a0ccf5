"""Verification as an operation: check the seals and record a failure.

Whoever runs it (the hourly job or ``manage.py verify_audit``), a failed
verification records a ``critical`` ``integrity_check_failed`` system event
with the counts and the first findings, which the alert rules send to the
admins. An installation that was never sealed (no seal rows and no seal file)
is not a failure: there is nothing to check yet.
"""

from __future__ import annotations

from collections.abc import Callable

from audit.context import audit_context
from audit.operations import integrity

#: findings copied into the system event (the command prints them all)
FIRST_FINDINGS = 20


def verify_and_record(*, limit: int = 1000, progress: Callable[[int], None] | None = None,
                      source: str = "verify_audit", public_keys=None, check_hmac: bool = True) -> integrity.Report:
    """:func:`integrity.verify` (``public_keys``, ``check_hmac`` passed on), recording a failure."""
    report = integrity.verify(limit=limit, progress=progress, public_keys=public_keys, check_hmac=check_hmac)
    if not report.ok:
        record_failure(report=report, source=source)
    return report


def record_failure(*, report: integrity.Report, source: str) -> None:
    from audit.services import log_system_event

    with audit_context(actor="system"):
        log_system_event(
            "integrity_check_failed", entity_type="audit_seals", severity="critical",
            event_data={
                "source": source,
                "findings": len(report.findings),
                "first_findings": [str(f) for f in report.findings[:FIRST_FINDINGS]],
                "rows_checked": report.rows_checked,
                "seals_checked": report.links,
                "purged_missing": report.purged_missing,
            },
        )
