"""Accounts settings, read through accessors with defaults (nothing is
assigned to ``django.conf.settings`` at import time).

- ``ACCOUNTS_LOCKOUT_THRESHOLD`` (5): failed logins of one user id from one
  client IP that lock that id out of new logins from that IP.
- ``ACCOUNTS_LOCKOUT_CEILING`` (50): failed logins of one user id from all
  IPs together that lock the id out of new logins from everywhere.
- ``ACCOUNTS_LOCKOUT_MINUTES`` (15): the counting window, and how long a lock lasts.
- ``ACCOUNTS_LOCKOUT_CACHE`` ("default"): the cache alias that holds the counters;
  it must be shared by every process (the database cache or Redis, see ``CACHE_URL``).
"""

from __future__ import annotations

from django.conf import settings


def _int(name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(getattr(settings, name, default))
    except (TypeError, ValueError):
        value = default
    return max(low, min(high, value))


def lockout_threshold() -> int:
    return _int("ACCOUNTS_LOCKOUT_THRESHOLD", 5, 1, 1000)


def lockout_ceiling() -> int:
    return max(lockout_threshold(), _int("ACCOUNTS_LOCKOUT_CEILING", 50, 1, 100_000))


def lockout_minutes() -> int:
    return _int("ACCOUNTS_LOCKOUT_MINUTES", 15, 1, 24 * 60)


def lockout_cache_alias() -> str:
    return str(getattr(settings, "ACCOUNTS_LOCKOUT_CACHE", "default"))


def registration_limit() -> int:
    """``ACCOUNTS_REGISTRATION_LIMIT`` (10): registration attempts one client IP
    may make within ``ACCOUNTS_REGISTRATION_MINUTES`` (60), API and portal together."""
    return _int("ACCOUNTS_REGISTRATION_LIMIT", 10, 1, 100_000)


def registration_minutes() -> int:
    return _int("ACCOUNTS_REGISTRATION_MINUTES", 60, 1, 7 * 24 * 60)
