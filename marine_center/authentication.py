"""Bearer token authentication (kept apart from marine_center.api, which
imports rest_framework.views: DRF imports authentication classes while
rest_framework.views is still loading)."""

from knox.auth import TokenAuthentication
from rest_framework import exceptions


class BearerTokenAuthentication(TokenAuthentication):
    """knox tokens sent as ``Authorization: Bearer <token>``.

    Refused tokens are reported through ``core.signals.token_rejected`` so the
    audit app can record them (DRF never sends ``user_login_failed``)."""

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed as exc:
            from core.signals import token_rejected

            token_rejected.send(sender=self.__class__, request=request, reason=str(exc.detail))
            raise


try:  # describe the Bearer scheme in the OpenAPI schema
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class BearerTokenScheme(OpenApiAuthenticationExtension):
        target_class = "marine_center.authentication.BearerTokenAuthentication"
        name = "bearerAuth"

        def get_security_definition(self, auto_schema):
            return {"type": "http", "scheme": "bearer", "description": "Token from POST /api/auth/token"}
except ImportError:  # pragma: no cover - drf-spectacular is a pinned requirement
    pass
