"""Writes for the maintenance app. The API, the portal, the admin and the
management commands all come through here.

Rules (see ``maintenance.permissions`` for the table):
- an action from a status it cannot start from raises ``TransitionError`` (409);
- an action the actor's role does not allow raises ``PermissionDenied`` (403);
- bad values raise ``DomainError`` (400) naming the field at fault.

Every write is atomic, runs inside ``acting(actor, reason)`` (the audit
context with the change reason and the acting user, so that a call from a
shell or a management command is recorded under its real actor, not
"system"), and locks the row it changes
(``SELECT ... FOR UPDATE``) before re-checking its state.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, SuspiciousFileOperation, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.text import get_valid_filename

from audit.context import acting
from core.actions import action, record
from core.codes import next_code
from core.errors import DomainError, TransitionError
from core.lengths import max_length
from core.permissions import is_admin, is_manager
from core.signals import activity, domain_event

from . import file_types, permissions, selectors
from .models import (
    COMMENT_MAX_LENGTH,
    DESCRIPTION_MAX_LENGTH,
    REJECTION_REASON_MAX_LENGTH,
    Attachment,
    Category,
    Comment,
    CommentReceipt,
    InventoryItem,
    MaintenanceRequest,
    Priority,
    ReceiptChannel,
    RequestStatus,
    StockAdjustment,
)

EDITABLE_REQUEST_FIELDS = frozenset(
    {"vessel", "title", "description", "category", "priority", "due_date", "estimated_cost", "assigned_to"}
)
EDITABLE_ITEM_FIELDS = frozenset({"part_number", "name", "location", "quantity_on_hand", "minimum_stock"})
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")

_VERBS = {
    "edit": "edit",
    "approve": "approve",
    "reject": "reject",
    "assign": "assign",
    "start": "start",
    "complete": "complete",
    "cancel": "cancel",
    "comment": "comment on",
    "upload": "attach files to",
}


# ---- small validators ---------------------------------------------------------


def _require_actor(actor) -> None:
    if actor is None or not getattr(actor, "is_authenticated", False):
        raise PermissionDenied("You must be logged in to do this.")


def _text(value: Any, *, field: str, required: bool = False, max_length: int | None = None) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise DomainError(f"{field.replace('_', ' ').capitalize()} must be text.", field=field)
    value = value.replace("\x00", "").strip()
    if required and not value:
        raise DomainError(f"{field.replace('_', ' ').capitalize()} is required.", field=field)
    if max_length is not None and len(value) > max_length:
        raise DomainError(
            f"{field.replace('_', ' ').capitalize()} is too long ({len(value)} characters, at most {max_length}).",
            field=field,
        )
    return value


def _choice(value: Any, *, field: str, choices) -> str:
    if value not in choices.values:
        allowed = ", ".join(choices.values)
        raise DomainError(f"{value!r} is not a valid {field}; use one of: {allowed}.", field=field)
    return value


def _cost(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise DomainError("Estimated cost must be a number.", field="estimated_cost")
    try:
        cost = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise DomainError("Estimated cost must be a number.", field="estimated_cost") from None
    if not cost.is_finite():
        raise DomainError("Estimated cost must be a number.", field="estimated_cost")
    if cost < 0:
        raise DomainError("Estimated cost cannot be negative.", field="estimated_cost")
    if cost != cost.quantize(Decimal("0.01")):
        raise DomainError("Estimated cost has at most 2 decimal places.", field="estimated_cost")
    if cost >= Decimal("10000000000"):
        raise DomainError("Estimated cost is too large (at most 9,999,999,999.99).", field="estimated_cost")
    return cost.quantize(Decimal("0.01"))


def _date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            parsed = parse_date(value)
        except ValueError:
            parsed = None
        if parsed:
            return parsed
    raise DomainError("Due date must be a date (YYYY-MM-DD).", field="due_date")


def _count(value: Any, *, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DomainError(f"{field.replace('_', ' ').capitalize()} must be a whole number.", field=field)
    if value < 0:
        raise DomainError(f"{field.replace('_', ' ').capitalize()} cannot be negative.", field=field)
    if value > 2_147_483_647:
        raise DomainError(f"{field.replace('_', ' ').capitalize()} is too large.", field=field)
    return value


def _check_assignee(assignee) -> None:
    if assignee is None:
        return
    if not getattr(assignee, "pk", None):
        raise DomainError("Unknown assignee.", field="assigned_to")
    if not assignee.is_active or getattr(assignee, "approval_status", "approved") != "approved":
        raise DomainError(
            f"{assignee.user_id} cannot be assigned: only approved, active users can take work.",
            field="assigned_to",
        )


def _full_clean(obj, *, exclude=()) -> None:
    """Model-level validation (lengths, choices) as a last line: a DomainError
    naming the first field at fault."""
    try:
        obj.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            field, messages = next(iter(exc.message_dict.items()))
            raise DomainError(f"{field.replace('_', ' ').capitalize()}: {' '.join(messages)}", field=field) from None
        raise DomainError(" ".join(exc.messages)) from None


def _check(action: str, actor, obj: MaintenanceRequest) -> None:
    """409 if nobody may do ``action`` from the current status, 403 if the
    actor may not."""
    _require_actor(actor)
    verb = _VERBS[action]
    if not permissions.state_allows(action, obj):
        raise TransitionError(
            f"Cannot {verb} maintenance request {obj.code}: it is {obj.get_status_display().lower()}."
        )
    if not permissions.role_allows(action, actor, obj):
        raise PermissionDenied(f"You may not {verb} maintenance request {obj.code}.")


def _lock(obj):
    """Lock ``obj``'s row for this transaction and reload it, so the checks
    below see the committed state (two managers approving at once: one wins,
    the other gets a 409)."""
    type(obj).objects.select_for_update().filter(pk=obj.pk).values_list("pk", flat=True).first()
    obj.refresh_from_db()
    return obj


def _send_activity(text: str, details: str) -> None:
    activity.send(sender=MaintenanceRequest, activity=text, details=details)


# ---- maintenance requests -----------------------------------------------------


@action("Created maintenance request {obj.code} ({obj.title})", refused="create")
def create_request(
    *,
    actor,
    vessel: str,
    title: str,
    description: str = "",
    category: str = Category.OTHER,
    priority: str = Priority.MEDIUM,
    due_date: dt.date | str | None = None,
    estimated_cost: Decimal | str | int | None = None,
    assigned_to=None,
    reason: str = "",
) -> MaintenanceRequest:
    """Open a request (status pending) on behalf of ``actor``. Only managers
    may assign it at creation."""
    _require_actor(actor)
    with acting(actor, reason):
        if assigned_to is not None and not is_manager(actor):
            raise PermissionDenied("Only administrators and port engineers may assign requests.")
        _check_assignee(assigned_to)
        obj = MaintenanceRequest(
            vessel=_text(vessel, field="vessel", required=True, max_length=max_length(MaintenanceRequest, "vessel")),
            title=_text(title, field="title", required=True, max_length=max_length(MaintenanceRequest, "title")),
            description=_text(description, field="description", max_length=DESCRIPTION_MAX_LENGTH),
            category=_choice(category, field="category", choices=Category),
            priority=_choice(priority, field="priority", choices=Priority),
            due_date=_date(due_date),
            estimated_cost=_cost(estimated_cost),
            requested_by=actor,
            assigned_to=assigned_to,
            status=RequestStatus.PENDING,
        )
        _full_clean(obj, exclude=("code", "requested_by", "assigned_to", "approved_by"))
        obj.code = next_code("MR")
        obj.save()
        return obj


_REQUEST_CLEANERS = {
    "vessel": lambda v: _text(v, field="vessel", required=True, max_length=max_length(MaintenanceRequest, "vessel")),
    "title": lambda v: _text(v, field="title", required=True, max_length=max_length(MaintenanceRequest, "title")),
    "description": lambda v: _text(v, field="description", max_length=DESCRIPTION_MAX_LENGTH),
    "category": lambda v: _choice(v, field="category", choices=Category),
    "priority": lambda v: _choice(v, field="priority", choices=Priority),
    "due_date": _date,
    "estimated_cost": _cost,
}


@action("Edited maintenance request {obj.code}", target="request_obj", refused="update")
def update_request(*, request_obj: MaintenanceRequest, actor, reason: str = "", **fields) -> MaintenanceRequest:
    """Change the editable fields of a request (``EDITABLE_REQUEST_FIELDS``).
    The requester may edit while pending, managers until completion; only
    managers change the assignee. Saves only what changed."""
    unknown = sorted(set(fields) - EDITABLE_REQUEST_FIELDS)
    if unknown:
        raise DomainError(f"These fields cannot be edited: {', '.join(unknown)}.", field=unknown[0])
    with acting(actor, reason):
        obj = _lock(request_obj)
        _check("edit", actor, obj)
        changed: list[str] = []
        for name, value in fields.items():
            if name == "assigned_to":
                if value == obj.assigned_to:
                    continue
                if not permissions.role_allows("assign", actor, obj):
                    raise PermissionDenied("Only administrators and port engineers may assign requests.")
                _check_assignee(value)
                obj.assigned_to = value
                changed.append(name)
                continue
            value = _REQUEST_CLEANERS[name](value)
            if getattr(obj, name) != value:
                setattr(obj, name, value)
                changed.append(name)
        if changed:
            _full_clean(obj, exclude=("code", "requested_by", "assigned_to", "approved_by"))
            obj.save(update_fields=[*changed, "updated_at"])
        return obj


@action("Approved maintenance request {obj.code}{obj.override_note}", target="request_obj", refused="approve")
def approve_request(*, request_obj: MaintenanceRequest, actor, reason: str = "") -> MaintenanceRequest:
    """pending -> approved by a manager; stamps approved_by and approved_at.

    Four eyes: nobody approves their own request (403); an administrator may override that with
    a reason, recorded as the change reason "Four-eyes override (own request): <reason>", in the
    activity sentence and in the ``request_approved`` event (``override: true``)."""
    _require_actor(actor)
    override = request_obj.requested_by_id is not None and request_obj.requested_by_id == actor.pk
    if override and not (is_admin(actor) and (reason or "").strip()):
        raise PermissionDenied(
            f"You may not approve your own maintenance request {request_obj.code}: another manager must approve it"
            " (an administrator may override this with a reason)."
        )
    if override:
        reason = f"Four-eyes override (own request): {reason.strip()}"
    with acting(actor, reason):
        obj = _lock(request_obj)
        _check("approve", actor, obj)
        obj.override_note = " (four-eyes override of an own request)" if override else ""
        obj.status = RequestStatus.APPROVED
        obj.approved_by = actor
        obj.approved_at = timezone.now()
        obj.save(update_fields=["status", "approved_by", "approved_at", "updated_at"])
        domain_event.send(
            sender=MaintenanceRequest,
            event_type="request_approved",
            entity_type="maintenance_request",
            entity_id=obj.code,
            event_data={"code": obj.code, "title": obj.title, "vessel": obj.vessel, "approved_by": actor.user_id,
                        "override": override},
            severity="info",
        )
        return obj


@action("Rejected maintenance request {obj.code}", target="request_obj", refused="reject")
def reject_request(*, request_obj: MaintenanceRequest, actor, reason: str) -> MaintenanceRequest:
    """pending -> rejected by a manager; the reason is required and kept on
    the request (``rejection_reason``) as well as in the audit record."""
    reason = _text(reason, field="reason", required=True, max_length=REJECTION_REASON_MAX_LENGTH)
    with acting(actor, reason):
        obj = _lock(request_obj)
        _check("reject", actor, obj)
        obj.status = RequestStatus.REJECTED
        obj.rejection_reason = reason
        obj.save(update_fields=["status", "rejection_reason", "updated_at"])
        return obj


@action("Assigned maintenance request {obj.code} to {obj.assigned_to.user_id}", target="request_obj", refused="assign")
def assign_request(*, request_obj: MaintenanceRequest, actor, assignee, reason: str = "") -> MaintenanceRequest:
    """Give an open request to an approved, active user (managers only)."""
    with acting(actor, reason):
        obj = _lock(request_obj)
        _check("assign", actor, obj)
        if assignee is None:
            raise DomainError("Choose a user to assign the request to.", field="assigned_to")
        _check_assignee(assignee)
        if obj.assigned_to_id != assignee.pk:
            obj.assigned_to = assignee
            obj.save(update_fields=["assigned_to", "updated_at"])
        return obj


@action("Started work on maintenance request {obj.code}", target="request_obj", refused="status_change")
def start_request(*, request_obj: MaintenanceRequest, actor, reason: str = "") -> MaintenanceRequest:
    """approved -> in_progress by the assignee or a manager; stamps started_at."""
    return _move_and_stamp(request_obj, actor, reason, "start", RequestStatus.IN_PROGRESS, "started_at")


@action("Completed maintenance request {obj.code}", target="request_obj", refused="status_change")
def complete_request(*, request_obj: MaintenanceRequest, actor, reason: str = "") -> MaintenanceRequest:
    """in_progress -> completed by the assignee or a manager; stamps completed_at."""
    return _move_and_stamp(request_obj, actor, reason, "complete", RequestStatus.COMPLETED, "completed_at")


def _move_and_stamp(request_obj, actor, reason: str, action: str, status: str, stamp: str) -> MaintenanceRequest:
    """The request, locked and checked for ``action``, moved to ``status`` with ``stamp`` set to now."""
    with acting(actor, reason):
        obj = _lock(request_obj)
        _check(action, actor, obj)
        obj.status = status
        setattr(obj, stamp, timezone.now())
        obj.save(update_fields=["status", stamp, "updated_at"])
        return obj


@action("Cancelled maintenance request {obj.code}", target="request_obj", refused="status_change")
def cancel_request(*, request_obj: MaintenanceRequest, actor, reason: str = "") -> MaintenanceRequest:
    """pending/approved/in_progress -> cancelled: the requester while pending
    or approved, managers until completion."""
    with acting(actor, reason):
        obj = _lock(request_obj)
        _check("cancel", actor, obj)
        obj.status = RequestStatus.CANCELLED
        obj.save(update_fields=["status", "updated_at"])
        return obj


# ---- comments and attachments -----------------------------------------------------


@transaction.atomic
def add_comment(*, request_obj: MaintenanceRequest, actor, body: str, reason: str = "") -> Comment:
    """A message on the request from anyone who may see it."""
    _check("comment", actor, request_obj)
    body = _text(body, field="body", required=True, max_length=COMMENT_MAX_LENGTH)
    with acting(actor, reason):
        comment = Comment.objects.create(request=request_obj, author=actor, body=body)
        _send_activity("Sent message", f"Comment on {request_obj.code}")
        # an alert rule on comment_added can notify people; a delivery to one of the comment's
        # addressees is recorded as its receipt (comment_notified)
        domain_event.send(
            sender=Comment,
            event_type="comment_added",
            entity_type="maintenance_request",
            entity_id=request_obj.code,
            event_data={"code": request_obj.code, "comment_id": comment.pk, "author": actor.user_id,
                        "addressed_to": [u.user_id for u in comment_addressees(request_obj, author=actor)]},
            severity="info",
        )
        return comment


def comment_addressees(request_obj: MaintenanceRequest, *, author) -> list:
    """Whom a comment on ``request_obj`` is addressed to: the request's parties (its requester,
    assignee and approver), other than the comment's author."""
    parties = []
    for user in (request_obj.requested_by, request_obj.assigned_to, request_obj.approved_by):
        if user is not None and user.pk != getattr(author, "pk", author) and user not in parties:
            parties.append(user)
    return parties


