from django.urls import path

from . import views

urlpatterns = [
    path("emergencies/", views.emergency_list, name="emergency_list"),
    path("emergencies/new/", views.emergency_create, name="emergency_create"),
    path("emergencies/<key:code>/", views.emergency_detail, name="emergency_detail"),
    path("emergencies/<key:code>/edit/", views.emergency_edit, name="emergency_edit"),
    path("emergencies/<key:code>/<key:action>/", views.emergency_action, name="emergency_action"),
]
