"""Portal pages of the audit app (included at "" by marine_center/urls.py)."""

from django.urls import path

from audit.web import views

urlpatterns = [
    path("dashboard/", views.dashboard, name="audit_dashboard"),
    path("dashboard/data/", views.dashboard_data, name="audit_dashboard_data"),
    path("dashboard/events/<int:event_id>/acknowledge/", views.acknowledge_event, name="audit_acknowledge_event"),
    path("my-activity/", views.my_activity, name="my_activity"),
    path("users/<key:user_id>/activity/", views.user_activity, name="audit_user_activity"),
]
