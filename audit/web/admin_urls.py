"""Pages mounted under /admin/ before the admin site's own URLs (SPEC:
``/admin/audit-log``, with or without a trailing slash)."""

from django.urls import re_path

from audit.web import views

urlpatterns = [
    re_path(r"^audit-log/?$", views.audit_log, name="audit_log"),
]
