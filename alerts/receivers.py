"""Receivers of the audit app's signals: each enqueues a task, nothing more."""

from __future__ import annotations


def on_event_committed(sender, event_id, **kwargs) -> None:
    from alerts import tasks

    tasks.process_event.enqueue(event_id)


def on_login_failure(sender, activity_id, user_id="", ip_address=None, **kwargs) -> None:
    from alerts import tasks

    tasks.check_failed_logins.enqueue(activity_id)
