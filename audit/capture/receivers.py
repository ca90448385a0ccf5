"""Signal receivers: the capture's entry. Each is a few lines and delegates
to :mod:`audit.capture.engine`; fixture loads (``raw=True``) are skipped.

:func:`connect` (from ``AuditConfig.ready()``) connects them once per tracked
model (``sender=``, with a ``dispatch_uid``), hands simple-history's rows of
those models to the capture (:func:`audit.capture.history.take_over`), and
leaves a listener in the registry for models registered later. Untracked
models pay nothing.
"""

from __future__ import annotations

from django.db.models import signals

from audit.capture import engine, history, registry, state
from audit.context import get_context


def on_post_init(sender, instance, **kwargs):
    spec = engine.spec_for(sender)
    if spec is not None:
        engine.take_snapshot(instance, spec)


def on_pre_save(sender, instance, raw=False, update_fields=None, **kwargs):
    if raw:
        return
    if not engine.capture_enabled():
        if history.spec_for(sender) is None:  # simple-history writes its own row: switch it off too
            instance.skip_history_when_saving = True
            state.of(instance).history_hints = ("skip_history_when_saving",)
        return
    engine.ensure_trusted_snapshot(instance, engine.spec_for(sender), update_fields)
    if history.spec_for(sender) is None:
        _give_history_hints(instance)


def on_post_save(sender, instance, created=False, raw=False, update_fields=None, using=None, **kwargs):
    if raw:
        return
    s = state.of(instance)
    hints, written = s.history_hints, s.written
    s.history_hints, s.written = (), False
    if "skip_history_when_saving" not in hints and engine.capture_enabled():
        spec = engine.spec_for(sender)
        engine.read_back_expressions(instance, using)
        new = engine.current_values(instance, spec.attnames if created else spec.attnames_for(update_fields))
        if not written:  # else the UPDATE or INSERT statement wrote the rows already
            old = None if created else s.snapshot or {}
            engine.record_change(instance, old=old, new=new, using=using, history_type="+" if created else "~")
        state.remember(instance, new)
    _drop(instance, hints)


def on_pre_delete(sender, instance, **kwargs):
    if engine.capture_enabled():
        engine.note_deleting(instance)
        if history.spec_for(sender) is None:
            _give_history_hints(instance)


def on_post_delete(sender, instance, using=None, **kwargs):
    s = state.of(instance)
    hints, s.history_hints = s.history_hints, ()
    if not engine.recorded_before_delete(instance):  # else the delete's own statement wrote its rows
        engine.record_delete(sender, instance, using=using)
    _drop(instance, hints)


def on_m2m_changed(sender, instance, action, reverse, model, pk_set, using=None, **kwargs):
    if engine.capture_enabled():
        engine.m2m_changed(sender, instance, action, reverse, model, pk_set, using)


def _give_history_hints(instance):
    """Tell simple-history who and why (``_history_user``, ``_change_reason``)
    unless the caller already did; removed again after the write."""
    ctx = get_context()
    set_here = []
    d = instance.__dict__
    if "_history_user" not in d:
        user = engine.history_user()
        if user is not None:
            d["_history_user"] = user
            set_here.append("_history_user")
    if "_change_reason" not in d:
        reason = ctx.reason
        if reason:
            d["_change_reason"] = engine.history_reason(type(instance), reason)
            set_here.append("_change_reason")
    state.of(instance).history_hints = tuple(set_here)


def _drop(instance, names) -> None:
    for name in names:
        instance.__dict__.pop(name, None)


_RECEIVERS = (
    (signals.post_init, on_post_init),
    (signals.pre_save, on_pre_save),
    (signals.post_save, on_post_save),
    (signals.pre_delete, on_pre_delete),
    (signals.post_delete, on_post_delete),
)


def connect_model(model) -> None:
    label = model._meta.label_lower
    for signal, receiver in _RECEIVERS:
        signal.connect(receiver, sender=model, dispatch_uid=f"audit.{receiver.__name__}.{label}")
    for field in model._meta.many_to_many:
        through = field.remote_field.through
        signals.m2m_changed.connect(on_m2m_changed, sender=through,
                                    dispatch_uid=f"audit.m2m.{through._meta.label_lower}")
    history.take_over(model)
    engine.forget_specs()


def connect() -> None:
    """Connect the receivers of every tracked model, once (AuditConfig.ready),
    and of every model registered from now on."""
    for config in registry.tracked_models():
        connect_model(config.model)
    registry.on_track(connect_model)
