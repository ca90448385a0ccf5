"""Audit settings, read through small accessor functions with defaults.

Nothing here is read at import time; tests may use ``override_settings``.

- ``AUDIT_TRUSTED_PROXIES``: IPs or CIDRs of reverse proxies whose
  ``X-Forwarded-For`` is believed (default: none, so ``REMOTE_ADDR`` is used).
- ``AUDIT_EXCLUDED_PATHS``: path prefixes never logged as page visits or API
  calls (default ``/static/``, ``/media/``, ``/favicon.ico``, ``/health`` (so ``/healthz``), ``/readyz``).
- ``AUDIT_LOG_PAGE_VISITS`` / ``AUDIT_LOG_API_WRITES``: switch the
  middleware's activity rows (default on).
- ``AUDIT_API_PREFIX`` (``/api/``) and ``AUDIT_READS_PREFIX``
  (``/api/realtime/``, whose reads the audit API logs itself).
- ``AUDIT_SIGNING_KEY_FILE`` (a PEM file) or ``AUDIT_SIGNING_KEY`` (the PEM
  text itself): the Ed25519 private key that signs seals and export packs
  (:mod:`audit.operations.signing`); required unless AUDIT_DEVELOPMENT_KEYS (DEBUG).
- ``AUDIT_PREPARED_STATEMENTS`` (default on): on PostgreSQL the capture's
  own statements run as server-side prepared statements (see
  :func:`audit.capture.writer.capture_cursor`); switch off behind a pooler that
  cannot keep them (PgBouncer before 1.21 in transaction mode).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

DEFAULT_EXCLUDED_PATHS = ("/static/", "/media/", "/favicon.ico", "/health", "/readyz")


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


def prepared_statements() -> bool:
    return bool(_get("AUDIT_PREPARED_STATEMENTS", True))


def api_prefix() -> str:
    return _get("AUDIT_API_PREFIX", "/api/")


def audit_reads_prefix() -> str:
    return _get("AUDIT_READS_PREFIX", "/api/realtime/")


# -- retention and sealing (audit.operations.retention, audit.operations.integrity) -------------------------------------

DEFAULT_RETENTION_DAYS = {"activity_logs": 365, "system_events": 365, "audit_trail": 7 * 365,
                          "update_history": 7 * 365}
DEV_SEAL_KEY = "dev-only-audit-seal-key-not-for-production"


def retention_days(table: str) -> int:
    """Days ``table``'s rows are kept (``AUDIT_RETENTION_DAYS[table]``)."""
    configured = _get("AUDIT_RETENTION_DAYS", {}) or {}
    return int(configured.get(table, DEFAULT_RETENTION_DAYS[table]))


def seal_file():
    """Where the newest seal is written outside the database (``AUDIT_SEAL_FILE``)."""
    from pathlib import Path

    value = _get("AUDIT_SEAL_FILE", None)
    return Path(value) if value else Path(settings.BASE_DIR) / "var" / "audit-seal.json"


def seal_key() -> bytes:
    """The HMAC key of the seal file (``AUDIT_SEAL_KEY``); a fixed development
    key only under AUDIT_DEVELOPMENT_KEYS (DEBUG; system check audit.E003 otherwise)."""
    key = _get("AUDIT_SEAL_KEY", "") or ""
    if not key and development_keys_allowed():
        key = DEV_SEAL_KEY
    return key.encode()


def signing_key_file():
    """The Ed25519 private key file (``AUDIT_SIGNING_KEY_FILE``), or None."""
    from pathlib import Path

    value = _get("AUDIT_SIGNING_KEY_FILE", "") or ""
    return Path(value) if value else None


def signing_key_pem() -> str:
    """The Ed25519 private key as PEM text (``AUDIT_SIGNING_KEY``; ``\\n`` stands for a newline)."""
    return (_get("AUDIT_SIGNING_KEY", "") or "").replace("\\n", "\n")


def development_keys_allowed() -> bool:
    """A missing seal key is the development key and a missing signing key may be
    generated: ``AUDIT_DEVELOPMENT_KEYS`` (DEBUG in settings.py; the test settings set it)."""
    return bool(_get("AUDIT_DEVELOPMENT_KEYS", settings.DEBUG))


def development_signing_key_file():
    """Where a development signing key is generated: beside the seal file (``var/`` by default)."""
    path = seal_file()
    return path.with_name("audit-signing-key.pem")


def purge_database() -> str:
    """The connection alias the purge deletes through: ``purge``
    (DATABASE_PURGE_URL, the purge role) when configured, else ``default``."""
    return "purge" if "purge" in settings.DATABASES else "default"
