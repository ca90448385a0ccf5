"""Reads of the alerts app for other apps' pages."""

from __future__ import annotations

from alerts import rules
from alerts.models import Delivery
from audit.models import SystemEvent


def notified_about(*, event_type: str, entity_type: str, entity_id: str) -> list[str]:
    """Who is being told about the newest such event: its deliveries once it is processed,
    else whom its rules name. People by user id and name, other recipients by address."""
    event = (SystemEvent.objects.filter(event_type=event_type, entity_type=entity_type, entity_id=entity_id)
             .order_by("-id").first())
    if event is None:
        return []
    if event.processed:
        rows = Delivery.objects.filter(event=event).order_by("recipient_user", "recipient")
        pairs = [(d.recipient_user, d.recipient) for d in rows]
    else:
        pairs = [(t.user_id, t.label) for t in rules.plan(event)]
    from django.contrib.auth import get_user_model

    names = dict(get_user_model().objects.filter(user_id__in=[u for u, _ in pairs if u])
                 .values_list("user_id", "full_name"))
    return [f"{user_id} ({names[user_id]})" if names.get(user_id) else (user_id or label) for user_id, label in pairs]


def sentence(names: list[str]) -> str:
    if not names:
        return ""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
