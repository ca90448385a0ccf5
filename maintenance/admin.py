"""Maintenance administration. Saves and actions go through
``maintenance.services``, so the admin obeys the same rules (and leaves the
same audit records) as the API and the portal. Comments, attachments and
stock adjustments are shown read-only: they are written through the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import ApprovalStatus, User
from audit.admin.export import CsvExportMixin
from audit.admin.revert import RevertHistoryAdmin
from core.admin_base import RecordedAdmin, reason_field
from core.errors import DomainError
from core.permissions import is_manager

from . import permissions, selectors, services
from .models import Attachment, Comment, InventoryItem, MaintenanceRequest, ReceiptChannel, StockAdjustment


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CommentInline(_ReadOnlyInline):
    model = Comment
    fields = ("author", "body", "created_at")
    readonly_fields = fields


class AttachmentInline(_ReadOnlyInline):
    model = Attachment
    fields = ("original_name", "content_type", "size", "uploaded_by", "created_at", "download")
    readonly_fields = fields

    @admin.display(description="Download")
    def download(self, obj):
        return _download_link(obj)


def _download_link(obj):
    if obj is None or obj.pk is None:
        return "-"
    url = reverse("maintenance-request-download", kwargs={"code": obj.request.code, "attachment_id": obj.pk})
    return format_html('<a href="{}">Download</a>', url)


def _assignable():
    return User.objects.filter(is_active=True, approval_status=ApprovalStatus.APPROVED).order_by("user_id")


class MaintenanceRequestAdminForm(forms.ModelForm):
    change_reason = reason_field()

    class Meta:
        model = MaintenanceRequest
        fields = [
            "vessel",
            "title",
            "description",
            "category",
            "priority",
            "due_date",
            "estimated_cost",
            "assigned_to",
        ]

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        if "assigned_to" in self.fields:
            self.fields["assigned_to"].queryset = _assignable()
            self.fields["assigned_to"].help_text = "Only approved, active users can take work."

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is not None:
            current = MaintenanceRequest.objects.get(pk=self.instance.pk)
            if not permissions.can_edit_request(self.actor, current):
                raise forms.ValidationError(
                    f"{current.code} is {current.get_status_display().lower()} and can no longer be edited."
                )
        if cleaned.get("assigned_to") is not None and not is_manager(self.actor):
            self.add_error("assigned_to", "Only administrators and port engineers may assign requests.")
        return cleaned


def _with_actor(form_class, actor):
    class ActorForm(form_class):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("actor", actor)
            super().__init__(*args, **kwargs)

    return ActorForm


def _adopt(obj, created):
    """Make the admin's unsaved ``obj`` the row a service created."""
    obj.pk = created.pk
    obj._state.adding = False
    obj._state.db = created._state.db
    obj.refresh_from_db()


EDITABLE_REQUEST_FIELDS = list(MaintenanceRequestAdminForm.Meta.fields)


