"""Maintenance API, mounted under /api/: /api/maintenance-requests/ and
/api/inventory/ (trailing slashes)."""

from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False  # /api/ is shared by several apps; no app owns its root
router.register("maintenance-requests", api.MaintenanceRequestViewSet, basename="maintenance-request")
router.register("inventory", api.InventoryItemViewSet, basename="inventory")

urlpatterns = router.urls