def record_comments_received(*, request_obj: MaintenanceRequest, recipient, comments, channel: str,
                             how: str = "") -> int:
    """The first time each of ``comments`` (of ``request_obj``) reached ``recipient``: one
    :class:`CommentReceipt` and one activity row of the recipient, "Received comment on MR004
    from PE001 · Priya Eriksen", per comment addressed to them (see :func:`comment_addressees`)
    and not received before. Once per comment and party: the receipt's unique constraint
    decides, so two pages or a page and a notification at the same moment record it once.
    Returns how many were recorded."""
    if recipient is None or not getattr(recipient, "is_authenticated", False):
        return 0
    candidates = [c for c in comments if c.request_id == request_obj.pk and c.author_id != recipient.pk]
    if not candidates or recipient not in comment_addressees(request_obj, author=None):
        return 0
    seen = set(CommentReceipt.objects.filter(recipient=recipient, comment__in=[c.pk for c in candidates])
               .values_list("comment_id", flat=True))
    recorded = 0
    with acting(recipient):
        for comment in candidates:
            if comment.pk in seen:
                continue
            try:
                with transaction.atomic():
                    CommentReceipt.objects.create(comment=comment, recipient=recipient, channel=channel)
                    author = comment.author
                    sender = f"{author.user_id} · {author.full_name}" if author.full_name else author.user_id
                    label = how or ReceiptChannel(channel).label
                    activity.send(sender=Comment, activity=f"Received comment on {request_obj.code} from {sender}",
                                  details=f"Comment {comment.pk}, {label}")
            except IntegrityError:  # received at the same moment elsewhere: that one is recorded
                continue
            recorded += 1
    return recorded


