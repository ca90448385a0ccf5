from django.apps import AppConfig


class PeersConfig(AppConfig):
    name = "bench.peers"
    label = "bench_peers"
    verbose_name = "Bench peers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from auditlog.registry import auditlog

        from audit.capture.registry import track

        from . import models

        # ours: registered as the product registers MaintenanceRequest and its children
        track(models.OursRequest, entity_type="bench_request")
        track(models.OursComment, entity_type="bench_comment", code_field="pk")
        track(models.OursAttachment, entity_type="bench_attachment", code_field="pk")
        # django-auditlog: its registry, defaults
        for model in (models.AlRequest, models.AlComment, models.AlAttachment):
            auditlog.register(model)
