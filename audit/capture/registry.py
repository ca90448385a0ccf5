"""Which models are tracked, and how.

Domain apps call :func:`track` from their own ``AppConfig.ready()``; the
capture code reads the configuration from here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import models


@dataclass(frozen=True)
class TrackedModel:
    model: type[models.Model]
    entity_type: str
    code_field: str = "code"
    exclude: frozenset[str] = field(default_factory=frozenset)
    mask: frozenset[str] = field(default_factory=frozenset)

    def entity_id(self, instance) -> str:
        value = getattr(instance, self.code_field, None)
        return str(value if value not in (None, "") else instance.pk)


_registry: dict[type[models.Model], TrackedModel] = {}


def track(model, *, entity_type: str | None = None, code_field: str = "code", exclude=(), mask=()) -> TrackedModel:
    """Register ``model`` for automatic audit capture.

    ``entity_type`` defaults to the snake_case model name; ``code_field`` names
    the field holding the entity's code (``MR001``); ``exclude`` lists fields
    never recorded; ``mask`` lists secret fields recorded only as ``[changed]``.
    """
    from django.utils.text import camel_case_to_spaces

    config = TrackedModel(
        model=model,
        entity_type=entity_type or camel_case_to_spaces(model.__name__).replace(" ", "_"),
        code_field=code_field,
        exclude=frozenset(exclude),
        mask=frozenset(mask),
    )
    _registry[model] = config
    from audit.capture import receivers  # connect this model's capture receivers (idempotent: dispatch_uid)

    receivers.connect_model(model)
    return config


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