def comment_notified(*, comment_id, recipient_user_id: str, channel: str) -> int:
    """A notification about a comment (an alert delivery of its ``comment_added`` event)
    reached ``recipient_user_id``: recorded as the comment's receipt when it is addressed to them."""
    from accounts.models import User

    comment = Comment.objects.select_related("request", "author").filter(pk=comment_id).first()
    recipient = User.objects.filter(user_id=recipient_user_id).first()
    if comment is None or recipient is None:
        return 0
    return record_comments_received(request_obj=comment.request, recipient=recipient, comments=[comment],
                                    channel=ReceiptChannel.NOTIFIED, how=f"notified by {channel}")


def _allowed_extensions() -> list[str]:
    return [e.lower().lstrip(".") for e in getattr(settings, "ATTACHMENT_ALLOWED_EXTENSIONS", [])]


def _max_bytes() -> int:
    return int(getattr(settings, "ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024))


def clean_original_name(name: str) -> str:
    """The client's file name without any directory part or control characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return _CONTROL_CHARS.sub("", name).strip()[:255]


def safe_storage_name(original: str, extension: str) -> str:
    """A file-system-safe name keeping the (allowed) extension."""
    stem = original[: -(len(extension) + 1)] if extension else original
    try:
        stem = get_valid_filename(stem)
    except SuspiciousFileOperation:
        stem = ""
    stem = stem.strip("._-")[:100] or "file"
    return f"{stem}.{extension}"


@transaction.atomic
def add_attachment(*, request_obj: MaintenanceRequest, actor, uploaded_file, reason: str = "") -> Attachment:
    """Store an uploaded file on the request.

    Refused (DomainError on ``file``) when empty, larger than
    ``settings.ATTACHMENT_MAX_BYTES``, with an extension outside
    ``settings.ATTACHMENT_ALLOWED_EXTENSIONS``, or when its content is not of the
    type its extension names (maintenance.file_types). The stored name is sanitized,
    the original name kept for downloads; the content type is derived from the
    extension, never taken from the client."""
    _check("upload", actor, request_obj)
    if uploaded_file is None:
        raise DomainError("Choose a file to upload.", field="file")
    original = clean_original_name(getattr(uploaded_file, "name", ""))
    extension = original.rsplit(".", 1)[-1].lower() if "." in original else ""
    allowed = _allowed_extensions()
    if not extension or extension not in allowed:
        shown = f".{extension}" if extension else "without an extension"
        raise DomainError(
            f"Files {shown} are not allowed. Allowed types: {', '.join(allowed)}.", field="file", code="file_type"
        )
    size = uploaded_file.size or 0
    if size <= 0:
        raise DomainError("The file is empty.", field="file", code="file_empty")
    limit = _max_bytes()
    if size > limit:
        raise DomainError(
            f"The file is too large ({size} bytes; the limit is {limit} bytes).", field="file", code="file_too_large"
        )
    if not file_types.checkable(extension):
        raise DomainError(
            f"Files .{extension} cannot be checked by their content, so they are not accepted.",
            field="file",
            code="file_type",
        )
    if not file_types.content_matches(extension, uploaded_file):
        raise DomainError(
            f"The content of {original} is not {file_types.label(extension)}, so it was not uploaded. "
            f"Upload the file in the format its name says (allowed types: {', '.join(allowed)}).",
            field="file",
            code="file_content",
        )
    storage_name = safe_storage_name(original, extension)
    content_type = mimetypes.guess_type(storage_name)[0] or "application/octet-stream"
    with acting(actor, reason):
        attachment = Attachment(
            request=request_obj,
            uploaded_by=actor,
            original_name=original,
            content_type=content_type,
            size=size,
        )
        attachment.file.save(storage_name, uploaded_file, save=False)
        try:
            attachment.save()
            _send_activity("Uploaded attachment", f"{original} ({size} bytes) to {request_obj.code}")
        except BaseException:
            attachment.file.storage.delete(attachment.file.name)
            raise
        return attachment


def download_attachment(*, attachment: Attachment, actor):
    """Open an attachment for reading (the caller streams and closes it),
    for users who may see its request; records the download."""
    request_obj = attachment.request
    _require_actor(actor)
    if not permissions.can_view_request(actor, request_obj):
        raise PermissionDenied("You may not download this attachment.")
    try:
        handle = attachment.file.storage.open(attachment.file.name, "rb")
    except (FileNotFoundError, OSError):
        raise Http404("The file of this attachment is no longer available.") from None
    _send_activity("Downloaded attachment", f"{attachment.original_name} from {request_obj.code}")
    return handle


# ---- inventory -----------------------------------------------------------------


def _require_inventory_manager(actor) -> None:
    _require_actor(actor)
    if not permissions.can_manage_inventory(actor):
        raise PermissionDenied("Only administrators and port engineers may change the inventory.")


def _check_part_number_free(part_number: str, *, exclude_pk=None) -> None:
    if selectors.part_number_taken(part_number, exclude_pk=exclude_pk):
        raise DomainError(
            f"Part number {part_number} is already in the inventory.", field="part_number", code="duplicate"
        )


@action("Created inventory item {obj.code} ({obj.part_number})", refused="create")
def create_item(
    *,
    actor,
    part_number: str,
    name: str,
    location: str = "",
    quantity_on_hand: int = 0,
    minimum_stock: int = 0,
    reason: str = "",
) -> InventoryItem:
    """Add a spare part (managers). Opening stock is recorded as the first
    stock adjustment ("Initial stock")."""
    _require_inventory_manager(actor)
    part_number = _text(part_number, field="part_number", required=True, max_length=max_length(InventoryItem, "part_number"))
    name = _text(name, field="name", required=True, max_length=max_length(InventoryItem, "name"))
    location = _text(location, field="location", max_length=max_length(InventoryItem, "location"))
    quantity_on_hand = _count(quantity_on_hand, field="quantity_on_hand")
    minimum_stock = _count(minimum_stock, field="minimum_stock")
    with acting(actor, reason):
        _check_part_number_free(part_number)
        item = InventoryItem(
            part_number=part_number,
            name=name,
            location=location,
            quantity_on_hand=quantity_on_hand,
            minimum_stock=minimum_stock,
        )
        item.code = next_code("INV")
        try:
            with transaction.atomic():
                item.save()
        except IntegrityError:
            raise DomainError(
                f"Part number {part_number} is already in the inventory.", field="part_number", code="duplicate"
            ) from None
        if quantity_on_hand:
            StockAdjustment.objects.create(
                item=item,
                quantity_change=quantity_on_hand,
                resulting_quantity=quantity_on_hand,
                reason="Initial stock",
                adjusted_by=actor,
            )
        return item


_ITEM_CLEANERS = {
    "part_number": lambda v: _text(v, field="part_number", required=True, max_length=max_length(InventoryItem, "part_number")),
    "name": lambda v: _text(v, field="name", required=True, max_length=max_length(InventoryItem, "name")),
    "location": lambda v: _text(v, field="location", max_length=max_length(InventoryItem, "location")),
    "minimum_stock": lambda v: _count(v, field="minimum_stock"),
    "quantity_on_hand": lambda v: _count(v, field="quantity_on_hand"),
}


@action(None, target="item", refused="update")
def update_item(*, item: InventoryItem, actor, reason: str = "", **fields) -> InventoryItem:
    """Edit a spare part (managers). A new ``quantity_on_hand`` is booked as a
    stock adjustment of the difference, so the ledger always adds up.

    What was done is said in words: "Edited inventory item INV001 (P-100)" when its description
    changed, "Adjusted stock of P-100 by +5 to 6" when its quantity did; nothing when nothing did."""
    _require_inventory_manager(actor)
    unknown = sorted(set(fields) - EDITABLE_ITEM_FIELDS)
    if unknown:
        raise DomainError(f"These fields cannot be edited: {', '.join(unknown)}.", field=unknown[0])
    cleaned = {name: _ITEM_CLEANERS[name](value) for name, value in fields.items()}
    with acting(actor, reason):
        obj = _lock(item)
        if "part_number" in cleaned and cleaned["part_number"] != obj.part_number:
            _check_part_number_free(cleaned["part_number"], exclude_pk=obj.pk)
        changed = [name for name, value in cleaned.items() if getattr(obj, name) != value]
        delta = cleaned.get("quantity_on_hand", obj.quantity_on_hand) - obj.quantity_on_hand
        for name in changed:
            setattr(obj, name, cleaned[name])
        if changed:
            obj.save(update_fields=[*changed, "updated_at"])
        if delta:
            StockAdjustment.objects.create(
                item=obj,
                quantity_change=delta,
                resulting_quantity=obj.quantity_on_hand,
                reason=(reason or "Stock count corrected")[:255],
                adjusted_by=actor,
            )
        if set(changed) - {"quantity_on_hand"}:
            record(f"Edited inventory item {obj.code} ({obj.part_number})", actor=actor, reason=reason)
        if delta:
            record(f"Adjusted stock of {obj.part_number} by {delta:+d} to {obj.quantity_on_hand}", actor=actor,
                   reason=reason)
        return obj


@action("Adjusted stock of {obj.item.part_number} by {obj.quantity_change:+d} to {obj.resulting_quantity}", target="item", refused="update")
def adjust_stock(*, item: InventoryItem, actor, quantity_change: int, reason: str) -> StockAdjustment:
    """Add (positive) or take (negative) stock with a reason (managers).

    The item row is locked (``SELECT ... FOR UPDATE``) so concurrent
    adjustments serialize; stock never goes below zero (DomainError). The
    adjustment row and the new quantity commit together. ``item`` is updated
    in place."""
    _require_inventory_manager(actor)
    if isinstance(quantity_change, bool) or not isinstance(quantity_change, int):
        raise DomainError("Quantity change must be a whole number.", field="quantity_change")
    if quantity_change == 0:
        raise DomainError("Quantity change cannot be zero.", field="quantity_change")
    if abs(quantity_change) > 2_147_483_647:
        raise DomainError("Quantity change is too large.", field="quantity_change")
    reason = _text(reason, field="reason", required=True, max_length=max_length(StockAdjustment, "reason"))
    with acting(actor, reason):
        locked = InventoryItem.objects.select_for_update().get(pk=item.pk)
        new_quantity = locked.quantity_on_hand + quantity_change
        if new_quantity < 0:
            raise DomainError(
                f"Cannot take {-quantity_change} of {locked.code}: only {locked.quantity_on_hand} in stock.",
                field="quantity_change",
                code="insufficient_stock",
            )
        if new_quantity > 2_147_483_647:
            raise DomainError("The resulting stock is too large.", field="quantity_change")
        locked.quantity_on_hand = new_quantity
        locked.save(update_fields=["quantity_on_hand", "updated_at"])
        adjustment = StockAdjustment.objects.create(
            item=locked,
            quantity_change=quantity_change,
            resulting_quantity=new_quantity,
            reason=reason,
            adjusted_by=actor,
        )
        item.quantity_on_hand = locked.quantity_on_hand
        item.updated_at = locked.updated_at
        return adjustment


__all__ = [
    "EDITABLE_ITEM_FIELDS",
    "EDITABLE_REQUEST_FIELDS",
    "add_attachment",
    "add_comment",
    "adjust_stock",
    "approve_request",
    "assign_request",
    "cancel_request",
    "comment_addressees",
    "comment_notified",
    "complete_request",
    "create_item",
    "create_request",
    "download_attachment",
    "record_comments_received",
    "reject_request",
    "start_request",
    "update_item",
    "update_request",
]
