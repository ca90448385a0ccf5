from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    """What this app tracks is declared on its models (``@track(...)`` in
    models.py); the audit app connects the capture once, in its ready()."""

    name = "maintenance"
    verbose_name = "Maintenance"

    def ready(self):
        from core.signals import notification_sent
        from maintenance import receivers

        notification_sent.connect(receivers.on_notification_sent, dispatch_uid="maintenance.comment_notified")
