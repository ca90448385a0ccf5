from django.apps import AppConfig


class ForwardingConfig(AppConfig):
    name = "forwarding"
    verbose_name = "Forwarding to monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks, tasks  # noqa: F401 - the sinks' check; the periodic forwarding job
