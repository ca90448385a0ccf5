"""The client IP of a request.

``REMOTE_ADDR`` unless that peer is a configured trusted proxy
(``AUDIT_TRUSTED_PROXIES``, IPs or CIDRs); then the right-most
``X-Forwarded-For`` entry that is not itself a trusted proxy. A client can
therefore never choose its recorded IP by sending ``X-Forwarded-For``.

Implemented with the stdlib :mod:`ipaddress` module rather than
python-ipware: ipware's ``proxy_list`` matches string prefixes (no CIDRs)
and does not tie the trust decision to the actual peer (``REMOTE_ADDR``), so
it cannot express "right-most untrusted hop behind a trusted peer". Any
unparsable value falls back to ``REMOTE_ADDR`` (or ``None`` if that is bad
too).
"""

from __future__ import annotations

import ipaddress

from audit import conf


def parse_ip(value: str | None) -> str | None:
    """A normalized IP from ``value`` (tolerating ``1.2.3.4:5678`` and
    ``[::1]:80``), or ``None``."""
    if not value:
        return None
    text = value.strip().strip('"')
    if text.startswith("["):  # [v6]:port
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    if "%" in text:  # zone id
        text = text.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip)


def is_trusted(ip: str, proxies=None) -> bool:
    proxies = conf.trusted_proxies() if proxies is None else proxies
    if not proxies:
        return False
    address = ipaddress.ip_address(ip)
    return any(address.version == net.version and address in net for net in proxies)


def client_ip(request) -> str | None:
    meta = request.META
    remote = parse_ip(meta.get("REMOTE_ADDR"))
    proxies = conf.trusted_proxies()
    if remote is None or not proxies or not is_trusted(remote, proxies):
        return remote
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    if not forwarded:
        return remote
    hops = [h for h in forwarded.split(",")]
    for hop in reversed(hops):
        ip = parse_ip(hop)
        if ip is None:
            return remote  # garbage in the chain: believe only the peer
        if not is_trusted(ip, proxies):
            return ip
    return remote
