"""Sanitizing for every text that enters an audit table: no NUL bytes
(PostgreSQL refuses them in ``text`` and ``jsonb``), lengths bounded, one
JSON text form for values that are not text. Pure functions, no database."""

from __future__ import annotations

import json
from typing import Any

from audit.models import TEXT_LIMIT

__all__ = ["TEXT_LIMIT", "clean_json", "clean_text", "json_text"]

_MARKER = "…[truncated]"
#: json.dumps with arguments builds an encoder per call; one, reused (same output)
_SORTED = json.JSONEncoder(sort_keys=True, default=str)


def clean_text(value: Any, limit: int = TEXT_LIMIT) -> str:
    """``value`` as text without NUL bytes, at most ``limit`` characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    if len(text) > limit:
        text = text[: max(limit - len(_MARKER), 0)] + _MARKER if limit > len(_MARKER) else text[:limit]
    return text


def json_text(value: Any) -> str | None:
    """One value as stored in a text column (``update_history`` old/new,
    ``audit_trail`` old/new, event data): text as is, ``None`` as NULL
    (distinct from ""), anything else as JSON (``true``, ``12``,
    ``["a", "b"]``, objects with sorted keys)."""
    if value is None:
        return None
    if isinstance(value, str):
        return clean_text(value)
    return clean_text(_SORTED.encode(value))


def clean_json(value: Any) -> Any:
    """Strip NUL bytes and bound strings inside a JSON-safe structure."""
    kind = type(value)
    if kind is str:  # the common case, without a call: nothing to strip or cut
        return value if len(value) <= TEXT_LIMIT and "\x00" not in value else clean_text(value)
    if value is None or kind is int or kind is bool or kind is float:
        return value
    if isinstance(value, dict):  # a change's {"old": ..., "new": ...} and its plain values, without a call each
        out = {}
        for k, v in value.items():
            if type(k) is not str or len(k) > 200 or "\x00" in k:
                k = clean_text(k, 200)
            vkind = type(v)
            if vkind is str:
                if len(v) > TEXT_LIMIT or "\x00" in v:
                    v = clean_text(v)
            elif not (v is None or vkind is int or vkind is bool or vkind is float):
                v = clean_json(v)
            out[k] = v
        return out
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value