@admin.register(MaintenanceRequest)
class MaintenanceRequestAdmin(RecordedAdmin, CsvExportMixin, RevertHistoryAdmin):
    """A revert restores the editable fields through ``services.update_request`` (so only
    while the request may be edited, by whom may edit it); the status and its stamps move
    only through the actions, so a version with another status is not restored."""

    form = MaintenanceRequestAdminForm
    revert_status_field = "status"
    list_display = (
        "code",
        "title",
        "vessel",
        "status",
        "priority",
        "category",
        "requested_by",
        "assigned_to",
        "due_date",
        "created_at",
    )
    list_filter = ("status", "priority", "category", "created_at", "due_date")
    search_fields = ("code", "title", "vessel", "description", "requested_by__user_id", "assigned_to__user_id")
    date_hierarchy = "created_at"
    list_select_related = ("requested_by", "assigned_to")
    ordering = ("-created_at", "-id")
    readonly_fields = (
        "code",
        "status",
        "requested_by",
        "approved_by",
        "approved_at",
        "started_at",
        "completed_at",
        "rejection_reason",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("code", "status", "vessel", "title", "description")}),
        ("Planning", {"fields": ("category", "priority", "due_date", "estimated_cost", "assigned_to")}),
        (
            "Life cycle",
            {
                "fields": (
                    "requested_by",
                    "approved_by",
                    "approved_at",
                    "started_at",
                    "completed_at",
                    "rejection_reason",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        ("Change reason", {"fields": ("change_reason",)}),
    )
    add_fieldsets = (
        (None, {"fields": ("vessel", "title", "description")}),
        ("Planning", {"fields": ("category", "priority", "due_date", "estimated_cost", "assigned_to")}),
        ("Change reason", {"fields": ("change_reason",)}),
    )
    inlines = [CommentInline, AttachmentInline]
    actions = ["approve_selected", "reject_selected", "start_selected", "complete_selected", "cancel_selected"]
    csv_fields = ("code", "title", "vessel", "description", "status", "priority", "category", "requested_by",
                  "assigned_to", "approved_by", "approved_at", "due_date", "estimated_cost", "started_at",
                  "completed_at", "rejection_reason", "created_at", "updated_at")

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        obj = getattr(response, "context_data", {}).get("original") if request.method == "GET" else None
        if obj is not None and response.status_code == 200:  # its comments are shown inline: messages received
            services.record_comments_received(request_obj=obj, recipient=request.user,
                                              comments=list(obj.comments.select_related("author")),
                                              channel=ReceiptChannel.PAGE, how="shown on the admin page")
        return response

    def revert_refusal(self, request, current, version):
        refusal = super().revert_refusal(request, current, version)
        if refusal is None and version is not None and not permissions.can_edit_request(request.user, current):
            refusal = (f"{current.code} is {current.get_status_display().lower()} and can no longer be edited "
                       "by you, so it cannot be reverted either.")
        return refusal

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        if not permissions.can_edit_request(request.user, obj):
            return (*self.readonly_fields, *EDITABLE_REQUEST_FIELDS)
        return self.readonly_fields

    def get_form(self, request, obj=None, **kwargs):
        return _with_actor(super().get_form(request, obj, **kwargs), request.user)

    # --- saving through the services ------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        reason = data.get("change_reason", "")
        fields = {name: data[name] for name in EDITABLE_REQUEST_FIELDS if name in data}
        if not change:
            _adopt(obj, services.create_request(actor=request.user, reason=reason, **fields))
            return
        current = MaintenanceRequest.objects.get(pk=obj.pk)
        changed = {name: value for name, value in fields.items() if getattr(current, name) != value}
        if changed:
            services.update_request(request_obj=current, actor=request.user, reason=reason, **changed)
        obj.refresh_from_db()

    # --- actions ----------------------------------------------------------------

    def has_approve_permission(self, request):
        """Approve and reject: administrators and port engineers."""
        return is_manager(request.user) and self.has_change_permission(request)

    def _run(self, request, queryset, verb, call):
        done = []
        for obj in queryset.order_by("created_at", "id"):
            try:
                call(obj)
            except (DomainError, PermissionDenied) as exc:  # TransitionError is a DomainError
                self.message_user(request, f"{obj.code}: {exc}", messages.ERROR)
            else:
                done.append(obj.code)
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}.", messages.SUCCESS)

    @admin.action(permissions=["approve"], description="Approve selected pending requests")
    def approve_selected(self, request, queryset):
        reason = self.action_reason(request)
        self._run(
            request,
            queryset,
            "Approved",
            lambda obj: services.approve_request(request_obj=obj, actor=request.user, reason=reason),
        )

    @admin.action(permissions=["approve"], description="Reject selected pending requests (enter a reason)")
    def reject_selected(self, request, queryset):
        reason = self.action_reason(request)
        if not reason:
            self.message_user(request, "Enter a reason in the Reason box to reject requests.", messages.ERROR)
            return
        self._run(
            request,
            queryset,
            "Rejected",
            lambda obj: services.reject_request(request_obj=obj, actor=request.user, reason=reason),
        )

    @admin.action(permissions=["change"], description="Start work on selected approved requests")
    def start_selected(self, request, queryset):
        reason = self.action_reason(request)
        self._run(
            request,
            queryset,
            "Started",
            lambda obj: services.start_request(request_obj=obj, actor=request.user, reason=reason),
        )

    @admin.action(permissions=["change"], description="Complete selected requests in progress")
    def complete_selected(self, request, queryset):
        reason = self.action_reason(request)
        self._run(
            request,
            queryset,
            "Completed",
            lambda obj: services.complete_request(request_obj=obj, actor=request.user, reason=reason),
        )

    @admin.action(permissions=["change"], description="Cancel selected requests")
    def cancel_selected(self, request, queryset):
        reason = self.action_reason(request)
        self._run(
            request,
            queryset,
            "Cancelled",
            lambda obj: services.cancel_request(request_obj=obj, actor=request.user, reason=reason),
        )


# ---- inventory ---------------------------------------------------------------------


class StockAdjustmentInline(_ReadOnlyInline):
    model = StockAdjustment
    fields = ("created_at", "quantity_change", "resulting_quantity", "reason", "adjusted_by")
    readonly_fields = fields
    ordering = ("-created_at", "-id")


class InventoryItemAdminForm(forms.ModelForm):
    change_reason = reason_field()

    class Meta:
        model = InventoryItem
        fields = ["part_number", "name", "location", "quantity_on_hand", "minimum_stock"]
        help_texts = {"quantity_on_hand": "A changed quantity is booked as a stock adjustment with the change reason."}

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor

    def validate_unique(self):
        pass  # checked case-insensitively in clean_part_number, as the service does

    def clean_part_number(self):
        part_number = (self.cleaned_data.get("part_number") or "").strip()
        if selectors.part_number_taken(part_number, exclude_pk=self.instance.pk):
            raise forms.ValidationError(f"Part number {part_number} is already in the inventory.")
        return part_number


EDITABLE_ITEM_FIELDS = list(InventoryItemAdminForm.Meta.fields)


@admin.register(InventoryItem)
class InventoryItemAdmin(RecordedAdmin, CsvExportMixin, RevertHistoryAdmin):
    """A revert restores the item's description through ``services.update_item``; the
    quantity on hand is not reverted (stock changes only by adjustments, which a revert
    would otherwise invent)."""

    form = InventoryItemAdminForm
    list_display = ("code", "part_number", "name", "location", "quantity_on_hand", "minimum_stock", "below_minimum")
    list_filter = ("location",)
    search_fields = ("code", "part_number", "name", "location")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    readonly_fields = ("code", "created_at", "updated_at")
    fields = (
        "code",
        "part_number",
        "name",
        "location",
        "quantity_on_hand",
        "minimum_stock",
        "created_at",
        "updated_at",
        "change_reason",
    )
    inlines = [StockAdjustmentInline]
    csv_fields = ("code", "part_number", "name", "location", "quantity_on_hand", "minimum_stock", "below_minimum",
                  "created_at", "updated_at")

    @admin.display(boolean=True, description="Below minimum")
    def below_minimum(self, obj):
        return obj.below_minimum

    def get_fields(self, request, obj=None):
        if obj is None:
            return [*EDITABLE_ITEM_FIELDS, "change_reason"]
        return self.fields

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (*self.readonly_fields, "quantity_on_hand") if self.reverting(request) else self.readonly_fields

    def get_form(self, request, obj=None, **kwargs):
        return _with_actor(super().get_form(request, obj, **kwargs), request.user)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        reason = data.get("change_reason", "")
        fields = {name: data[name] for name in EDITABLE_ITEM_FIELDS if name in data}
        if not change:
            _adopt(obj, services.create_item(actor=request.user, reason=reason, **fields))
            return
        current = InventoryItem.objects.get(pk=obj.pk)
        changed = {name: value for name, value in fields.items() if getattr(current, name) != value}
        if changed:
            services.update_item(item=current, actor=request.user, reason=reason, **changed)
        obj.refresh_from_db()


# ---- read-only records ------------------------------------------------------------------


class _ReadOnlyAdmin(RecordedAdmin, admin.ModelAdmin):
    """Written through the services only (comments, uploads, adjustments); an administrator may
    delete a comment or an upload, with a reason (recorded)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Comment)
class CommentAdmin(_ReadOnlyAdmin):
    list_display = ("id", "request", "author", "short_body", "created_at")
    list_select_related = ("request", "author")
    search_fields = ("request__code", "author__user_id", "body")
    date_hierarchy = "created_at"
    fields = ("request", "author", "body", "created_at")
    readonly_fields = fields

    @admin.display(description="Message")
    def short_body(self, obj):
        return obj.body if len(obj.body) <= 80 else obj.body[:77] + "..."


@admin.register(Attachment)
class AttachmentAdmin(_ReadOnlyAdmin):
    list_display = ("id", "original_name", "request", "content_type", "size", "uploaded_by", "created_at")
    list_select_related = ("request", "uploaded_by")
    list_filter = ("content_type",)
    search_fields = ("original_name", "request__code", "uploaded_by__user_id")
    date_hierarchy = "created_at"
    fields = ("request", "original_name", "content_type", "size", "uploaded_by", "created_at", "download")
    readonly_fields = fields

    @admin.display(description="Download")
    def download(self, obj):
        return _download_link(obj)


@admin.register(StockAdjustment)
class StockAdjustmentAdmin(CsvExportMixin, _ReadOnlyAdmin):
    list_display = ("id", "item", "quantity_change", "resulting_quantity", "reason", "adjusted_by", "created_at")
    list_select_related = ("item", "adjusted_by")
    search_fields = ("item__code", "item__part_number", "reason", "adjusted_by__user_id")
    date_hierarchy = "created_at"
    fields = ("item", "quantity_change", "resulting_quantity", "reason", "adjusted_by", "created_at")
    readonly_fields = fields
    csv_fields = ("id", *fields)

    def has_delete_permission(self, request, obj=None):
        return False  # the stock ledger must add up to the quantity on hand
