"""Who, where and why: the audit context carried on a ContextVar.

The middleware opens one per request; code outside a request opens one with
:func:`audit_context`, which works as a ``with`` block, a decorator or a
plain call, nests (inner values override, unset ones inherit) and is always
reset with its token."""

from __future__ import annotations

import contextvars
import functools
from dataclasses import dataclass, replace

_UNSET = object()


@dataclass(frozen=True)
class AuditContext:
    actor: object | None = None  # a User, a user_id string, or None (-> "system")
    reason: str = ""
    ip_address: str | None = None
    request_id: str = ""
    user_agent: str = ""
    method: str = ""
    path: str = ""
    request: object | None = None  # the HttpRequest, to resolve the actor late
    enabled: bool = True
    #: the action type every update captured inside is recorded as, instead of the one its
    #: changed fields suggest: ``revert`` while the admin restores an earlier version
    action: str = ""


_current: contextvars.ContextVar[AuditContext] = contextvars.ContextVar("audit_context", default=AuditContext())  # noqa: B039 - frozen


def get_context() -> AuditContext:
    return _current.get()


class audit_context:  # noqa: N801 - used like a function
    """Set actor, reason (and other fields) for the code inside.

    >>> with audit_context(actor=user, reason="Monthly stock count"):
    ...     services.adjust_stock(...)
    """

    def __init__(self, actor=_UNSET, reason=_UNSET, **fields):
        self.changes = {k: v for k, v in {"actor": actor, "reason": reason, **fields}.items() if v is not _UNSET}
        self._tokens: list[contextvars.Token] = []

    def __enter__(self):
        self._tokens.append(_current.set(replace(_current.get(), **self.changes)))
        return _current.get()

    def __exit__(self, *exc):
        _current.reset(self._tokens.pop())
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with audit_context(**self.changes):
                return func(*args, **kwargs)

        return wrapper


def acting(actor=None, reason: str | None = ""):
    """The audit context for a service body: the actor the caller named (a
    logged-in User or a user_id string, so shell and command calls are
    attributed too) and the change reason when one was given; everything
    else is inherited from the surrounding context (the request's IP, id...)."""
    fields = {}
    if isinstance(actor, str) or getattr(actor, "is_authenticated", False):
        fields["actor"] = actor
    if reason:
        fields["reason"] = reason
    return audit_context(**fields)


def reason_context(reason: str | None):
    """``audit_context(reason=...)`` when a reason was given, else a no-op
    context that keeps the surrounding one."""
    return acting(None, reason)
