"""Accounts API: tokens, registration, one's own profile and password, and
the user administration endpoints. Views validate, call a service, serialize."""

from __future__ import annotations

from django.contrib.auth import authenticate, logout, update_session_auth_hash, user_logged_in, user_logged_out
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from knox.models import AuthToken
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError, PermissionDenied, UnsupportedMediaType
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from audit.ip import client_ip
from core.fields import iso_ms
from core.permissions import IsAdminRole, IsManager, is_manager
from marine_center.api import ErrorEnvelopeSerializer, error_body

from . import selectors, services, tokens
from .filters import UserFilter
from .models import User
from .serializers import (
    ChangeReasonSerializer,
    PasswordChangeSerializer,
    PasswordResetSerializer,
    ProfileUpdateSerializer,
    RegisterSerializer,
    TokenRequestSerializer,
    TokenResponseSerializer,
    UserAdminUpdateSerializer,
    UserSerializer,
)

GENERIC_LOGIN_ERROR = "Invalid user ID or password."

_ERROR = ErrorEnvelopeSerializer
_MESSAGE = inline_serializer(
    name="SuccessMessage", fields={"success": serializers.BooleanField(), "message": serializers.CharField()}
)


def _http(request):
    """The Django HttpRequest behind a DRF Request (what auth signals expect)."""
    return getattr(request, "_request", request)


class RegisterView(GenericAPIView):
    """Self-registration: the account is ``pending`` until a manager approves it."""

    authentication_classes = []
    permission_classes = [AllowAny]
    serializer_class = RegisterSerializer

    @extend_schema(
        operation_id="auth_register",
        request=RegisterSerializer,
        responses={201: UserSerializer, 400: _ERROR, 429: _ERROR},
        tags=["auth"],
    )
    def post(self, request):
        refused = services.registration_refusal(ip=client_ip(_http(request)))
        if refused:
            message, wait = refused
            return Response(
                error_body(status_code=429, message=message, code="rate_limited"),
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(wait)},
            )
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        reason = data.pop("change_reason", "")
        user = services.register_user(reason=reason, **data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class TokenView(GenericAPIView):
    """POST: exchange ``user_id`` and ``password`` for a Bearer token.
    DELETE: revoke the token in use (or end the browser session)."""

    serializer_class = TokenRequestSerializer

    def get_authenticators(self):
        if self.request is not None and self.request.method == "POST":
            return []  # logging in needs no credentials, and a stale header must not block it
        return super().get_authenticators()

    def get_permissions(self):
        if self.request is not None and self.request.method == "POST":
            return [AllowAny()]
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="auth_token_create",
        request=TokenRequestSerializer,
        responses={200: TokenResponseSerializer, 400: _ERROR, 401: _ERROR, 403: _ERROR},
        tags=["auth"],
    )
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user_id = services.normalize_user_id(serializer.validated_data["user_id"])
        password = serializer.validated_data["password"]

        # The backend counts a failure in the lock-out and does the same hasher
        # work for unknown and existing ids; Django sends user_login_failed
        # (credentials cleaned) when this fails.
        user = authenticate(_http(request), user_id=user_id, password=password)
        if user is None:
            refusal = getattr(_http(request), "login_refusal", None)
            if refusal:
                # the lock-out, or (to someone who gave the right password) the account's state
                return Response(
                    error_body(status_code=403, message=refusal, code="login_refused"),
                    status=status.HTTP_403_FORBIDDEN,
                )
            return Response(
                error_body(status_code=401, message=GENERIC_LOGIN_ERROR, code="invalid_credentials"),
                status=status.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": 'Bearer realm="api"'},
            )

        with transaction.atomic():
            instance, token = tokens.issue_token(user=user)
            user_logged_in.send(sender=user.__class__, request=_http(request), user=user)
        expiry = iso_ms(instance.expiry)
        return Response({"success": True, "token": token, "expiry": expiry, "user": UserSerializer(user).data})

    @extend_schema(operation_id="auth_token_revoke", request=None, responses={204: None, 401: _ERROR}, tags=["auth"])
    def delete(self, request):
        user = request.user
        if isinstance(request.auth, AuthToken):
            with transaction.atomic():
                tokens.revoke_token(token=request.auth, actor=user)
                user_logged_out.send(sender=user.__class__, request=_http(request), user=user)
        else:
            logout(_http(request))  # a browser session: Django sends user_logged_out
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(GenericAPIView):
    """One's own account."""

    permission_classes = [IsAuthenticated]
    serializer_class = UserSerializer

    @extend_schema(operation_id="users_me_retrieve", responses={200: UserSerializer, 401: _ERROR}, tags=["users"])
    def get(self, request):
        return Response(UserSerializer(request.user).data)

    @extend_schema(
        operation_id="users_me_partial_update",
        request=ProfileUpdateSerializer,
        responses={200: UserSerializer, 400: _ERROR, 401: _ERROR},
        tags=["users"],
    )
    def patch(self, request):
        serializer = ProfileUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        reason = data.pop("change_reason", "")
        user = services.update_profile(user=request.user, actor=request.user, reason=reason, **data)
        return Response(UserSerializer(user).data)


