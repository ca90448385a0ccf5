"""The one login lock-out, counted in a cache that every process shares.

Every login path (portal form, ``/admin/login/``, ``POST /api/auth/token`` and
any later one) goes through ``django.contrib.auth.authenticate`` and so through
:class:`accounts.backends.ApprovedUserBackend`, which asks :func:`locked_until`
before checking a password and calls ``services.record_failed_login`` after a
wrong one. A failure counts twice:

- against the user id (case-folded) from this client IP (the IP
  ``audit.ip.client_ip`` computes, trusting only configured proxies): at
  ``ACCOUNTS_LOCKOUT_THRESHOLD`` failures within ``ACCOUNTS_LOCKOUT_MINUTES``
  the id is locked for new logins from that IP;
- against the user id from every IP: at ``ACCOUNTS_LOCKOUT_CEILING`` the id is
  locked for new logins from everywhere (``User.locked_until`` is set too, so
  administrators see it).

A lock lasts ``ACCOUNTS_LOCKOUT_MINUTES`` and refuses new logins only: sessions
and tokens already issued keep working. Unknown ids are counted and locked like
known ones, so a lock tells nobody whether an id exists. An administrator's
password reset lifts every lock of the id (:func:`clear`).

The database cache updates a counter with a read and a write: two failures at
the same instant may count once. Redis (``CACHE_URL=redis://...``) is no
different here; the bound this leaves is a few extra guesses, not a bypass.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.cache import caches

from . import conf


@dataclass(frozen=True)
class Lock:
    """A lock that a failure has just started: ``scope`` is "address" (this
    id from this IP) or "everywhere" (this id from every IP)."""

    scope: str
    until: datetime
    failures: int


def _fold(user_id) -> str:
    return str(user_id or "").strip().casefold()


def _digest(*parts: str) -> str:
    # ids and IPs are hashed: cache keys must be short and free of spaces or control characters
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _cache():
    return caches[conf.lockout_cache_alias()]


def _keys(user_id, ip) -> dict[str, str]:
    folded = _fold(user_id)
    cache = _cache()
    # a password reset bumps the generation: every per-IP key of the id changes at once
    generation = cache.get(f"lockout:gen:{_digest(folded)}", 0)
    pair = _digest(folded, ip or "-", str(generation))
    every = _digest(folded, str(generation))
    return {
        "pair_count": f"lockout:pc:{pair}",
        "pair_lock": f"lockout:pl:{pair}",
        "id_count": f"lockout:ic:{every}",
        "id_lock": f"lockout:il:{every}",
    }


def locked_until(user_id, ip) -> datetime | None:
    """When the lock on new logins of ``user_id`` from ``ip`` ends, or None."""
    keys = _keys(user_id, ip)
    found = _cache().get_many([keys["pair_lock"], keys["id_lock"]])
    now = time.time()
    ends = [value for value in found.values() if isinstance(value, (int, float)) and value > now]
    return datetime.fromtimestamp(max(ends), tz=UTC) if ends else None


def _bump(cache, key: str, window: int, now: float) -> int:
    value = cache.get(key)
    if isinstance(value, tuple) and len(value) == 2 and value[1] > now:
        count, expires = value[0] + 1, value[1]
    else:
        count, expires = 1, now + window
    cache.set(key, (count, expires), timeout=max(1, int(expires - now) + 1))
    return count


def registration_attempt(ip) -> int | None:
    """Count one registration attempt from ``ip`` (API and portal together);
    None while within ``ACCOUNTS_REGISTRATION_LIMIT`` per
    ``ACCOUNTS_REGISTRATION_MINUTES``, else the seconds until the window ends
    (the attempt is refused and counts no further)."""
    cache = _cache()
    key = f"register:{_digest(ip or '-')}"
    window = conf.registration_minutes() * 60
    now = time.time()
    value = cache.get(key)
    if isinstance(value, tuple) and len(value) == 2 and value[1] > now and value[0] >= conf.registration_limit():
        return max(1, int(value[1] - now) + 1)
    _bump(cache, key, window, now)
    return None


def record_failure(user_id, ip) -> Lock | None:
    """Count one failed login; return the lock it starts, if any."""
    cache = _cache()
    keys = _keys(user_id, ip)
    window = conf.lockout_minutes() * 60
    now = time.time()
    started = None
    pair = _bump(cache, keys["pair_count"], window, now)
    every = _bump(cache, keys["id_count"], window, now)
    until = now + window
    if every >= conf.lockout_ceiling():
        cache.set(keys["id_lock"], until, timeout=window + 1)
        cache.delete(keys["id_count"])
        started = Lock("everywhere", datetime.fromtimestamp(until, tz=UTC), every)
    if pair >= conf.lockout_threshold():
        cache.set(keys["pair_lock"], until, timeout=window + 1)
        cache.delete(keys["pair_count"])
        started = started or Lock("address", datetime.fromtimestamp(until, tz=UTC), pair)
    return started


def record_success(user_id, ip) -> None:
    """A right password from ``ip`` ends that address's series of failures
    (the count across all IPs goes on: those failures were someone else's)."""
    _cache().delete(_keys(user_id, ip)["pair_count"])


def clear(user_id) -> None:
    """Lift every lock and count of ``user_id`` (an administrator reset its password)."""
    cache = _cache()
    key = f"lockout:gen:{_digest(_fold(user_id))}"
    keys = _keys(user_id, None)
    cache.delete_many([keys["id_count"], keys["id_lock"]])
    # outlives every lock and window started under the old generation
    cache.set(key, time.time_ns(), timeout=3 * conf.lockout_minutes() * 60)
