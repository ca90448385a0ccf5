"""Maintenance API: requests (with life-cycle actions, comments and
attachments) and inventory (with stock adjustments).

Views validate, select, call a service, serialize; the rules live in
``maintenance.services`` and ``maintenance.permissions``.

Visibility: a staff member who may not see a request (neither its requester
nor its assignee) gets **404**, exactly as for a code that does not exist, on
every URL under it (detail, actions, comments, attachments, downloads). A user
who may see a request but not do an action gets 403; an action the request's
status forbids for everyone gets 409.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from marine_center.api import ErrorEnvelopeSerializer

from . import selectors, services
from .filters import InventoryItemFilter, MaintenanceRequestFilter
from .models import ReceiptChannel
from .permissions import CanViewRequest, InventoryPermission
from .serializers import (
    AssignSerializer,
    AttachmentSerializer,
    AttachmentUploadSerializer,
    CancelSerializer,
    CommentCreateSerializer,
    CommentSerializer,
    InventoryItemSerializer,
    InventoryItemWriteSerializer,
    MaintenanceRequestSerializer,
    MaintenanceRequestWriteSerializer,
    RejectSerializer,
    RequestActionSerializer,
    StockAdjustmentSerializer,
    StockAdjustResultSerializer,
    StockAdjustSerializer,
)

_ERROR = ErrorEnvelopeSerializer


def _page_of(serializer_class, name):
    """Schema of a StandardPagination page of ``serializer_class``."""
    return inline_serializer(
        name=name,
        fields={
            "success": serializers.BooleanField(),
            "count": serializers.IntegerField(),
            "total": serializers.IntegerField(),
            "page": serializers.IntegerField(),
            "pages": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )


_ERRORS = {400: _ERROR, 401: _ERROR, 403: _ERROR, 404: _ERROR}
_ACTION_ERRORS = {**_ERRORS, 409: _ERROR}


class ServiceErrorsMixin:
    """Keep the services' own messages for 403 and 404 in the error envelope."""

    def handle_exception(self, exc):
        if isinstance(exc, DjangoPermissionDenied):
            exc = exceptions.PermissionDenied(detail=str(exc) or None)
        elif isinstance(exc, Http404):
            exc = exceptions.NotFound(detail=str(exc) or None)
        return super().handle_exception(exc)


def _validated(serializer_class, request, **kwargs) -> tuple[dict, str]:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    data = dict(serializer.validated_data)
    return data, data.pop("change_reason", "")


