"""Looks: one person's opening of a live audit page (SPEC: reads of audit data
are logged once per look, not once per refresh).

The page records its opening and hands its script a signed look token
(:func:`issue`). The reads the script makes to refresh itself carry the token
as ``?look=``; a read whose token is genuine, for the same user and the same
page, and not older than :data:`MAX_AGE`, is part of a look already recorded
and writes no new activity row (:func:`is_known`). Anything else (no token, a
forged, expired or someone else's token) is a new read and is recorded, so a
token can only ever spare a row that was already written once.
"""

from __future__ import annotations

import secrets

from django.core import signing

SALT = "audit.looks"
#: a dashboard left open longer than this logs one more opening (a new look) per MAX_AGE
MAX_AGE = 12 * 60 * 60
PARAM = "look"


def issue(*, user, page: str) -> str:
    """A token naming ``user``'s look at ``page`` (the look's opening is recorded by the caller)."""
    return signing.dumps({"u": str(user.pk), "p": page, "n": secrets.token_hex(4)}, salt=SALT)


def is_known(request, *, page: str) -> bool:
    """Whether this read carries a genuine token of the same user's look at ``page``."""
    token = request.GET.get(PARAM)
    user = getattr(request, "user", None)
    if not token or len(token) > 300 or user is None or not user.is_authenticated:
        return False
    try:
        value = signing.loads(token, salt=SALT, max_age=MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is a BadSignature too
        return False
    return isinstance(value, dict) and value.get("u") == str(user.pk) and value.get("p") == page
