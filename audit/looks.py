"""Looks: one person's opening of a live audit page (SPEC: reads of audit data
are logged once per look, not once per refresh).

The page records its opening and hands its script a signed look token
(:func:`issue`). The reads the script makes to refresh itself carry the token
as ``?look=``; a read whose token is genuine, for the same user and the same
page, and not older than :data:`MAX_AGE`, is part of a look already recorded
and writes no new activity row (:func:`is_known`). Anything else (no token, a
forged, expired or someone else's token) is a new read and is recorded, so a
token can only ever spare a row that was already written once.

Every read of audit data, by the API or a page, is recorded by :func:`record_read` before it is
answered, and refused if it cannot be (RELIABILITY).
"""

from __future__ import annotations

import json
import logging
import secrets

from django.core import signing

from audit import services
from audit.context import audit_context

logger = logging.getLogger(__name__)

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


class ReadNotRecorded(Exception):
    """A read of audit data could not be recorded in the audit log, so it is refused. The API
    answers it 503 with the error code ``audit_unavailable``, the pages 503 with :data:`REFUSED`."""


#: what the person who asked is told when their read is refused
REFUSED = "This read of audit data could not be recorded in the audit log, so it was refused."


def record_read(request, activity: str, details: dict) -> None:
    """Record ``request.user``'s read of audit data as the activity ``activity`` with ``details``
    (as JSON, keys sorted), before the read is answered.

    If the row cannot be written, whatever the cause, the failure is logged with its traceback
    (logger ``audit.looks``) and :class:`ReadNotRecorded` is raised: the caller answers nothing.
    """
    try:
        with audit_context(actor=request.user):
            services.log_activity(activity, json.dumps(details, sort_keys=True, default=str))
    except Exception as exc:  # any failure to record refuses the read
        logger.exception("audit read not recorded: %s", activity)
        raise ReadNotRecorded(REFUSED) from exc
