"""Activity and system-event receivers: logins, logouts, failed logins,
refused Bearer tokens, the domain's signals and unhandled errors.

Connected once from ``AuditConfig.ready()`` (each with a ``dispatch_uid``);
each receiver is a few lines delegating to :mod:`audit.services`.

What fails closed and what fails open (RELIABILITY):

- a successful login, a logout, domain events and domain activities are
  written in the caller's transaction (the session or token write); if the
  write fails, so does the login, the logout or the change;
- denials (failed login, refused token) and unhandled errors are written
  where the denial happens, outside any transaction the request may still
  roll back (none of the login views runs inside one; if one ever does, the
  row is written in a savepoint of it and a warning is logged). If such a
  write fails the denial still stands: the failure is counted in
  :data:`FAILURES` and printed to stderr.

Secrets never reach these rows: Django cleanses the credentials before
``user_login_failed`` and only the attempted user id is read from them; a
refused token is never recorded; an unhandled error is recorded by path,
method, exception class and request id only (no body, headers or message).
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.signals import got_request_exception
from django.db import connection, connections, router, transaction

from audit import services
from audit.capture import compat, registry, writer
from audit.context import audit_context, get_context
from audit.models import AuditStatus, AuditTrail
from core import signals as core_signals

logger = logging.getLogger(__name__)

#: Denials and errors that could not be recorded, by kind (fail-open paths).
FAILURES: Counter[str] = Counter()

#: Default severities of domain events sent without one.
DEFAULT_SEVERITY = {"emergency_created": "warning", "account_locked": "warning"}


def connect() -> None:
    user_logged_in.connect(on_login, dispatch_uid="audit.activity.login")
    user_logged_out.connect(on_logout, dispatch_uid="audit.activity.logout")
    user_login_failed.connect(on_login_failed, dispatch_uid="audit.activity.login_failed")
    core_signals.token_rejected.connect(on_token_rejected, dispatch_uid="audit.activity.token_rejected")
    core_signals.activity.connect(on_activity, dispatch_uid="audit.activity.activity")
    core_signals.domain_event.connect(on_domain_event, dispatch_uid="audit.activity.domain_event")
    core_signals.action_refused.connect(on_action_refused, dispatch_uid="audit.activity.action_refused")
    got_request_exception.connect(on_request_exception, dispatch_uid="audit.activity.request_exception")


# -- helpers ------------------------------------------------------------------


def _channel(request) -> str:
    path = getattr(request, "path", "") or get_context().path or ""
    if path.startswith("/admin/"):
        return "admin"
    if path.startswith("/api/"):
        return "API"
    return "portal"


def _user_agent(request) -> str:
    meta = getattr(request, "META", None) or {}
    return (meta.get("HTTP_USER_AGENT") or get_context().user_agent or "")[:writer.USER_AGENT_MAX]


def _how(request) -> str:
    agent = _user_agent(request)
    return f"via {_channel(request)}" + (f"; user agent: {agent}" if agent else "")


def _fail_open(kind: str, write, *args, **kwargs):
    """Run ``write``; on failure count it, say so on stderr and carry on.
    Inside a transaction the write gets its own savepoint so that a failed
    insert cannot poison the surrounding transaction."""
    try:
        if connection.in_atomic_block:
            logger.info("audit: %s recorded inside an open transaction; a rollback would drop it", kind)
            with transaction.atomic():
                return write(*args, **kwargs)
        return write(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a denial must stand even if its record fails
        FAILURES[kind] += 1
        print(f"audit: could not record {kind}: {exc.__class__.__name__}", file=sys.stderr)
        return None


def attempted_user_id(credentials: dict | None) -> str:
    """The user id someone tried to log in with (never the password)."""
    credentials = credentials or {}
    username_field = get_user_model().USERNAME_FIELD
    for key in ("user_id", "username", username_field):
        value = credentials.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


# -- receivers ----------------------------------------------------------------


def on_login(sender, request, user, **kwargs) -> None:
    with audit_context(actor=user):
        services.log_activity("Login", _how(request))


def on_logout(sender, request, user, **kwargs) -> None:
    if user is None:
        return  # logging out an anonymous session: nothing to say
    with audit_context(actor=user):
        services.log_activity("Logout", _how(request))


def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    attempted = attempted_user_id(credentials)
    actor = attempted.upper()[:20] if attempted else "anonymous"
    details = f"Attempted user ID: {attempted or '(none)'}; {_how(request)}"
    with audit_context(actor=actor):
        row = _fail_open("failed login", services.log_activity, "Failed login", details)
    _failure_recorded(row)


def on_token_rejected(sender, request=None, reason="", **kwargs) -> None:
    with audit_context(actor="anonymous"):
        row = _fail_open("refused token", services.log_activity, "Failed login", "invalid bearer token")
    _failure_recorded(row)


def _failure_recorded(row) -> None:
    """Tell the failed-login alert rules (after the row's commit; a denial stands whatever they do)."""
    if row is None:
        return
    transaction.on_commit(lambda: _fail_open(
        "failed-login alert", core_signals.login_failure_recorded.send, sender=type(row), activity_id=row.pk,
        user_id=row.user_id, ip_address=row.ip_address), robust=True)


def on_activity(sender, activity, details="", request=None, **kwargs) -> None:
    services.log_activity(activity, details)


def on_action_refused(sender, target, actor, action_type, error, reason="", **kwargs) -> None:
    """A refused attempt on a tracked object: one ``failed`` audit_trail row with the error
    message and no update_history row, written outside the refused transaction."""
    config = registry.get_config(type(target))
    if config is None or not get_context().enabled:
        return

    def write(using: str) -> None:
        with audit_context(actor=actor, reason=reason):
            writer.write_change(using=using, action_type=action_type, entity_type=config.entity_type,
                                entity_id=config.entity_id(target), changes={}, table_name=target._meta.db_table,
                                status=AuditStatus.FAILED, error_message=error)

    _fail_open("refused attempt", outside_transaction, write)


def outside_transaction(write) -> None:
    """Call ``write(alias)`` so that its rows survive the rollback of whatever is still open.

    The refused action's own transaction has already rolled back when this runs. If the
    caller holds an outer transaction of its own (not a test case's), on PostgreSQL the row
    goes through a second, autocommit connection, so that the outer rollback cannot take it
    too; on SQLite (one writer: a second connection would wait for the open one) it is
    written in the outer transaction, as it is inside a test case's transaction."""
    alias = router.db_for_write(AuditTrail)
    connection = connections[alias]
    # a test case's own transaction must take every row with it when it rolls back: no second connection there
    in_test_case = compat.in_test_case_transaction(connection)
    if not (connection.in_atomic_block and connection.vendor == "postgresql") or in_test_case:
        write(alias)
        return
    side_alias = f"{alias}__outside"
    side = connections.create_connection(alias)
    connections[side_alias] = side
    try:
        write(side_alias)
    finally:
        del connections[side_alias]
        side.close()


def on_domain_event(sender, event_type, entity_type="", entity_id="", event_data="", severity=None,
                    request=None, **kwargs) -> None:
    severity = severity or DEFAULT_SEVERITY.get(event_type, "info")
    services.log_system_event(event_type, entity_type, entity_id, event_data, severity)


def on_request_exception(sender, request=None, **kwargs) -> None:
    exc = sys.exc_info()[1]
    data = {
        "path": getattr(request, "path", "") or get_context().path,
        "method": getattr(request, "method", "") or get_context().method,
        "exception": f"{type(exc).__module__}.{type(exc).__qualname__}" if exc is not None else "",
        "request_id": get_context().request_id,
    }
    _fail_open(
        "unhandled error",
        services.log_system_event,
        "unhandled_error",
        event_data=json.dumps(data, sort_keys=True),
        severity="error",
    )
