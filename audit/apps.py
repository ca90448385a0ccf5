from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import activity, checks, receivers  # noqa: F401 - checks registers itself

        receivers.connect()
        activity.connect()
