"""Registration is declarative, on the model class; the receivers are
connected once, and a model registered later is connected when it is."""

import pytest
from django.db import models
from django.db.models import signals
from django.test.utils import isolate_apps

from accounts.models import User
from audit.capture import registry
from maintenance.models import Comment, MaintenanceRequest


def test_tracked_models_are_declared_on_their_classes_with_their_options():
    assert registry.get_config(MaintenanceRequest).entity_type == "maintenance_request"
    comment = registry.get_config(Comment)
    assert (comment.entity_type, comment.code_field) == ("comment", "pk")
    user = registry.get_config(User)
    assert (user.code_field, user.mask, user.exclude) == (
        "user_id", frozenset({"password"}), frozenset({"last_login", "failed_login_count"}))
    assert registry.config_for_entity_type("emergency").model._meta.label == "emergencies.Emergency"


def test_the_domain_apps_connect_no_model_signal_themselves():
    """The capture is declared on the models and connected by the audit app alone: no
    receiver of a tracked model's signals comes from a domain app (a domain app may still
    listen to a core signal in its ready(), e.g. maintenance's notification_sent)."""
    domain = ("accounts", "maintenance", "emergencies")
    for config in registry.tracked_models():
        for signal in (signals.post_init, signals.pre_save, signals.post_save, signals.pre_delete,
                       signals.post_delete, signals.m2m_changed):
            modules = {r.__module__ for r in signal._live_receivers(config.model)[0]}
            assert not {m for m in modules if m.split(".")[0] in domain}, (config.model, signal, modules)
    from django.apps import apps

    for label in ("accounts", "emergencies"):
        assert "ready" not in vars(type(apps.get_app_config(label)))


def test_every_tracked_model_has_its_receivers_connected_once():
    for config in registry.tracked_models():
        for signal in (signals.post_init, signals.pre_save, signals.post_save, signals.post_delete):
            ours = [r for r in signal._live_receivers(config.model)[0] if r.__module__ == "audit.capture.receivers"]
            assert len(ours) == 1, (config.model, signal)


@isolate_apps("maintenance")
def test_a_model_registered_after_start_up_is_connected_and_the_decorator_returns_the_class():
    try:
        @registry.track(entity_type="buoy", code_field="pk", exclude=["note"])
        class Buoy(models.Model):  # noqa: DJ008
            note = models.TextField()

            class Meta:
                app_label = "maintenance"

        assert Buoy.__name__ == "Buoy"  # the class itself, not its configuration
        assert registry.get_config(Buoy).exclude == frozenset({"note"})
        assert signals.post_save.has_listeners(Buoy) and signals.post_init.has_listeners(Buoy)
    finally:
        registry._registry.pop(Buoy, None)


def test_the_call_form_returns_the_configuration():
    with isolate_apps("maintenance"):
        class Pier(models.Model):  # noqa: DJ008
            class Meta:
                app_label = "maintenance"

        try:
            config = registry.track(Pier)
            assert config.entity_type == "pier" and config.code_field == "code"
        finally:
            registry._registry.pop(Pier, None)


@pytest.mark.parametrize("value, expected", [("MR001", "MR001"), ("", "7"), (None, "7")])
def test_the_entity_id_is_the_code_or_else_the_key(value, expected):
    config = registry.TrackedModel(model=MaintenanceRequest, entity_type="maintenance_request")
    instance = MaintenanceRequest(pk=7, code=value)
    assert config.entity_id(instance) == expected
