from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("emergencies", api.EmergencyViewSet, basename="emergency")

urlpatterns = router.urls
