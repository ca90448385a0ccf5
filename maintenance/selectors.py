"""Reads for the maintenance app: what each user may see."""

from __future__ import annotations

from django.db.models import F, Q, QuerySet
from django.http import Http404

from core.permissions import is_manager

from . import permissions
from .models import Attachment, Comment, InventoryItem, MaintenanceRequest, StockAdjustment


def requests_visible_to(user) -> QuerySet[MaintenanceRequest]:
    """Every request for managers; for staff the ones they created or are
    assigned to; nothing for anonymous users. Newest first."""
    qs = MaintenanceRequest.objects.select_related("requested_by", "assigned_to", "approved_by").order_by(
        "-created_at", "-id"
    )
    if not (user and user.is_authenticated):
        return qs.none()
    if is_manager(user):
        return qs
    return qs.filter(Q(requested_by=user) | Q(assigned_to=user))


def get_request_for(user, code: str) -> MaintenanceRequest:
    """The request ``code`` if ``user`` may see it, else ``Http404`` (a request
    you may not see is indistinguishable from one that does not exist)."""
    code = (code or "").strip().upper()
    try:
        return requests_visible_to(user).get(code=code)
    except MaintenanceRequest.DoesNotExist:
        raise Http404(f"No maintenance request {code} that you may see.") from None


def comments_for(request_obj: MaintenanceRequest) -> QuerySet[Comment]:
    return request_obj.comments.select_related("author").order_by("-created_at", "-id")


def attachments_for(request_obj: MaintenanceRequest) -> QuerySet[Attachment]:
    return request_obj.attachments.select_related("uploaded_by").order_by("-created_at", "-id")


def get_attachment_for(user, request_obj: MaintenanceRequest, attachment_id) -> Attachment:
    """An attachment of a request the user may see, else ``Http404``."""
    if not permissions.can_view_request(user, request_obj):
        raise Http404("No such attachment.")
    try:
        return request_obj.attachments.select_related("uploaded_by", "request").get(pk=int(attachment_id))
    except (Attachment.DoesNotExist, TypeError, ValueError):
        raise Http404("No such attachment.") from None


def inventory_items() -> QuerySet[InventoryItem]:
    """All spare parts, newest first."""
    return InventoryItem.objects.order_by("-created_at", "-id")


def items_below_minimum() -> QuerySet[InventoryItem]:
    return inventory_items().filter(quantity_on_hand__lt=F("minimum_stock"))


def get_item(code: str) -> InventoryItem:
    code = (code or "").strip().upper()
    try:
        return InventoryItem.objects.get(code=code)
    except InventoryItem.DoesNotExist:
        raise Http404(f"No inventory item {code}.") from None


def part_number_taken(part_number: str, *, exclude_pk=None) -> bool:
    """Whether another item already uses ``part_number`` (case-insensitive)."""
    qs = InventoryItem.objects.filter(part_number__iexact=(part_number or "").strip())
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return qs.exists()


def stock_adjustments_for(item: InventoryItem) -> QuerySet[StockAdjustment]:
    return item.adjustments.select_related("adjusted_by").order_by("-created_at", "-id")


def allowed_request_actions(user, request_obj: MaintenanceRequest) -> set[str]:
    """The actions ``user`` may perform on ``request_obj`` now: a subset of
    edit, approve, reject, assign, start, complete, cancel, comment, upload."""
    return {action for action in permissions.REQUEST_ACTIONS if permissions.can_do(action, user, request_obj)}


def pending_request_count() -> int:
    return MaintenanceRequest.objects.filter(status="pending").count()
