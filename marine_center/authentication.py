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
