"""Retry policies of tasks: capped exponential back-off and a maximum number of attempts."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_attempts`` runs of a task; after the n-th failed run the
    next waits ``base_delay * 2**(n-1)`` seconds, at most ``max_delay``."""

    max_attempts: int
    base_delay: float
    max_delay: float

    def delay(self, failed_attempts: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** max(failed_attempts - 1, 0))


_policies: dict[str, tuple] = {}  # task path -> (max_attempts, base_delay, max_delay), None = default


def default_policy() -> RetryPolicy:
    return RetryPolicy(
        max_attempts=max(1, int(getattr(settings, "BACKGROUND_MAX_ATTEMPTS", 3))),
        base_delay=float(getattr(settings, "BACKGROUND_RETRY_BASE", 2.0)),
        max_delay=float(getattr(settings, "BACKGROUND_RETRY_CAP", 300.0)),
    )


def retry(*, max_attempts: int | None = None, base_delay: float | None = None, max_delay: float | None = None):
    """Give one task its own retry policy (the others follow the settings'
    ``BACKGROUND_MAX_ATTEMPTS`` / ``_RETRY_BASE`` / ``_RETRY_CAP``). Put it above
    ``@task``::

        @retry(max_attempts=8, base_delay=1, max_delay=600)
        @task()
        def deliver(delivery_id): ...
    """

    def register(declared):
        _policies[declared.module_path] = (max_attempts, base_delay, max_delay)
        return declared

    return register


def retry_policy(task_path: str) -> RetryPolicy:
    """The policy of the task at ``task_path`` (its ``module_path``)."""
    default = default_policy()
    own = _policies.get(task_path)
    if own is None:
        return default
    attempts, base, cap = own
    return RetryPolicy(
        max_attempts=attempts if attempts is not None else default.max_attempts,
        base_delay=base if base is not None else default.base_delay,
        max_delay=cap if cap is not None else default.max_delay,
    )