@extend_schema_view(
    list=extend_schema(responses={200: MaintenanceRequestSerializer(many=True), 400: _ERROR, 401: _ERROR}),
    retrieve=extend_schema(responses={200: MaintenanceRequestSerializer, 401: _ERROR, 404: _ERROR}),
    create=extend_schema(
        request=MaintenanceRequestWriteSerializer, responses={201: MaintenanceRequestSerializer, **_ERRORS}
    ),
    update=extend_schema(
        request=MaintenanceRequestWriteSerializer, responses={200: MaintenanceRequestSerializer, **_ACTION_ERRORS}
    ),
    partial_update=extend_schema(
        request=MaintenanceRequestWriteSerializer, responses={200: MaintenanceRequestSerializer, **_ACTION_ERRORS}
    ),
)
@extend_schema(tags=["maintenance"])
class MaintenanceRequestViewSet(ServiceErrorsMixin, viewsets.GenericViewSet):
    """Maintenance requests by code (``MR001``). Staff see and act on the
    requests they created or are assigned to (others are a 404); administrators
    and port engineers see all of them."""

    serializer_class = MaintenanceRequestSerializer
    permission_classes = [CanViewRequest]
    lookup_field = "code"
    lookup_value_regex = r"[A-Za-z0-9]+"
    filterset_class = MaintenanceRequestFilter
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_queryset(self):
        return selectors.requests_visible_to(self.request.user)

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        return super().filter_queryset(queryset)

    def get_object(self):
        obj = selectors.get_request_for(self.request.user, self.kwargs[self.lookup_field])
        self.check_object_permissions(self.request, obj)
        return obj

    def _respond(self, obj, status_code=status.HTTP_200_OK):
        return Response(
            MaintenanceRequestSerializer(obj, context=self.get_serializer_context()).data, status=status_code
        )

    def _page(self, queryset, serializer_class):
        page = self.paginate_queryset(queryset)
        data = serializer_class(page, many=True, context=self.get_serializer_context()).data
        return self.get_paginated_response(data)

    # ---- CRUD ----

    def list(self, request, *args, **kwargs):
        return self._page(self.filter_queryset(self.get_queryset()), MaintenanceRequestSerializer)

    def retrieve(self, request, *args, **kwargs):
        return self._respond(self.get_object())

    def create(self, request, *args, **kwargs):
        data, reason = _validated(MaintenanceRequestWriteSerializer, request)
        obj = services.create_request(actor=request.user, reason=reason, **data)
        return self._respond(obj, status.HTTP_201_CREATED)

    def _update(self, request, *, partial):
        obj = self.get_object()
        data, reason = _validated(MaintenanceRequestWriteSerializer, request, partial=partial)
        obj = services.update_request(request_obj=obj, actor=request.user, reason=reason, **data)
        return self._respond(obj)

    def update(self, request, *args, **kwargs):
        return self._update(request, partial=False)

    def partial_update(self, request, *args, **kwargs):
        return self._update(request, partial=True)

    # ---- life-cycle actions ----

    def _transition(self, request, service):
        obj = self.get_object()
        _, reason = _validated(RequestActionSerializer, request)
        return self._respond(service(request_obj=obj, actor=request.user, reason=reason))

    @extend_schema(request=RequestActionSerializer, responses={200: MaintenanceRequestSerializer, **_ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def approve(self, request, code=None):
        """pending -> approved (administrators and port engineers)."""
        return self._transition(request, services.approve_request)

    @extend_schema(request=RejectSerializer, responses={200: MaintenanceRequestSerializer, **_ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def reject(self, request, code=None):
        """pending -> rejected with a required ``change_reason`` (or its older name
        ``reason``; administrators and port engineers). It is kept as the rejection
        reason and recorded as the change reason."""
        obj = self.get_object()
        _, reason = _validated(RejectSerializer, request)
        return self._respond(services.reject_request(request_obj=obj, actor=request.user, reason=reason))

    @extend_schema(request=AssignSerializer, responses={200: MaintenanceRequestSerializer, **_ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def assign(self, request, code=None):
        """Give an open request to an approved, active user (administrators and port engineers)."""
        obj = self.get_object()
        data, reason = _validated(AssignSerializer, request)
        obj = services.assign_request(request_obj=obj, actor=request.user, assignee=data["assigned_to"], reason=reason)
        return self._respond(obj)

    @extend_schema(request=RequestActionSerializer, responses={200: MaintenanceRequestSerializer, **_ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def start(self, request, code=None):
        """approved -> in_progress (the assignee or a manager)."""
        return self._transition(request, services.start_request)

    @extend_schema(request=RequestActionSerializer, responses={200: MaintenanceRequestSerializer, **_ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def complete(self, request, code=None):
        """in_progress -> completed (the assignee or a manager)."""
        return self._transition(request, services.complete_request)

    @extend_schema(request=RequestActionSerializer, responses={200: MaintenanceRequestSerializer, **_ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def cancel(self, request, code=None):
        """pending/approved/in_progress -> cancelled (the requester while
        pending or approved; managers until completion), with a required ``change_reason``."""
        obj = self.get_object()
        _, reason = _validated(CancelSerializer, request)
        return self._respond(services.cancel_request(request_obj=obj, actor=request.user, reason=reason))

    # ---- comments ----

    @extend_schema(
        methods=["GET"],
        request=None,
        responses={200: _page_of(CommentSerializer, "PaginatedMaintenanceCommentList"), 401: _ERROR, 404: _ERROR},
        parameters=[OpenApiParameter("page", int, description="Page number.")],
    )
    @extend_schema(methods=["POST"], request=CommentCreateSerializer, responses={201: CommentSerializer, **_ERRORS})
    @action(detail=True, methods=["get", "post"])
    def comments(self, request, code=None):
        """The request's messages, newest first; POST sends one."""
        obj = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(selectors.comments_for(obj))
            data = CommentSerializer(page, many=True, context=self.get_serializer_context()).data
            services.record_comments_received(request_obj=obj, recipient=request.user, comments=page,
                                              channel=ReceiptChannel.API)
            return self.get_paginated_response(data)
        data, reason = _validated(CommentCreateSerializer, request)
        comment = services.add_comment(request_obj=obj, actor=request.user, body=data["body"], reason=reason)
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)

    # ---- attachments ----

    @extend_schema(
        methods=["GET"],
        request=None,
        responses={
            200: _page_of(AttachmentSerializer, "PaginatedMaintenanceAttachmentList"),
            401: _ERROR,
            404: _ERROR,
        },
        parameters=[OpenApiParameter("page", int, description="Page number.")],
    )
    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": AttachmentUploadSerializer},
        responses={201: AttachmentSerializer, **_ERRORS, 413: _ERROR, 415: _ERROR},
    )
    @action(detail=True, methods=["get", "post"], parser_classes=[MultiPartParser, FormParser])
    def attachments(self, request, code=None):
        """The request's files, newest first; POST (multipart/form-data,
        field ``file``) uploads one within the size and type limits."""
        obj = self.get_object()
        if request.method == "GET":
            return self._page(selectors.attachments_for(obj), AttachmentSerializer)
        data, reason = _validated(AttachmentUploadSerializer, request)
        attachment = services.add_attachment(
            request_obj=obj, actor=request.user, uploaded_file=data["file"], reason=reason
        )
        return Response(AttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("attachment_id", int, OpenApiParameter.PATH, description="Attachment id.")],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The file."),
            401: _ERROR,
            404: _ERROR,
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"attachments/(?P<attachment_id>[0-9]+)/download",
        url_name="download",
    )
    def download(self, request, code=None, attachment_id=None):
        """The file as an attachment download, for users who may see the request."""
        obj = self.get_object()
        attachment = selectors.get_attachment_for(request.user, obj, attachment_id)
        handle = services.download_attachment(attachment=attachment, actor=request.user)
        return FileResponse(
            handle,
            as_attachment=True,
            filename=attachment.original_name,
            content_type=attachment.content_type or "application/octet-stream",
        )


@extend_schema_view(
    list=extend_schema(responses={200: InventoryItemSerializer(many=True), 400: _ERROR, 401: _ERROR}),
    retrieve=extend_schema(responses={200: InventoryItemSerializer, 401: _ERROR, 404: _ERROR}),
    create=extend_schema(request=InventoryItemWriteSerializer, responses={201: InventoryItemSerializer, **_ERRORS}),
    update=extend_schema(request=InventoryItemWriteSerializer, responses={200: InventoryItemSerializer, **_ERRORS}),
    partial_update=extend_schema(
        request=InventoryItemWriteSerializer, responses={200: InventoryItemSerializer, **_ERRORS}
    ),
)
@extend_schema(tags=["inventory"])
class InventoryItemViewSet(ServiceErrorsMixin, viewsets.GenericViewSet):
    """Spare parts by code (``INV001``): every logged-in user reads;
    administrators and port engineers create, edit and adjust stock."""

    serializer_class = InventoryItemSerializer
    permission_classes = [InventoryPermission]
    lookup_field = "code"
    lookup_value_regex = r"[A-Za-z0-9]+"
    filterset_class = InventoryItemFilter
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_queryset(self):
        return selectors.inventory_items()

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        return super().filter_queryset(queryset)

    def get_object(self):
        item = selectors.get_item(self.kwargs[self.lookup_field])
        self.check_object_permissions(self.request, item)
        return item

    def _respond(self, item, status_code=status.HTTP_200_OK):
        return Response(InventoryItemSerializer(item).data, status=status_code)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(InventoryItemSerializer(page, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        return self._respond(self.get_object())

    def create(self, request, *args, **kwargs):
        data, reason = _validated(InventoryItemWriteSerializer, request)
        item = services.create_item(actor=request.user, reason=reason, **data)
        return self._respond(item, status.HTTP_201_CREATED)

    def _update(self, request, *, partial):
        item = self.get_object()
        data, reason = _validated(InventoryItemWriteSerializer, request, partial=partial)
        item = services.update_item(item=item, actor=request.user, reason=reason, **data)
        return self._respond(item)

    def update(self, request, *args, **kwargs):
        return self._update(request, partial=False)

    def partial_update(self, request, *args, **kwargs):
        return self._update(request, partial=True)

    @extend_schema(request=StockAdjustSerializer, responses={200: StockAdjustResultSerializer, **_ERRORS})
    @action(detail=True, methods=["post"])
    def adjust(self, request, code=None):
        """Add (positive ``quantity_change``) or take (negative) stock with a
        ``reason``; stock never goes below zero (400)."""
        item = self.get_object()
        data, _ = _validated(StockAdjustSerializer, request)
        adjustment = services.adjust_stock(
            item=item, actor=request.user, quantity_change=data["quantity_change"], reason=data["reason"]
        )
        return Response(
            {"item": InventoryItemSerializer(item).data, "adjustment": StockAdjustmentSerializer(adjustment).data}
        )

    @extend_schema(
        request=None,
        responses={200: _page_of(StockAdjustmentSerializer, "PaginatedStockAdjustmentList"), 401: _ERROR, 404: _ERROR},
        parameters=[OpenApiParameter("page", int, description="Page number.")],
    )
    @action(detail=True, methods=["get"])
    def adjustments(self, request, code=None):
        """The item's stock ledger, newest first."""
        item = self.get_object()
        page = self.paginate_queryset(selectors.stock_adjustments_for(item))
        return self.get_paginated_response(StockAdjustmentSerializer(page, many=True).data)
