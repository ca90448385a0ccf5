"""API tokens (knox ``AuthToken``): issued only by ``POST /api/auth/token``,
revoked by ``DELETE /api/auth/token``, a password change or reset and a
deactivation. Every issue and revoke is one ``audit_trail`` row on the owner
(entity ``user``, field ``api_token``): the actor and the client IP come from
the audit context, the value says which token (a fingerprint, never the token
or its digest) and its expiry.

The knox admin pages are unregistered (accounts/admin.py): no page mints a
token or shows a digest.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.db import transaction
from knox.models import AuthToken
from knox.settings import knox_settings

from audit.context import acting
from audit.services import log_entity_change
from core.fields import iso_ms


def token_ttl() -> timedelta:
    """The lifetime of a token; checked by accounts.E001 (no token without an expiry)."""
    return knox_settings.TOKEN_TTL


def fingerprint(token: AuthToken) -> str:
    """A short name for a token in the audit trail, derived from its digest:
    it says which token without helping anyone forge or find it."""
    return hashlib.sha256(f"audit-token:{token.digest}".encode()).hexdigest()[:16]


def _record(token: AuthToken, *, issued: bool, reason: str) -> None:
    value = {"token": fingerprint(token), "expiry": iso_ms(token.expiry) if token.expiry else None}
    log_entity_change(
        entity_type="user",
        entity_id=token.user.user_id,
        field_name="api_token",
        old_value=None if issued else value,
        new_value=value if issued else None,
        action_type="create" if issued else "delete",
        change_reason=reason,
    )


@transaction.atomic
def issue_token(*, user, reason: str = "API token issued") -> tuple[AuthToken, str]:
    """A new token for ``user`` (who has just proved their password), with the
    configured expiry. Returns the row and the token text (shown once)."""
    ttl = token_ttl()
    if not ttl or ttl <= timedelta(0):
        raise RuntimeError("REST_KNOX TOKEN_TTL must be a positive duration: no token without an expiry.")
    with acting(user, reason):
        instance, text = AuthToken.objects.create(user, expiry=ttl)
        _record(instance, issued=True, reason=reason)
    return instance, text


@transaction.atomic
def revoke_token(*, token: AuthToken, actor=None, reason: str = "API token revoked") -> None:
    with acting(actor or token.user, reason):
        _record(token, issued=False, reason=reason)
        token.delete()


@transaction.atomic
def revoke_tokens(*, user, actor=None, keep: AuthToken | None = None, reason: str) -> int:
    """Revoke every token of ``user`` except ``keep``; returns how many."""
    tokens = AuthToken.objects.filter(user=user).select_related("user")
    if keep is not None:
        tokens = tokens.exclude(pk=keep.pk)
    count = 0
    with acting(actor or user, reason):
        for token in tokens:
            _record(token, issued=False, reason=reason)
            count += 1
        AuthToken.objects.filter(pk__in=[t.pk for t in tokens]).delete()
    return count


def end_sessions(*, user, keep_session_key: str | None = None) -> int:
    """Delete the browser sessions of ``user`` (database sessions), except
    ``keep_session_key``. Sessions are not indexed by user, so this reads the
    unexpired ones: a cost paid on deactivation, not on every request."""
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    doomed = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.session_key == keep_session_key:
            continue
        if session.get_decoded().get("_auth_user_id") == str(user.pk):
            doomed.append(session.session_key)
    Session.objects.filter(session_key__in=doomed).delete()
    return len(doomed)
