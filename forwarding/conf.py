"""Settings of the forwarding, read through accessors with defaults (docs/operations.md "Forwarding")."""

from __future__ import annotations

from django.conf import settings

from forwarding import sinks


def sink_urls() -> list[str]:
    value = getattr(settings, "AUDIT_FORWARD_SINKS", [])
    if isinstance(value, str):
        value = value.split(",")
    return [u.strip() for u in value if u and u.strip()]


def configured_sinks() -> list[sinks.Sink]:
    return [sinks.parse(url, timeout=timeout()) for url in sink_urls()]


def every() -> float:
    """Seconds between two scheduled runs (``AUDIT_FORWARD_EVERY``; 0 switches the schedule off)."""
    return float(getattr(settings, "AUDIT_FORWARD_EVERY", 2.0)) if sink_urls() else 0.0


def batch_size() -> int:
    return max(1, int(getattr(settings, "AUDIT_FORWARD_BATCH", 500)))


def timeout() -> float:
    return float(getattr(settings, "AUDIT_FORWARD_TIMEOUT", 10.0))


def settle() -> float:
    """Seconds a gap in a table's ids is waited for before it is taken for a rolled-back insert."""
    return float(getattr(settings, "AUDIT_FORWARD_SETTLE", 10.0))


def run_for() -> float:
    """Seconds one run keeps forwarding while rows keep coming."""
    return float(getattr(settings, "AUDIT_FORWARD_RUN_FOR", 30.0))


def lag_alert() -> float:
    """Lag (age of the oldest unforwarded row) in seconds above which a warning event is recorded."""
    return float(getattr(settings, "AUDIT_FORWARD_LAG_ALERT", 300.0))
