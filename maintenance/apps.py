from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    name = "maintenance"
    verbose_name = "Maintenance"

    def ready(self):
        from audit.capture.registry import track

        from . import models

        track(models.MaintenanceRequest, entity_type="maintenance_request")
        track(models.Comment, entity_type="comment", code_field="pk")
        track(models.Attachment, entity_type="attachment", code_field="pk")
        track(models.InventoryItem, entity_type="inventory_item")
        track(models.StockAdjustment, entity_type="stock_adjustment", code_field="pk")
