"""Accounts API, mounted under /api/. The auth and password endpoints answer
with and without a trailing slash (SPEC writes them without one)."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("users", api.UserViewSet, basename="user")

urlpatterns = [
    re_path(r"^auth/register/?$", api.RegisterView.as_view(), name="api-register"),
    re_path(r"^auth/token/?$", api.TokenView.as_view(), name="api-token"),
    path("users/me/", api.MeView.as_view(), name="api-me"),
    re_path(r"^users/me/password/?$", api.PasswordChangeView.as_view(), name="api-me-password"),
    *router.urls,
]
