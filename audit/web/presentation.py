"""Turning audit rows into what the pages show: before/after tables, links,
chart geometry. Pure functions over model instances and plain values; the
templates escape everything (recorded data is attacker-controlled), nothing
here marks text safe."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import models
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
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
NOT_USERS = selectors.NOT_USERS  # actor ids that are not people (declared once, in selectors)


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
    plot_top, plot_bottom, left = 4, height - 4, 0  # the scale and time labels are HTML beside the SVG
    maximum = max([s["count"] for s in series] + [1])
    n = max(len(series), 1)
    slot = (width - left) / n
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
         "label": event_label(e.event_type), "sentence": event_sentence(e),
         "time": when(e.timestamp).text, "exact": when(e.timestamp).exact,
         "age": timesince(e.timestamp, now, depth=2), "processed": e.processed,
         "url": entity_url(e.entity_type, e.entity_id),
         "acknowledge_url": reverse("audit_acknowledge_event", args=[e.id])}
        for e in selectors.open_critical_events(hours=24, limit=10)
    ]


# --- history in words -----------------------------------------------------------
#
# Every page that shows audit rows (the audit-log page, the dashboard, entity and
# user timelines, the admin's audit pages) turns them into text here, so a field
# reads as its label, a stored code as its choice label, a person as
# "PE001 · Priya Eriksen" and a time as "2026-12-02 05:44:13 UTC".

#: fields nobody reads in a history: the row's own id and the automatic timestamps
HIDDEN_FIELDS = frozenset({"id", "created_at", "updated_at", "modified_at", "last_login", "password"})
#: action -> (what was done, what was tried: the sentence of a refused attempt)
VERBS = {
    "create": ("created", "create"), "update": ("updated", "update"), "delete": ("deleted", "delete"),
    "approve": ("approved", "approve"), "reject": ("rejected", "reject"), "assign": ("assigned", "assign"),
    "status_change": ("changed the status of", "change the status of"),
    "permission_change": ("changed the permissions of", "change the permissions of"),
    "password_reset": ("reset the password of", "reset the password of"),
    "role_change": ("changed the role of", "change the role of"), "revert": ("reverted", "revert"),
    "bulk_update": ("updated in bulk", "update in bulk"), "login": ("logged in as", "log in as"),
    "logout": ("logged out of", "log out of"),
}
SOMEONE = {"system": "The system", "anonymous": "Someone not logged in", "": "Someone"}


@dataclass(frozen=True)
class When:
    """A time as people read it (``text``) and its exact value (``exact``, for the hover title)."""
    text: str
    exact: str
    iso: str


def when(value) -> When | None:
    if value is None:
        return None
    value = value.astimezone(UTC) if timezone.is_aware(value) else value
    return When(value.strftime("%Y-%m-%d %H:%M:%S UTC"), value.strftime("%Y-%m-%d %H:%M:%S.%f UTC"), value.isoformat())


def people(user_ids) -> dict[str, str]:
    """``{user_id: "PE001 · Priya Eriksen"}`` for the ids given (one query); an unknown id reads as itself."""
    from django.contrib.auth import get_user_model

    ids = {str(u) for u in user_ids if u}
    names = dict(get_user_model().objects.filter(user_id__in=ids).values_list("user_id", "full_name")) if ids else {}
    return {uid: f"{uid} · {names[uid]}" if names.get(uid) else uid for uid in ids}


def person(user_id, names: dict[str, str] | None = None) -> str:
    if user_id in SOMEONE or user_id is None:
        return SOMEONE.get(user_id or "", "Someone")
    names = names if names is not None else people([user_id])
    return names.get(str(user_id), str(user_id))


def _model_for(entity_type: str):
    from audit.capture import registry

    config = registry.config_for_entity_type(entity_type)
    return config.model if config else None


def entity_label(entity_type: str) -> str:
    """``maintenance_request`` -> "maintenance request" (the model's verbose name when tracked)."""
    model = _model_for(entity_type)
    if model is not None:
        return str(model._meta.verbose_name)
    return str(entity_type).replace("_", " ")


def _field(model, name: str):
    if model is None:
        return None
    try:
        return model._meta.get_field(name)
    except Exception:  # noqa: BLE001 - a field recorded once and since removed reads as its name
        return None


def field_label(entity_type: str, name: str, model=None) -> str:
    field = _field(model or _model_for(entity_type), name)
    label = str(getattr(field, "verbose_name", "") or name.replace("_", " "))
    return label[:1].upper() + label[1:]


def _is_hidden(field, name: str) -> bool:
    if name in HIDDEN_FIELDS:
        return True
    return bool(field is not None and (getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)))


