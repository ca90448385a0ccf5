"""Settings of the background engine, read through accessors with defaults."""

from __future__ import annotations

from django.conf import settings


def heartbeat_interval() -> float:
    """Seconds between two heartbeats of a worker (``BACKGROUND_HEARTBEAT``)."""
    return max(0.1, float(getattr(settings, "BACKGROUND_HEARTBEAT", 5.0)))


def lease() -> float:
    """Seconds after which a RUNNING task whose worker is silent is run again (``BACKGROUND_LEASE``)."""
    return max(1.0, float(getattr(settings, "BACKGROUND_LEASE", 60.0)))


def queues() -> list[str]:
    return list(getattr(settings, "BACKGROUND_QUEUES", ["default", "ops"]))


def backend_name() -> str:
    return str(getattr(settings, "TASKS_BACKEND", "database"))
