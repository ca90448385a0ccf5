"""/api/realtime/...: with or without a trailing slash."""

from django.urls import re_path

from audit.api import evidence_views as api_evidence
from audit.api import stream_views as api_stream
from audit.api import views as api

urlpatterns = [
    re_path(r"^realtime/user-activity/(?P<user_id>[^/]+)/?$", api.UserActivityView.as_view(),
            name="realtime-user-activity"),
    re_path(r"^realtime/entity-history/(?P<entity_type>[^/]+)/(?P<entity_id>[^/]+)/?$",
            api.EntityHistoryView.as_view(), name="realtime-entity-history"),
    re_path(r"^realtime/system-events/?$", api.SystemEventsView.as_view(), name="realtime-system-events"),
    re_path(r"^realtime/system-events/(?P<event_id>[^/]+)/acknowledge/?$", api.AcknowledgeEventView.as_view(),
            name="realtime-system-event-acknowledge"),
    re_path(r"^realtime/audit-trail/?$", api.AuditTrailView.as_view(), name="realtime-audit-trail"),
    re_path(r"^realtime/dashboard/?$", api.DashboardView.as_view(), name="realtime-dashboard"),
    re_path(r"^realtime/export-audit/?$", api.ExportAuditView.as_view(), name="realtime-export-audit"),
    re_path(r"^realtime/stream/?$", api_stream.AuditStreamView.as_view(), name="realtime-stream"),
    re_path(r"^realtime/export-pack/?$", api_evidence.ExportPackView.as_view(), name="realtime-export-pack"),
    re_path(r"^realtime/seals/public-key/?$", api_evidence.SealPublicKeyView.as_view(),
            name="realtime-seal-public-key"),
    re_path(r"^realtime/seals/public-keys/?$", api_evidence.SealPublicKeysView.as_view(),
            name="realtime-seal-public-keys"),
]
