"""The alerts' background tasks (queue ``default``), thin wrappers over :mod:`alerts.processing`.

``process_event`` is enqueued when an event commits, ``deliver`` for each new
delivery and each retry, ``check_failed_logins`` for each failed login;
``sweep`` runs every ``ALERT_SWEEP_EVERY`` seconds (``manage.py run_scheduler``, or by hand
``manage.py process_events``) and
catches whatever those missed. Each is safe to run twice.
"""

from __future__ import annotations

from django.conf import settings

from core.background import DEFAULT_QUEUE, periodic, task, task_backends


@task(queue_name=DEFAULT_QUEUE)
def process_event(event_id: int) -> int:
    from alerts import processing

    return len(processing.process_event(event_id) or [])


@task(queue_name=DEFAULT_QUEUE)
def deliver(delivery_id: int) -> str:
    from alerts import processing

    return processing.attempt_delivery(delivery_id) or ""


@task(queue_name=DEFAULT_QUEUE)
def check_failed_logins(activity_id: int) -> int:
    from alerts import processing

    return len(processing.check_failed_logins(activity_id))


@periodic(name="alerts.sweep", every=lambda: float(getattr(settings, "ALERT_SWEEP_EVERY", 10.0)))
@task(queue_name=DEFAULT_QUEUE)
def sweep() -> dict:
    from alerts import processing

    return processing.sweep()


def deliver_at(when, delivery_id: int) -> None:
    """Enqueue a retry to run at ``when`` where the backend can defer (the database backend and
    RQ can); elsewhere the sweep sends it once it is due."""
    if task_backends[deliver.backend].supports_defer:
        deliver.using(run_after=when).enqueue(delivery_id)
