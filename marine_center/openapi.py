"""The OpenAPI document's schema class: what every operation answers beyond its own responses.

Two answers come from machinery every view shares rather than from the view, so they are
documented here once instead of in each ``@extend_schema``:

- 401, for any operation that takes credentials: DRF refuses a request without them (when the
  view needs a user) or with a bad, expired or revoked token (whatever the view needs);
- 404, for a paginated list: the page number is beyond the last page or not a positive number.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse

UNAUTHENTICATED = "Not authenticated: no credentials where they are needed, or a bad, expired or revoked token."
NO_SUCH_PAGE = "No such page: `page` is beyond the last page or not a positive number."


class AutoSchema(SpectacularAutoSchema):
    def _get_response_bodies(self, direction="response"):
        from marine_center.api import ErrorEnvelopeSerializer

        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        if "401" not in responses and any(requirement for requirement in self.get_auth()):
            responses["401"] = self._get_response_for_code(
                OpenApiResponse(ErrorEnvelopeSerializer, description=UNAUTHENTICATED), "401", direction=direction
            )
        if "404" not in responses and self.method == "GET" and self._is_paginated_list():
            responses["404"] = self._get_response_for_code(
                OpenApiResponse(ErrorEnvelopeSerializer, description=NO_SUCH_PAGE), "404", direction=direction
            )
        return dict(sorted(responses.items()))

    def _is_paginated_list(self) -> bool:
        return self._get_paginator() is not None and self._is_list_view()
