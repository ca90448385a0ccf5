"""Which rules an event fires and whom they name (pure reads; the writes are in
:mod:`alerts.processing`).

    plan(event)     -> [Target, ...]   one per channel and recipient, de-duplicated
    preview(event)  -> the same, for telling a reporter who is being notified

A rule fires for an event when it is enabled and:

- *event* rule: its event type, severity and entity type match (blank matches
  anything) and, with a threshold N above 1, the event is the N-th, 2N-th, ...
  matching event within the window (all together, or per entity); events are
  counted up to and including this one (by id), so re-processing an event gives
  the same answer and two workers never disagree;
- *failed-login* rule: the event is the ``failed_login_threshold`` event that
  :func:`alerts.processing.check_failed_logins` recorded for this very rule.

Event types in :data:`alerts.models.NEVER_ALERTED` fire nothing (a failed
delivery's warning never alerts about itself).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model

from alerts.models import FAILED_LOGIN_THRESHOLD_EVENT, NEVER_ALERTED, AlertRule, Channel, GroupBy, Trigger, url_key
from audit.models import SystemEvent


@dataclass(frozen=True)
class Target:
    """One recipient on one channel. ``address`` is the e-mail address or the
    notification URL (never stored: a delivery keeps ``key`` and ``label``)."""

    channel: str
    address: str
    label: str
    key: str
    user_id: str = ""
    rule_id: int | None = None


def event_data(event: SystemEvent) -> dict:
    try:
        value = json.loads(event.event_data or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _matches(rule: AlertRule, event: SystemEvent) -> bool:
    return ((not rule.event_type or rule.event_type == event.event_type)
            and (not rule.severity or rule.severity == event.severity)
            and (not rule.entity_type or rule.entity_type == event.entity_type))


def _threshold_reached(rule: AlertRule, event: SystemEvent) -> bool:
    if rule.threshold <= 1:
        return True
    qs = SystemEvent.objects.filter(id__lte=event.pk)
    if rule.window_minutes:
        qs = qs.filter(timestamp__gt=event.timestamp - timedelta(minutes=rule.window_minutes),
                       timestamp__lte=event.timestamp)
    for name in ("event_type", "severity", "entity_type"):
        if getattr(rule, name):
            qs = qs.filter(**{name: getattr(rule, name)})
    if rule.group_by == GroupBy.ENTITY:
        qs = qs.filter(entity_type=event.entity_type, entity_id=event.entity_id)
    return qs.count() % rule.threshold == 0


def fires(rule: AlertRule, event: SystemEvent) -> bool:
    if not rule.enabled or event.event_type in NEVER_ALERTED:
        return False
    if rule.trigger == Trigger.FAILED_LOGINS:
        return event.event_type == FAILED_LOGIN_THRESHOLD_EVENT and event_data(event).get("rule_id") == rule.pk
    return _matches(rule, event) and _threshold_reached(rule, event)


def _url_label(url: str) -> str:
    """The URL as Apprise shows it with its secrets hidden (``json://127.0.0.1:8080/...``)."""
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    if not plugin:
        return "unknown notification URL"
    return plugin.url(privacy=True).split("?")[0][:254]


def targets(rule: AlertRule) -> list[Target]:
    """The rule's recipients: users of its roles and ids who are active, approved and
    have an e-mail address; its e-mail addresses; its notification URLs."""
    User = get_user_model()
    out: list[Target] = []
    people = User.objects.none()
    if rule.recipient_roles:
        people = people | User.objects.filter(role__in=rule.recipient_roles)
    if rule.recipient_users:
        people = people | User.objects.filter(user_id__in=[str(u).upper() for u in rule.recipient_users])
    people = people.filter(is_active=True, approval_status="approved").exclude(email="").order_by("user_id")
    for user_id, email in people.values_list("user_id", "email"):
        out.append(Target(Channel.EMAIL, email, email, email.lower(), user_id, rule.pk))
    for email in rule.email_list():
        out.append(Target(Channel.EMAIL, email, email, email.lower(), "", rule.pk))
    for url in rule.url_list():
        out.append(Target(Channel.URL, url, _url_label(url), url_key(url), "", rule.pk))
    return out


def plan(event: SystemEvent, rules=None) -> list[Target]:
    """Every recipient the event's firing rules name, once per channel and address."""
    if event.event_type in NEVER_ALERTED:
        return []
    rules = AlertRule.objects.filter(enabled=True).order_by("id") if rules is None else rules
    seen: set[tuple[str, str]] = set()
    out: list[Target] = []
    for rule in rules:
        if not fires(rule, event):
            continue
        for target in targets(rule):
            if (target.channel, target.key) not in seen:
                seen.add((target.channel, target.key))
                out.append(target)
    return out


def describe(targets_: list[Target]) -> str:
    """People first (by user id), then other addresses and services: ``PE001, PE002 and ops@example.com``."""
    names = [t.user_id or t.label for t in targets_]
    if not names:
        return ""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
