from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from audit.capture.registry import track
        from core import signals

        from . import models, receivers, tasks  # noqa: F401 - tasks declares the periodic sweep

        # rules are settings: every change is captured; the URLs may hold chat tokens
        track(models.AlertRule, entity_type="alert_rule", code_field="pk", mask=("notify_urls",))
        signals.system_event_committed.connect(receivers.on_event_committed, dispatch_uid="alerts.event_committed")
        signals.login_failure_recorded.connect(receivers.on_login_failure, dispatch_uid="alerts.login_failure")
