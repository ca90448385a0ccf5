"""Receivers of core signals for the maintenance app, connected once in ``MaintenanceConfig.ready()``;
each hands over to ``maintenance.services``."""

from __future__ import annotations

import json


def on_notification_sent(sender, event, recipient_user, channel, **kwargs) -> None:
    """An alert about a comment reached one of its addressees: the comment's receipt."""
    if event is None or event.event_type != "comment_added":
        return
    try:
        comment_id = int(json.loads(event.event_data or "{}").get("comment_id"))
    except (TypeError, ValueError, AttributeError):
        return
    from maintenance import services

    services.comment_notified(comment_id=comment_id, recipient_user_id=recipient_user, channel=channel)
