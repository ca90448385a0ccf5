from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    """What this app tracks is declared on its models (``@track(...)`` in
    models.py); the audit app connects the capture once, in its ready()."""

    name = "maintenance"
    verbose_name = "Maintenance"