def _is_user_field(field) -> bool:
    from django.contrib.auth import get_user_model

    return bool(field is not None and getattr(field, "is_relation", False)
                and getattr(field, "related_model", None) is get_user_model())


def _is_permission_list(field) -> bool:
    model = getattr(field, "related_model", None) if getattr(field, "many_to_many", False) else None
    return model is not None and model._meta.label_lower == "auth.permission"


def _as_list(value) -> list | None:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        try:
            loaded = json.loads(value)
        except ValueError:
            return None
        return loaded if isinstance(loaded, list) else None
    return None


def permission_names(labels) -> dict[str, str]:
    """``{"auth.change_group": "Can change group (Authentication and Authorization)"}``
    for the recorded permission labels given (one query); an unknown label reads as itself."""
    from django.apps import apps
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    pairs = {tuple(str(label).split(".", 1)) for label in labels if "." in str(label)}
    if not pairs:
        return {}
    query = Q()
    for app_label, codename in pairs:
        query |= Q(content_type__app_label=app_label, codename=codename)
    found = {}
    for app_label, codename, name in Permission.objects.filter(query).values_list(
            "content_type__app_label", "codename", "name"):
        try:
            app = str(apps.get_app_config(app_label).verbose_name)
        except LookupError:
            app = app_label
        found[f"{app_label}.{codename}"] = f"{name} ({app})"
    return found


def _permission_labels_of(trails) -> set[str]:
    labels: set[str] = set()
    for t in trails:
        model = _model_for(t.entity_type)
        for row in field_rows(t):
            if _is_permission_list(_field(model, row.name)):
                for value in (row.old, row.new):
                    labels.update(str(v) for v in _as_list(value) or ())
    return labels


def value_text(field, value, names: dict[str, str], permissions: dict[str, str] | None = None) -> str | None:
    """A recorded value in words: a choice's label, Yes/No, a person's display text, a list of
    groups or permissions as their names (``permissions``: from :func:`permission_names`), else the text."""
    if value is None or value == "":
        return None
    if getattr(field, "many_to_many", False) and (items := _as_list(value)) is not None:
        if not items:
            return None
        if _is_permission_list(field):
            permissions = permissions if permissions is not None else permission_names(items)
            items = [permissions.get(str(v), str(v)) for v in items]
        return ", ".join(str(v) for v in items)
    if field is not None and getattr(field, "choices", None):
        labels = {str(k): str(v) for k, v in field.flatchoices}
        if str(value) in labels:
            return labels[str(value)]
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if _is_user_field(field):
        return names.get(str(value), str(value))
    if isinstance(field, models.DateTimeField) and isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is not None:
            return when(parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)).text
    return shown(value)


@dataclass(frozen=True)
class FieldChange:
    name: str
    label: str
    old: str | None
    new: str | None
    changed: bool


@dataclass(frozen=True)
class ChangeText:
    """One audit_trail row in words: a sentence, its time, and the fields to show."""
    obj: object
    sentence: str
    actor: str
    when: When | None
    fields: list[FieldChange]
    #: a create or delete lists its values folded ("Created with 8 fields")
    summary: str | None


def captured_displays(trail) -> dict[str, dict]:
    """``{field: {"old": text, "new": text}}``: the related entities of a change as they were named
    when it was written (``audit_trail.displays``; empty for rows written before it existed)."""
    displays = getattr(trail, "displays", None)
    return displays if isinstance(displays, dict) else {}


