from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from audit import activity, checks  # noqa: F401 - checks registers itself
        from audit.capture import receivers
        from audit.operations import jobs  # noqa: F401 - declares the periodic jobs

        receivers.connect()
        activity.connect()
