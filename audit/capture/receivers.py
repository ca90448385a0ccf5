"""Signal receivers: the capture adapter. Each is a few lines and delegates
to :mod:`audit.capture.engine`; fixture loads (``raw=True``) are skipped.

They are connected per tracked model (``sender=``), with a ``dispatch_uid``,
by :func:`connect` from ``AuditConfig.ready()`` and by
:func:`audit.capture.registry.track` for models registered later (domain apps call
``track()`` from their own ``ready()``, which runs after the audit app's).
Untracked models pay nothing.
"""

from __future__ import annotations

from django.db.models import signals

from audit.capture import engine as capture
from audit.capture import history, registry
from audit.context import get_context

_OURS = "_audit_history_hints"


def on_post_init(sender, instance, **kwargs):
    spec = capture.spec_for(sender)
    if spec is not None:
        capture.take_snapshot(instance, spec)


def on_pre_save(sender, instance, raw=False, update_fields=None, **kwargs):
    if raw:
        return
    if not capture.capture_enabled():
        if history.spec_for(sender) is None:  # simple-history writes its own row: switch it off too
            instance.skip_history_when_saving = True
            instance.__dict__[_OURS] = ("skip_history_when_saving",)
        return
    capture.ensure_trusted_snapshot(instance, capture.spec_for(sender), update_fields)
    if history.spec_for(sender) is None:
        _give_history_hints(instance)


def on_post_save(sender, instance, created=False, raw=False, update_fields=None, using=None, **kwargs):
    if raw:
        return
    hints = instance.__dict__.pop(_OURS, ()) if _OURS in instance.__dict__ else ()
    written = instance.__dict__.pop(capture.WRITTEN, False)
    if created:  # the INSERT statement wrote the rows (one-statement create), else record them now
        written = instance.__dict__.pop(capture.CREATE_WRITTEN, False)
    if "skip_history_when_saving" not in hints and capture.capture_enabled():
        spec = capture.spec_for(sender)
        new = capture.current_values(instance, spec.attnames if created else spec.attnames_for(update_fields))
        if not written:  # else the UPDATE or INSERT statement wrote the rows already
            old = None if created else instance.__dict__.get(capture.SNAPSHOT) or {}
            capture.record_change(instance, old=old, new=new, using=using, history_type="+" if created else "~")
        instance.__dict__.setdefault(capture.SNAPSHOT, {}).update(new)
    for name in hints:
        instance.__dict__.pop(name, None)


def on_pre_delete(sender, instance, **kwargs):
    if capture.capture_enabled() and history.spec_for(sender) is None:
        _give_history_hints(instance)


def on_post_delete(sender, instance, using=None, **kwargs):
    hints = instance.__dict__.pop(_OURS, ())
    if capture.capture_enabled():
        spec = capture.spec_for(sender)
        old = {**(instance.__dict__.get(capture.SNAPSHOT) or {}), **capture.current_values(instance, spec.attnames)}
        capture.record_change(instance, old=old, new=None, using=using, history_type="-")
    elif history.spec_for(sender) is not None:
        capture.save_history_only(instance, "-", using=using)
    for name in hints:
        instance.__dict__.pop(name, None)


def on_m2m_changed(sender, instance, action, reverse, model, pk_set, using=None, **kwargs):
    if capture.capture_enabled():
        capture.m2m_changed(sender, instance, action, reverse, model, pk_set, using)


def _give_history_hints(instance):
    """Tell simple-history who and why (``_history_user``, ``_change_reason``)
    unless the caller already did; removed again after the write."""
    ctx = get_context()
    set_here = []
    d = instance.__dict__
    if "_history_user" not in d:
        user = capture.history_user()
        if user is not None:
            d["_history_user"] = user
            set_here.append("_history_user")
    if "_change_reason" not in d:
        reason = ctx.reason or (capture.revert_reason() if capture.revert_action() else "")
        if reason:
            d["_change_reason"] = capture.history_reason(type(instance), reason)
            set_here.append("_change_reason")
    d[_OURS] = tuple(set_here)


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
    capture.forget_specs()


def connect() -> None:
    """Connect the receivers of every model tracked so far (AuditConfig.ready)."""
    for config in registry.tracked_models():
        connect_model(config.model)
