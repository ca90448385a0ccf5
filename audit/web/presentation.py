"""Turning audit rows into what the pages show: before/after tables, links,
chart geometry. Pure functions over model instances and plain values; the
templates escape everything (recorded data is attacker-controlled), nothing
here marks text safe."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.timesince import timesince

from audit import selectors
from core.fields import iso_ms

#: entity_type -> the portal's detail page (URL name taking the entity's code).
DETAIL_URLS = {
    "maintenance_request": "request_detail",
    "emergency": "emergency_detail",
    "inventory_item": "inventory_detail",
    "user": "user_detail",
}
NOT_USERS = ("system", "anonymous")


@dataclass(frozen=True)
class FieldRow:
    name: str
    old: str | None
    new: str | None
    changed: bool


def _load(text) -> dict:
    if isinstance(text, dict):
        return text
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {"value": text}
    return value if isinstance(value, dict) else {"value": value}


def shown(value) -> str | None:
    """A recorded value as text (``None`` stays ``None``: the template shows
    it as "empty", distinct from an empty string)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def field_rows(trail) -> list[FieldRow]:
    """Before and after of one audit_trail row, field by field: the fields of
    its ``changes`` first (``changed=True``), then any other field found in
    ``old_value``/``new_value`` (unchanged, shown for context)."""
    changes = trail.changes if isinstance(trail.changes, dict) else {}
    old, new = _load(trail.old_value), _load(trail.new_value)
    rows = []
    for name, diff in changes.items():
        diff = diff if isinstance(diff, dict) else {}
        rows.append(FieldRow(str(name), shown(diff.get("old", old.get(name))), shown(diff.get("new", new.get(name))), True))
    for name in [*old, *(k for k in new if k not in old)]:
        if name in changes:
            continue
        before, after = shown(old.get(name)), shown(new.get(name))
        rows.append(FieldRow(str(name), before, after, before != after))
    return rows


def entity_url(entity_type: str, entity_id: str) -> str | None:
    name = DETAIL_URLS.get(entity_type)
    if not name or not entity_id:
        return None
    try:
        return reverse(name, args=[entity_id])
    except NoReverseMatch:
        return None


EVENT_LABELS = {
    "emergency_created": "Emergency reported",
    "integrity_check_failed": "Integrity check failed",
    "account_locked": "Account locked",
    "failed_login_threshold": "Repeated failed logins",
    "notification_failed": "Notification failed",
    "unhandled_error": "Unhandled error",
    "audit_purged": "Audit records purged",
}


def event_label(event_type: str) -> str:
    """A system event's type as people read it (``emergency_created`` -> "Emergency reported")."""
    if event_type in EVENT_LABELS:
        return EVENT_LABELS[event_type]
    text = str(event_type).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def user_timeline_url(user_id: str) -> str | None:
    if not user_id or user_id in NOT_USERS:
        return None
    try:
        return reverse("audit_user_activity", args=[user_id])
    except NoReverseMatch:
        return None


# --- charts (server-rendered SVG) ---------------------------------------------


@dataclass(frozen=True)
class Bar:
    index: int
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str
    start: datetime


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    bars: list[Bar]
    maximum: int
    width: int
    height: int
    plot_top: int
    plot_bottom: int
    axis_labels: list[tuple[float, str]]
    unit: str

    @property
    def total(self) -> int:
        return sum(b.count for b in self.bars)


def bar_chart(series: list[dict], *, title: str, unit: str, label_format: str, width: int = 640, height: int = 180,
              axis_every: int = 10) -> Chart:
    """Geometry of a bar chart for ``series`` (``[{start, count}]``): the
    template draws it; JavaScript moves the same bars when new data comes."""
    plot_top, plot_bottom, left = 10, height - 24, 36
    maximum = max([s["count"] for s in series] + [1])
    n = max(len(series), 1)
    slot = (width - left - 4) / n
    bars = []
    for i, point in enumerate(series):
        h = (plot_bottom - plot_top) * point["count"] / maximum
        bars.append(Bar(i, round(left + i * slot + 0.5, 2), round(plot_bottom - h, 2), round(max(slot - 1, 1), 2),
                        round(h, 2), point["count"], point["start"].strftime(label_format), point["start"]))
    axis = [(b.x, b.label) for b in bars if b.index % axis_every == 0]
    description = f"{sum(s['count'] for s in series)} {unit} in total, at most {max([s['count'] for s in series] + [0])} per bar."
    return Chart(title, description, bars, maximum, width, height, plot_top, plot_bottom, axis, unit)


def chart_json(chart: Chart) -> dict:
    return {
        "maximum": chart.maximum,
        "total": chart.total,
        "description": chart.description,
        "bars": [{"y": b.y, "height": b.height, "count": b.count, "label": b.label} for b in chart.bars],
    }


def critical_events(now=None) -> list[dict]:
    """The open critical events (critical, not acknowledged) of the last 24 hours, each
    with its age and the URL that acknowledges it (the dashboard and the home page)."""
    now = now or timezone.now()
    return [
        {"id": e.id, "timestamp": iso_ms(e.timestamp), "event_type": e.event_type, "entity_type": e.entity_type,
         "entity_id": e.entity_id, "event_data": e.event_data,
         "label": event_label(e.event_type),
         "age": timesince(e.timestamp, now, depth=1), "processed": e.processed,
         "url": entity_url(e.entity_type, e.entity_id),
         "acknowledge_url": reverse("audit_acknowledge_event", args=[e.id])}
        for e in selectors.open_critical_events(hours=24, limit=10)
    ]
