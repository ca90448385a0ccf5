from django.urls import path

from . import views

urlpatterns = [
    path("requests/", views.request_list, name="request_list"),
    path("requests/new/", views.request_create, name="request_create"),
    path("requests/<key:code>/", views.request_detail, name="request_detail"),
    path("requests/<key:code>/edit/", views.request_edit, name="request_edit"),
    path("requests/<key:code>/comments/", views.request_comment, name="request_comment"),
    path("requests/<key:code>/attachments/", views.request_upload, name="request_upload"),
    path(
        "requests/<key:code>/attachments/<int:attachment_id>/download/",
        views.attachment_download,
        name="attachment_download",
    ),
    path("requests/<key:code>/<key:action>/", views.request_action, name="request_action"),
    path("inventory/", views.inventory_list, name="inventory_list"),
    path("inventory/new/", views.inventory_create, name="inventory_create"),
    path("inventory/<key:code>/", views.inventory_detail, name="inventory_detail"),
    path("inventory/<key:code>/edit/", views.inventory_edit, name="inventory_edit"),
    path("inventory/<key:code>/adjust/", views.inventory_adjust, name="inventory_adjust"),
]
