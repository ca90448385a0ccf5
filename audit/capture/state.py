"""The state one tracked instance carries between the capture's steps (its
loaded values, what ``save()`` chose, what was written), in one small
object under one key of ``instance.__dict__``."""

from __future__ import annotations

from typing import Any

KEY = "_audit"


class CaptureState:
    """``snapshot``: the stored values (attname -> value) the next diff
    compares with, or None when unknown. ``mode``: ``"update"`` or
    ``"create"`` while a ``save()`` runs as one statement. ``written``: that
    statement wrote the audit rows, so ``post_save`` records nothing.
    ``history_hints``: the simple-history attributes (``_history_user``,
    ``_change_reason``) set on the instance for one write, removed after it.
    ``m2m_old``: related labels read before a many-to-many change."""

    __slots__ = ("snapshot", "mode", "written", "history_hints", "m2m_old")

    def __init__(self, snapshot: dict[str, Any] | None = None):
        self.snapshot = snapshot
        self.mode: str | None = None
        self.written = False
        self.history_hints: tuple[str, ...] = ()
        self.m2m_old: dict | None = None

    def __getstate__(self):
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, values):
        for name in self.__slots__:
            setattr(self, name, values.get(name))


def of(instance) -> CaptureState:
    """The instance's state, created empty when it has none."""
    d = instance.__dict__
    state = d.get(KEY)
    if state is None:
        state = d[KEY] = CaptureState()
    return state


def peek(instance) -> CaptureState | None:
    return instance.__dict__.get(KEY)


def snapshot(instance) -> dict[str, Any] | None:
    state = instance.__dict__.get(KEY)
    return state.snapshot if state is not None else None


def remember(instance, values: dict[str, Any]) -> None:
    """Merge saved or loaded values into the snapshot."""
    state = of(instance)
    if state.snapshot is None:
        state.snapshot = dict(values)
    else:
        state.snapshot.update(values)