def _captured(displays: dict, name: str, side: str) -> str | None:
    entry = displays.get(name)
    text = entry.get(side) if isinstance(entry, dict) else None
    return text if isinstance(text, str) and text else None


def _user_ids_of(trails) -> set[str]:
    """The people a page must look up: those whose name was not captured with the change."""
    ids: set[str] = set()
    for t in trails:
        if not getattr(t, "user_display", ""):
            ids.add(t.user_id)
        model = _model_for(t.entity_type)
        if t.entity_type == "user":
            ids.add(t.entity_id)
        displays = captured_displays(t)
        for row in field_rows(t):
            if _is_user_field(_field(model, row.name)):
                ids.update(v for v, side in ((row.old, "old"), (row.new, "new"))
                           if v and not _captured(displays, row.name, side))
    return {i for i in ids if i}


def _title_of(trail) -> str:
    for text in (trail.new_value, trail.old_value):
        data = _load(text)
        for name in ("title", "name", "full_name", "vessel"):
            if isinstance(data.get(name), str) and data[name].strip():
                return data[name].strip()
    return ""


def change_texts(trails) -> list[ChangeText]:
    """Each audit_trail row of ``trails`` in words (people looked up once for all of them)."""
    trails = list(trails)
    names = people(_user_ids_of(trails))
    permissions = permission_names(_permission_labels_of(trails))
    return [change_text(t, names, permissions) for t in trails]


def change_text(trail, names: dict[str, str] | None = None, permissions: dict[str, str] | None = None) -> ChangeText:
    names = names if names is not None else people(_user_ids_of([trail]))
    permissions = permissions if permissions is not None else permission_names(_permission_labels_of([trail]))
    model = _model_for(trail.entity_type)
    displays = captured_displays(trail)
    fields = []
    for row in field_rows(trail):
        field = _field(model, row.name)
        if _is_hidden(field, row.name):
            continue
        # a related entity as named when the change was written wins over today's name
        old = _captured(displays, row.name, "old") if row.old is not None else None
        new = _captured(displays, row.name, "new") if row.new is not None else None
        old = old or value_text(field, row.old, names, permissions)
        new = new or value_text(field, row.new, names, permissions)
        if old is None and new is None:
            continue  # "empty -> empty" says nothing
        fields.append(FieldChange(row.name, field_label(trail.entity_type, row.name, model), old, new,
                                  row.changed and old != new))
    # the model's own field order (a jsonb column keeps its keys in its own order, not the save's)
    order = {f.name: i for i, f in enumerate(model._meta.get_fields())} if model is not None else {}
    fields.sort(key=lambda f: (order.get(f.name, len(order)), f.name))
    action = str(trail.action_type)
    summary = None
    if action in ("create", "delete"):
        fields = [f for f in fields if (f.new if action == "create" else f.old) is not None]
        count = len(fields)
        summary = f"{'Created' if action == 'create' else 'Deleted'} with {count} field{'s' if count != 1 else ''}"
    else:
        fields = [f for f in fields if f.changed]
    # the display text captured when the change was written wins over today's name
    actor = getattr(trail, "user_display", "") or person(trail.user_id, names)
    failed = str(trail.status) == "failed"
    done, tried = VERBS.get(action, (action.replace("_", " "), action.replace("_", " ")))
    verb = f"tried to {tried}" if failed else done
    target = f"{entity_label(trail.entity_type)} {names.get(trail.entity_id, trail.entity_id) if trail.entity_type == 'user' else trail.entity_id}"
    title = _title_of(trail)
    sentence = f"{actor} {verb} {target}" + (f" · {title}" if title and trail.entity_type != "user" else "")
    if action not in ("create", "delete") and fields:
        sentence += ": " + ", ".join(f.label.lower() if i else f.label for i, f in enumerate(fields[:3]))
        if len(fields) > 3:
            sentence += f" and {len(fields) - 3} more"
    if trail.change_reason:
        sentence += f" — '{trail.change_reason}'"
    if failed and trail.error_message:
        sentence += f" (refused: {trail.error_message})"
    return ChangeText(trail, sentence, actor, when(trail.timestamp), fields, summary)


