from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("register/", views.register, name="register"),
    path("profile/", views.profile, name="profile"),
    path("profile/password/", views.password_change, name="password_change"),
    path("users/", views.user_list, name="user_list"),
    path("users/<key:user_id>/", views.user_detail, name="user_detail"),
    path("users/<key:user_id>/approve/", views.user_decide, {"decision": "approve"}, name="user_approve"),
    path("users/<key:user_id>/reject/", views.user_decide, {"decision": "reject"}, name="user_reject"),
    path("users/<key:user_id>/role/", views.user_role, name="user_role"),
    path("users/<key:user_id>/password/", views.user_password_reset, name="user_password_reset"),
    path("users/<key:user_id>/active/", views.user_active, name="user_active"),
]
