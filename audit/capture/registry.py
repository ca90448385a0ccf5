"""Which models are tracked, and how.

Registration is declarative, where the model is defined::

    @track(entity_type="maintenance_request")
    class MaintenanceRequest(AuditedModelMixin, models.Model): ...

(or ``track(Model, ...)`` after the class). The receivers are connected
once, for every registered model, by ``AuditConfig.ready()``
(:func:`audit.capture.receivers.connect`); a model registered after that
(a test's) is connected by the listener the receivers leave here. The rest
of the capture reads the configuration from here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import models


@dataclass(frozen=True)
class TrackedModel:
    model: type[models.Model]
    entity_type: str
    code_field: str = "code"
    exclude: frozenset[str] = field(default_factory=frozenset)
    mask: frozenset[str] = field(default_factory=frozenset)
    #: the field read after the code where the entity is named in a history ("PE001 · Priya Eriksen");
    #: None: the code alone
    display_field: str | None = None

    def entity_id(self, instance) -> str:
        value = getattr(instance, self.code_field, None)
        return str(value if value not in (None, "") else instance.pk)


_registry: dict[type[models.Model], TrackedModel] = {}
_listeners: list[Callable[[type[models.Model]], None]] = []


#: where ``display_field`` is not given: the first of these fields the model has
DISPLAY_FIELDS = ("full_name", "name", "title")


def track(model=None, /, *, entity_type: str | None = None, code_field: str = "code", exclude=(), mask=(),
          display_field: str | None = None):
    """Register a model for automatic audit capture: ``@track(...)`` on the
    class (returns the class) or ``track(Model, ...)`` (returns its
    :class:`TrackedModel`).

    ``entity_type`` defaults to the snake_case model name; ``code_field`` names
    the field holding the entity's code (``MR001``; ``"pk"`` when it has
    none); ``exclude`` lists fields never recorded; ``mask`` lists secret
    fields recorded only as ``[changed]``; ``display_field`` names the field
    that follows the code where another row's history names this entity
    ("PE001 · Priya Eriksen"; default: the first of :data:`DISPLAY_FIELDS`
    the model has, else the code alone).
    """

    def register(cls):
        from django.utils.text import camel_case_to_spaces

        names = {f.name for f in cls._meta.concrete_fields}
        shown = display_field or next((name for name in DISPLAY_FIELDS if name in names), None)
        _registry[cls] = TrackedModel(
            model=cls,
            entity_type=entity_type or camel_case_to_spaces(cls.__name__).replace(" ", "_"),
            code_field=code_field,
            exclude=frozenset(exclude),
            mask=frozenset(mask),
            display_field=shown,
        )
        for listener in _listeners:
            listener(cls)
        return cls

    if model is None:
        return register
    register(model)
    return _registry[model]


def on_track(listener: Callable[[type[models.Model]], None]) -> None:
    """Call ``listener(model)`` for each model registered from now on."""
    if listener not in _listeners:
        _listeners.append(listener)


def get_config(model) -> TrackedModel | None:
    model = getattr(model, "_meta", None) and model._meta.concrete_model or model
    return _registry.get(model)


def tracked_models() -> list[TrackedModel]:
    return list(_registry.values())


def config_for_entity_type(entity_type: str) -> TrackedModel | None:
    for config in _registry.values():
        if config.entity_type == entity_type:
            return config
    return None