def _model_for_table(table_name: str):
    from audit.capture import registry

    for config in registry.tracked_models():
        if config.model._meta.db_table == table_name:
            return config.model
    return None


def _stored(field, text):
    """An ``update_history`` value (text as is, anything else as JSON text) back as the value the
    diff recorded, for the fields whose values are not text (Yes/No, numbers, lists)."""
    if text is None or field is None or isinstance(field, (models.CharField, models.TextField)):
        return text
    if getattr(field, "is_relation", False) and not getattr(field, "many_to_many", False):
        return text  # a related entity's code
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


@dataclass(frozen=True)
class FieldHistoryText:
    """One ``update_history`` row in words: the field's label and its values as people read them."""
    obj: object
    label: str
    old: str | None
    new: str | None


def field_history_texts(rows) -> list[FieldHistoryText]:
    """Each ``update_history`` row of ``rows`` in words (people and permissions looked up once for all)."""
    rows = list(rows)
    resolved = []
    ids: set[str] = set()
    labels: set[str] = set()
    for row in rows:
        model = _model_for_table(row.table_name)
        field = _field(model, row.field_name)
        values = (_stored(field, row.old_value), _stored(field, row.new_value))
        # the names captured with the change, when its trail row came with it (select_related)
        trail = row._state.fields_cache.get("audit") if row.audit_id else None
        displays = captured_displays(trail) if trail is not None else {}
        shown = tuple(_captured(displays, row.field_name, side) if v is not None else None
                      for v, side in zip(values, ("old", "new"), strict=True))
        if _is_user_field(field):
            ids.update(str(v) for v, text in zip(values, shown, strict=True) if v and not text)
        if _is_permission_list(field):
            for v in values:
                labels.update(str(x) for x in _as_list(v) or ())
        resolved.append((row, model, field, values, shown))
    names = people(ids)
    permissions = permission_names(labels)
    texts = []
    for row, model, field, (old, new), (old_shown, new_shown) in resolved:
        texts.append(FieldHistoryText(row, field_label("", row.field_name, model),
                                      old_shown or value_text(field, old, names, permissions),
                                      new_shown or value_text(field, new, names, permissions)))
    return texts


def _details_text(details) -> str:
    """An activity's or event's JSON details as "Label: value; ..." (text that is not JSON stays as is)."""
    if details in (None, ""):
        return ""
    if isinstance(details, str):
        try:
            data = json.loads(details)
        except (TypeError, ValueError):
            return details
    else:
        data = details
    if not isinstance(data, dict):
        return shown(data) or ""
    parts = []
    for key, value in data.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, dict):
            value = shown(value)
        label = str(key).replace("_", " ")
        parts.append(f"{label[:1].upper() + label[1:]}: {value}")
    return "; ".join(parts)


def activity_sentence(activity, names: dict[str, str] | None = None) -> str:
    """"PE001 · Priya Eriksen: Viewed audit log (Hours: 24; Page: 1)"."""
    who = person(getattr(activity, "user_id", None), names)
    details = _details_text(getattr(activity, "details", ""))
    return f"{who}: {activity.activity}" + (f" ({details})" if details else "")


def activity_texts(activities) -> list[dict]:
    activities = list(activities)
    names = people(a.user_id for a in activities)
    return [{"obj": a, "sentence": activity_sentence(a, names), "when": when(a.timestamp),
             "details": _details_text(a.details)} for a in activities]


def event_sentence(event) -> str:
    """"Emergency reported for emergency EMG004 — Severity: critical; Vessel: MV A"."""
    text = event_label(event.event_type)
    if event.entity_id:
        text += f" for {entity_label(event.entity_type) + ' ' if event.entity_type else ''}{event.entity_id}"
    details = _details_text(event.event_data)
    return text + (f" — {details}" if details else "")
