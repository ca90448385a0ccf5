"""One mechanism for recording what a person does (SPEC "What is recorded", issue 12.1 and 12.3).

Each service action declares once, where it is defined, the sentence it leaves in the
actor's activity and what a refusal of it is recorded as::

    @action("Cancelled maintenance request {obj.code}", target="request_obj", refused="status_change")
    def cancel_request(*, request_obj, actor, reason=""): ...

The decorator runs the action in its own ``transaction.atomic`` (the function needs none of
its own) and

- when it succeeds, sends ``core.signals.activity`` inside that transaction, so the activity
  row commits or rolls back with the change: ``activity`` is the sentence formatted with
  ``obj`` (the action's result) and the keyword arguments; ``details`` the reason given;
- when a business rule refuses it (:class:`~core.errors.DomainError`, including an illegal
  transition, or ``PermissionDenied``) and there is a ``target`` (the keyword argument naming
  the existing object acted on), sends ``core.signals.action_refused`` *after* the action's
  transaction has rolled back; the audit app writes a ``failed`` audit_trail row with the
  error message from there (outside the refused transaction, see
  ``audit.activity.on_action_refused``), then the exception goes on to the caller.

Every caller (API, portal, admin, shell, management commands) goes through the services, so
every surface is covered without a line per view. A person's write that no service declares (the
admin's add, change and delete of a model without services, such as a group or an alert rule)
is recorded with :func:`record`, the same row; the admin base (``core.admin_base``) does so when
the services it called said nothing, which it learns with :func:`collecting`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.core.exceptions import PermissionDenied
from django.db import transaction

from audit.context import acting
from core.errors import DomainError
from core.signals import action_refused, activity

__all__ = ["REFUSALS", "action", "collecting", "record", "refusal_message", "silenced"]

#: what refuses an action (and is recorded as a failed attempt); anything else is a bug, not a refusal
REFUSALS = (DomainError, PermissionDenied)

#: the sentences recorded since the innermost :func:`collecting` began (None: nobody is collecting)
_said: ContextVar[list[str] | None] = ContextVar("core_actions_said", default=None)
#: inside :func:`silenced`: sentences are collected but not written
_silenced: ContextVar[bool] = ContextVar("core_actions_silenced", default=False)


@contextmanager
def collecting() -> Iterator[list[str]]:
    """Collect the sentences recorded inside the block (by declared actions and :func:`record`).

    The admin asks whether the services behind a save said what was done, and records a
    sentence of its own only when they did not."""
    said: list[str] = []
    token = _said.set(said)
    try:
        yield said
    finally:
        _said.reset(token)


@contextmanager
def silenced() -> Iterator[None]:
    """The services called inside the block write no sentence: their caller records one
    sentence for the whole of what it did (a revert from the admin history goes through
    ``update_request``, whose "Edited ..." would be a second row for one action). Refused
    attempts are still recorded."""
    token = _silenced.set(True)
    try:
        yield
    finally:
        _silenced.reset(token)


def record(sentence: str, *, actor=None, reason: str = "", details: str | None = None) -> None:
    """Record ``sentence`` as ``actor``'s action (None: the actor of the surrounding audit
    context): the activity row a declared action writes, in the caller's transaction.
    ``details`` defaults to the reason given ("Reason: ..."). Inside :func:`silenced` the
    sentence is only collected."""
    said = _said.get()
    if _silenced.get():
        if said is not None:
            said.append(sentence)
        return
    with acting(actor, reason or ""):  # the row names the actor given
        activity.send(sender=record, activity=sentence,
                      details=_reason_text(reason) if details is None else details)
    if said is not None:
        said.append(sentence)


def action(sentence: str | None, *, target: str | None = None, refused: str = "update") -> Callable:
    """Declare a service function as a person's action (see the module docstring).

    ``sentence``: ``str.format`` template with ``obj`` (the result) and the call's keyword
    arguments, e.g. ``"Reported emergency {obj.code} ({obj.emergency_type}, {obj.severity})"``;
    None when the service says what it did itself with :func:`record` (what it says depends on
    what it did, or it may do nothing), the decorator then giving it only its transaction and
    the record of a refusal.
    ``target``: the keyword argument holding the object acted on (none for a create).
    ``refused``: the audit action type of a refused attempt (``approve``, ``status_change``...).
    """

    def decorate(func):
        @functools.wraps(func)
        def run(*args, **kwargs):
            try:
                with transaction.atomic():
                    result = func(*args, **kwargs)
                    if sentence is not None:
                        record(sentence.format(obj=result, **kwargs), actor=kwargs.get("actor"),
                               reason=kwargs.get("reason"))
                    return result
            except REFUSALS as exc:
                subject = kwargs.get(target) if target else None
                if subject is not None and getattr(subject, "pk", None) is not None:
                    action_refused.send(sender=func, target=subject, actor=kwargs.get("actor"),
                                        action_type=refused, error=refusal_message(exc), reason=kwargs.get("reason") or "")
                raise

        run.records_action = sentence  # introspection: which services are declared actions
        return run

    return decorate


def _reason_text(reason) -> str:
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    return f"Reason: {reason}" if reason else ""


def refusal_message(exc: Exception) -> str:
    """The words of a refusal (a DomainError, PermissionDenied or ValidationError-like)."""
    text = str(exc) or type(exc).__name__
    messages = getattr(exc, "messages", None)  # ValidationError-like
    return " ".join(messages) if isinstance(messages, list) and messages else text
