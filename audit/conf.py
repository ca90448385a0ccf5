"""Audit settings, read through small accessor functions with defaults.

Nothing here is read at import time; tests may use ``override_settings``.

- ``AUDIT_TRUSTED_PROXIES``: IPs or CIDRs of reverse proxies whose
  ``X-Forwarded-For`` is believed (default: none, so ``REMOTE_ADDR`` is used).
- ``AUDIT_EXCLUDED_PATHS``: path prefixes never logged as page visits or API
  calls (default ``/static/``, ``/media/``, ``/favicon.ico``, ``/health``).
- ``AUDIT_LOG_PAGE_VISITS`` / ``AUDIT_LOG_API_WRITES``: switch the
  middleware's activity rows (default on).
- ``AUDIT_API_PREFIX`` (``/api/``) and ``AUDIT_READS_PREFIX``
  (``/api/realtime/``, whose reads the audit API logs itself).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

DEFAULT_EXCLUDED_PATHS = ("/static/", "/media/", "/favicon.ico", "/health")
USER_AGENT_MAX = 255


def _get(name, default):
    return getattr(settings, name, default)


def trusted_proxy_entries() -> list[str]:
    value = _get("AUDIT_TRUSTED_PROXIES", [])
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    return [str(v).strip() for v in value if str(v).strip()]


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # reported by the system check audit.E001
    return tuple(networks)


def trusted_proxies() -> tuple:
    """The trusted proxies as ``ipaddress`` networks (bad entries skipped)."""
    return _networks(tuple(trusted_proxy_entries()))


def excluded_paths() -> tuple[str, ...]:
    return tuple(_get("AUDIT_EXCLUDED_PATHS", DEFAULT_EXCLUDED_PATHS))


def log_page_visits() -> bool:
    return bool(_get("AUDIT_LOG_PAGE_VISITS", True))


def log_api_writes() -> bool:
    return bool(_get("AUDIT_LOG_API_WRITES", True))


def api_prefix() -> str:
    return _get("AUDIT_API_PREFIX", "/api/")


def audit_reads_prefix() -> str:
    return _get("AUDIT_READS_PREFIX", "/api/realtime/")