class PasswordChangeView(GenericAPIView):
    """Change one's own password (the current one is required)."""

    permission_classes = [IsAuthenticated]
    serializer_class = PasswordChangeSerializer

    @extend_schema(
        operation_id="users_me_password",
        request=PasswordChangeSerializer,
        responses={200: _MESSAGE, 400: _ERROR, 401: _ERROR},
        tags=["users"],
    )
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        in_use = request.auth if isinstance(request.auth, AuthToken) else None
        services.change_password(
            user=request.user,
            old_password=data["old_password"],
            new_password=data["new_password"],
            reason=data.get("change_reason", ""),
            keep_token=in_use,
        )
        if in_use is None:
            update_session_auth_hash(_http(request), request.user)  # keep the session in use
        return Response(
            {"success": True, "message": "Password changed. Your other sessions and tokens were signed out."}
        )


@extend_schema_view(
    list=extend_schema(responses={200: UserSerializer(many=True), 400: _ERROR, 401: _ERROR, 403: _ERROR}),
    retrieve=extend_schema(responses={200: UserSerializer, 401: _ERROR, 404: _ERROR}),
)
@extend_schema(tags=["users"])
class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Accounts: managers list and read them and decide registrations;
    administrators edit profiles, roles, the active flag and reset passwords."""

    serializer_class = UserSerializer
    lookup_field = "user_id"
    lookup_value_regex = r"[A-Za-z0-9_-]+"
    filterset_class = UserFilter
    search_fields = ["user_id", "full_name", "email", "department"]
    ordering_fields = ["user_id", "full_name", "date_joined", "role", "approval_status"]
    ordering = ["-date_joined", "-id"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_permissions(self):
        if self.action == "list":
            return [IsManager()]
        if self.action in ("approve", "reject"):  # the service refuses a non-manager, and records it
            return [IsAuthenticated()]
        if self.action in ("partial_update", "reset_password"):
            return [IsAdminRole()]
        return [IsAuthenticated()]

    def get_queryset(self):
        return selectors.users_visible_to(self.request.user)

    def get_object(self):
        from django.shortcuts import get_object_or_404

        user = get_object_or_404(self.get_queryset(), user_id__iexact=self.kwargs[self.lookup_field])
        self.check_object_permissions(self.request, user)
        return user

    @extend_schema(
        request=UserAdminUpdateSerializer, responses={200: UserSerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR}
    )
    def partial_update(self, request, *args, **kwargs):
        user = self.get_object()
        serializer = UserAdminUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        reason = data.pop("change_reason", "")
        role = data.pop("role", None)
        active = data.pop("is_active", None)
        with transaction.atomic():
            if data:
                services.update_profile(user=user, actor=request.user, reason=reason, **data)
            if role is not None:
                services.change_role(user=user, actor=request.user, role=role, reason=reason)
            if active is not None:
                services.set_active(user=user, actor=request.user, active=active, reason=reason)
        return Response(UserSerializer(user).data)

    @extend_schema(
        request=ChangeReasonSerializer,
        responses={200: UserSerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR, 409: _ERROR}
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, user_id=None):
        return self._decide(request, services.approve_user)

    @extend_schema(
        request=ChangeReasonSerializer,
        responses={200: UserSerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR, 409: _ERROR}
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, user_id=None):
        return self._decide(request, services.reject_user)

    def _decide(self, request, service):
        """A manager's decision on an account; anyone else's attempt is refused by the service,
        which records it as a failed audit_trail row of that account (SPEC: a write refused by
        role is a record too). A non-manager gets the same 403 whether the account exists or
        not: the answer tells no one which user ids exist."""
        if is_manager(request.user):
            user = self.get_object()
            service(user=user, actor=request.user, reason=self._reason(request))
            return Response(UserSerializer(user).data)
        target = User.objects.filter(user_id__iexact=self.kwargs[self.lookup_field]).first()
        if target is not None:
            try:
                reason = self._reason(request)
            except (ParseError, UnsupportedMediaType, serializers.ValidationError):
                reason = ""  # a body that is not a reason: the refusal is recorded all the same, without one
            try:
                service(user=target, actor=request.user, reason=reason)
            except DjangoPermissionDenied:
                pass
        raise PermissionDenied(IsManager.message)

    @extend_schema(request=PasswordResetSerializer, responses={200: _MESSAGE, 400: _ERROR, 403: _ERROR, 404: _ERROR})
    @action(detail=True, methods=["post"], url_path="reset-password", url_name="reset-password")
    def reset_password(self, request, user_id=None):
        user = self.get_object()
        serializer = PasswordResetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.reset_password(
            user=user,
            actor=request.user,
            new_password=serializer.validated_data["new_password"],
            reason=serializer.validated_data.get("change_reason", ""),
        )
        return Response({"success": True, "message": f"Password of {user.user_id} reset."})

    @staticmethod
    def _reason(request) -> str:
        serializer = ChangeReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data.get("change_reason", "")
