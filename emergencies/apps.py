from django.apps import AppConfig


class EmergenciesConfig(AppConfig):
    name = "emergencies"
    verbose_name = "Emergencies"

    def ready(self):
        from audit.capture.registry import track

        from .models import Emergency

        track(Emergency, entity_type="emergency")
