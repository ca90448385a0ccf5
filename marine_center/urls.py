from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from marine_center import api_docs, converters, health  # noqa: F401 - converters registers <key:...>

admin.site.site_header = "Marine Service Center administration"
admin.site.site_title = "Marine Service Center"
admin.site.index_title = "Administration"
# The app list beside every page repeats the index and the breadcrumbs; without it the changelists
# (filters on the right) keep their columns on screen at 1366 px.
admin.site.enable_nav_sidebar = False

api_patterns = [
    path("", include("accounts.api_urls")),
    path("", include("maintenance.api_urls")),
    path("", include("emergencies.api_urls")),
    path("", include("audit.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", api_docs.swagger_ui, name="swagger-ui"),
    path("redoc/", api_docs.redoc, name="redoc"),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", include("audit.web.admin_urls")),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("", include("accounts.urls")),
    path("", include("maintenance.urls")),
    path("", include("emergencies.urls")),
    path("", include("audit.web.urls")),
]

handler404 = "marine_center.views.not_found"
handler403 = "marine_center.views.forbidden"
handler500 = "marine_center.views.server_error"
handler400 = "marine_center.views.bad_request"
