"""Sending one notification: e-mail through Django's e-mail framework (one message
per recipient), notification URLs through Apprise (chat services, ``json://``
webhooks). Each sender raises :class:`SendFailed` with a sentence fit for the
delivery's ``last_error``; no secret (a password, a URL's token) is put in it."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.mail import EmailMessage

from audit.models import SystemEvent

SUBJECT_MAX = 200


class SendFailed(Exception):
    pass


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def subject(event: SystemEvent) -> str:
    target = f" {event.entity_type} {event.entity_id}".rstrip() if event.entity_id else ""
    label = event.event_type.replace("_", " ")
    return _one_line(f"[{event.get_severity_display()}] {label[:1].upper()}{label[1:]}{target}")[:SUBJECT_MAX]


def body(event: SystemEvent) -> str:
    try:
        data = json.loads(event.event_data) if event.event_data else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        details = "\n".join(f"  {key}: {value}" for key, value in sorted(data.items()))
    else:
        details = f"  {event.event_data}" if event.event_data else "  (none)"
    lines = [
        f"Event:     {event.event_type} (#{event.pk})",
        f"Severity:  {event.get_severity_display()}",
        f"When:      {event.timestamp:%Y-%m-%d %H:%M:%S} UTC",
    ]
    if event.entity_id:
        lines.append(f"Concerns:  {event.entity_type} {event.entity_id}")
    lines += ["Details:", details, "",
              "Acknowledge it on the dashboard or with POST /api/realtime/system-events/"
              f"{event.pk}/acknowledge once someone takes it on.",
              "", "-- Marine Service Center alerts"]
    return "\n".join(lines)


def send_email(event: SystemEvent, address: str) -> None:
    message = EmailMessage(subject(event), body(event), settings.DEFAULT_FROM_EMAIL, [address])
    try:
        sent = message.send(fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - any transport error is a failed attempt
        raise SendFailed(f"The e-mail could not be sent: {exc.__class__.__name__}: {_one_line(exc)[:300]}") from None
    if not sent:
        raise SendFailed("The e-mail backend sent nothing.")


def send_url(event: SystemEvent, url: str) -> None:
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise SendFailed("The notification URL is not one Apprise knows.")
    with apprise.LogCapture(level=apprise.logging.WARNING) as captured:
        ok = notifier.notify(title=subject(event), body=body(event))
    if not ok:
        log = _one_line(captured.getvalue()).replace(url, "[notification URL]")
        raise SendFailed(("The notification service did not accept the message. " + log)[:500].strip())
