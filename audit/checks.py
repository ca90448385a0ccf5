"""System checks for the audit settings (connected in AuditConfig.ready)."""

import ipaddress

from django.conf import settings
from django.core.checks import Error, Warning, register

from . import conf


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
