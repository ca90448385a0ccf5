"""System checks for the audit settings (connected in AuditConfig.ready)."""

import ipaddress

from django.conf import settings
from django.core.checks import Error, Warning, register

from audit import conf
from audit.models import AUDIT_TABLES


@register("audit")
def check_audit_settings(app_configs=None, **kwargs):
    problems = []
    raw = getattr(settings, "AUDIT_TRUSTED_PROXIES", [])
    if not isinstance(raw, (list, tuple, str)):
        problems.append(Error("AUDIT_TRUSTED_PROXIES must be a list of IPs or CIDRs.",
                              hint="e.g. AUDIT_TRUSTED_PROXIES=10.0.0.1,192.168.0.0/24", id="audit.E001"))
        return problems
    for entry in conf.trusted_proxy_entries():
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            problems.append(Error(f"AUDIT_TRUSTED_PROXIES entry {entry!r} is not an IP address or CIDR.",
                                  hint="Use addresses such as 10.0.0.1 or networks such as 10.0.0.0/8.",
                                  id="audit.E001"))
            continue
        if network.prefixlen == 0:
            problems.append(Warning(f"AUDIT_TRUSTED_PROXIES entry {entry!r} trusts every address, so any client "
                                    "can choose its recorded IP with X-Forwarded-For.",
                                    hint="List only your reverse proxies.", id="audit.W001"))
    excluded = getattr(settings, "AUDIT_EXCLUDED_PATHS", conf.DEFAULT_EXCLUDED_PATHS)
    if not isinstance(excluded, (list, tuple)) or not all(isinstance(p, str) and p.startswith("/") for p in excluded):
        problems.append(Error("AUDIT_EXCLUDED_PATHS must be a list of path prefixes starting with '/'.",
                              id="audit.E002"))
    if "audit.middleware.AuditContextMiddleware" not in getattr(settings, "MIDDLEWARE", []):
        problems.append(Warning("audit.middleware.AuditContextMiddleware is not in MIDDLEWARE: requests will be "
                                "recorded without actor, IP or request id.", id="audit.W002"))
    return problems


@register("audit")
def check_integrity_settings(app_configs=None, **kwargs):
    problems = []
    key = getattr(settings, "AUDIT_SEAL_KEY", "") or ""
    if not key and not conf.development_keys_allowed():
        problems.append(Error("AUDIT_SEAL_KEY is not set: the seal file cannot be signed.",
                              hint="Set AUDIT_SEAL_KEY in the environment to a long random secret kept off the "
                                   "database server (e.g. python -c 'import secrets; print(secrets.token_hex(32))').",
                              id="audit.E003"))
    elif key and len(key) < 32:
        problems.append(Warning("AUDIT_SEAL_KEY is shorter than 32 characters.", id="audit.W003"))
    problems.extend(_signing_key_problems())
    retention = getattr(settings, "AUDIT_RETENTION_DAYS", {}) or {}
    if not isinstance(retention, dict) or any(
            table not in AUDIT_TABLES or not isinstance(days, int) or days < 1
            for table, days in retention.items()):
        problems.append(Error("AUDIT_RETENTION_DAYS must map audit table names to a number of days >= 1.",
                              hint=f"Tables: {', '.join(AUDIT_TABLES)}.", id="audit.E004"))
    return problems


def _signing_key_problems() -> list:
    from audit.operations import signing

    if not (conf.signing_key_file() or conf.signing_key_pem()):
        if conf.development_keys_allowed():
            return []
        return [Error("No seal signing key: seals and export packs cannot be signed.",
                      hint="Create one with 'manage.py seal_keys --generate /etc/marine/audit-signing-key.pem' "
                           "on the ops host and set AUDIT_SIGNING_KEY_FILE to it (keep it off the database "
                           "server); publish the public key ('manage.py seal_keys --public-keys').",
                      id="audit.E005")]
    try:
        signing.signer()
    except (signing.SigningKeyInvalid, OSError) as exc:
        return [Error(f"The seal signing key cannot be used: {exc}.",
                      hint="AUDIT_SIGNING_KEY_FILE must name a readable PEM Ed25519 private key without a "
                           "passphrase.", id="audit.E006")]
    return []


@register("audit")
def check_capture_private_apis(app_configs=None, **kwargs):
    """The private Django, simple-history and psycopg APIs the capture
    relies on (audit.capture.compat) are as it expects."""
    from audit.capture import compat

    return [Error(f"The audit capture relies on an API that changed: {problem}.",
                  hint="Pin the previous version or adapt audit/capture/compat.py (docs/capture.md).",
                  id="audit.E010") for problem in compat.problems()]
