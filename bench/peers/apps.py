from django.apps import AppConfig


class PeersConfig(AppConfig):
    name = "bench.peers"
    label = "bench_peers"
    verbose_name = "Bench peers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from auditlog.registry import auditlog

        from . import models

        # django-auditlog: its registry, defaults (ours is declared with @track in models.py)
        for model in (models.AlRequest, models.AlComment, models.AlAttachment):
            auditlog.register(model)
