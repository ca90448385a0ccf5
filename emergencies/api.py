"""Emergencies API: /api/emergencies/ and /api/emergencies/<EMG…>/ with the
life-cycle actions. Views validate, select, call a service, serialize."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from marine_center.api import ErrorEnvelopeSerializer

from . import selectors, services
from .filters import EmergencyFilter
from .permissions import CanHandleEmergency, CanViewEmergency
from .serializers import (
    EmergencyActionSerializer,
    EmergencyAssignSerializer,
    EmergencyCreateSerializer,
    EmergencySerializer,
    EmergencyUpdateSerializer,
)

_ERROR = ErrorEnvelopeSerializer
_ACTION_SCHEMA = extend_schema(
    request=EmergencyActionSerializer,
    responses={200: EmergencySerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR, 409: _ERROR},
)


@extend_schema_view(
    list=extend_schema(responses={200: EmergencySerializer(many=True), 400: _ERROR, 401: _ERROR}),
    retrieve=extend_schema(responses={200: EmergencySerializer, 404: _ERROR}),
    create=extend_schema(
        request=EmergencyCreateSerializer, responses={201: EmergencySerializer, 400: _ERROR, 403: _ERROR}
    ),
    partial_update=extend_schema(
        request=EmergencyUpdateSerializer,
        responses={200: EmergencySerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR, 409: _ERROR},
    ),
)
@extend_schema(tags=["emergencies"])
class EmergencyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Anyone logged in reports; staff see what they reported or are assigned
    to; administrators and port engineers handle every emergency."""

    serializer_class = EmergencySerializer
    lookup_field = "code"
    lookup_value_regex = r"[A-Za-z0-9]+"
    filterset_class = EmergencyFilter
    search_fields = ["code", "vessel", "description", "location"]
    ordering_fields = ["created_at", "updated_at", "severity", "status", "code"]
    ordering = ["-created_at", "-id"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_permissions(self):
        if self.action in ("acknowledge", "dispatch_action", "resolve", "close", "assign"):
            return [CanHandleEmergency()]
        return [IsAuthenticated(), CanViewEmergency()]

    def get_queryset(self):
        return selectors.emergencies_visible_to(self.request.user)

    def get_object(self):
        emergency = selectors.get_emergency_for(self.request.user, self.kwargs[self.lookup_field])
        self.check_object_permissions(self.request, emergency)
        return emergency

    def _respond(self, emergency, status_code=status.HTTP_200_OK):
        return Response(EmergencySerializer(emergency, context=self.get_serializer_context()).data, status=status_code)

    def create(self, request, *args, **kwargs):
        serializer = EmergencyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        reason = data.pop("change_reason", "")
        emergency = services.report_emergency(actor=request.user, reason=reason, **data)
        return self._respond(emergency, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        emergency = self.get_object()
        serializer = EmergencyUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        reason = data.pop("change_reason", "")
        emergency = services.update_emergency(emergency=emergency, actor=request.user, reason=reason, **data)
        return self._respond(emergency)

    def _reason(self, request) -> str:
        serializer = EmergencyActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data.get("change_reason", "")

    def _transition(self, request, service):
        emergency = self.get_object()
        reason = self._reason(request)
        return self._respond(service(emergency=emergency, actor=request.user, reason=reason))

    @_ACTION_SCHEMA
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, code=None):
        return self._transition(request, services.acknowledge_emergency)

    # Not named ``dispatch``: that is APIView.dispatch, which this would replace.
    @_ACTION_SCHEMA
    @action(detail=True, methods=["post"], url_path="dispatch", url_name="dispatch")
    def dispatch_action(self, request, code=None):
        return self._transition(request, services.dispatch_emergency)

    @_ACTION_SCHEMA
    @action(detail=True, methods=["post"])
    def resolve(self, request, code=None):
        return self._transition(request, services.resolve_emergency)

    @_ACTION_SCHEMA
    @action(detail=True, methods=["post"])
    def close(self, request, code=None):
        return self._transition(request, services.close_emergency)

    @extend_schema(
        request=EmergencyAssignSerializer,
        responses={200: EmergencySerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR, 409: _ERROR},
    )
    @action(detail=True, methods=["post"])
    def assign(self, request, code=None):
        emergency = self.get_object()
        serializer = EmergencyAssignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        emergency = services.assign_emergency(
            emergency=emergency,
            actor=request.user,
            assignee=serializer.validated_data["assigned_to"],
            reason=serializer.validated_data.get("change_reason", ""),
        )
        return self._respond(emergency)
