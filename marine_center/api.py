"""API plumbing shared by every app: pagination and
the one error envelope that every 4xx of the API uses."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError, TransitionError


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_paginated_response(self, data):
        return Response(
            {
                "success": True,
                "count": len(data),
                "total": self.page.paginator.count,
                "page": self.page.number,
                "pages": self.page.paginator.num_pages,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["success", "count", "total", "results"],
            "properties": {
                "success": {"type": "boolean"},
                "count": {"type": "integer"},
                "total": {"type": "integer"},
                "page": {"type": "integer"},
                "pages": {"type": "integer"},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }


_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
}


def _flatten(detail):
    """Turn DRF's nested error detail into {field: "message; message"}."""
    if isinstance(detail, dict):
        out = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                for sub, msg in _flatten(value).items():
                    out[f"{key}.{sub}"] = msg
            elif isinstance(value, list):
                parts = []
                for item in value:
                    if isinstance(item, dict):
                        for sub, msg in _flatten(item).items():
                            out[f"{key}.{sub}"] = msg
                    else:
                        parts.append(str(item))
                if parts:
                    out[key] = " ".join(parts)
            else:
                out[key] = str(value)
        return out
    return {}


def error_body(*, status_code: int, message: str, code: str | None = None, fields: dict | None = None) -> dict:
    error = {"code": code or _CODES.get(status_code, "error"), "message": message}
    if fields:
        error["fields"] = fields
    return {"success": False, "error": error}


def exception_handler(exc, context):
    """Give every API error one shape: {"success": false, "error": {...}}."""
    if isinstance(exc, TransitionError):
        return Response(
            error_body(status_code=409, message=str(exc), code="invalid_transition"),
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, DomainError):
        fields = {exc.field: str(exc)} if getattr(exc, "field", None) else None
        return Response(
            error_body(status_code=400, message=str(exc), code=exc.code, fields=fields),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, DjangoValidationError):
        fields = {k: " ".join(v) for k, v in exc.message_dict.items()} if hasattr(exc, "error_dict") else None
        message = "Invalid input." if fields else " ".join(exc.messages)
        return Response(error_body(status_code=400, message=message, fields=fields), status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real 500: left to Django (and the audit error recorder)

    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            fields = _flatten(detail)
            non_field = fields.pop("non_field_errors", None)
            message = non_field or "Invalid input: " + ", ".join(sorted(fields)) if fields else (non_field or "Invalid input.")
            if non_field and fields:
                message = non_field
            response.data = error_body(status_code=400, message=message, fields=fields or None)
        else:
            items = detail if isinstance(detail, list) else [detail]
            response.data = error_body(status_code=400, message=" ".join(str(i) for i in items))
        return response

    detail = getattr(exc, "detail", None)
    code = getattr(detail, "code", None) if detail is not None else None
    message = str(detail) if detail is not None else str(exc)
    response.data = error_body(status_code=response.status_code, message=message, code=_CODES.get(response.status_code, code))
    return response


class ErrorDetailSerializer(serializers.Serializer):
    """The ``error`` object of the envelope every API error answers with."""

    code = serializers.CharField(help_text="Machine-readable reason, e.g. validation_error, not_found.")
    message = serializers.CharField(help_text="A sentence for people.")
    fields = serializers.DictField(child=serializers.CharField(), required=False,
                                   help_text="Field or parameter -> what is wrong with it.")


class ErrorEnvelopeSerializer(serializers.Serializer):
    """Schema of every API error response (one OpenAPI component, ``ErrorEnvelope``, used by all apps)."""

    success = serializers.BooleanField(default=False)
    error = ErrorDetailSerializer()
