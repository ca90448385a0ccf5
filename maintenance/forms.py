"""Portal forms for maintenance requests and inventory. They shape input
only; the rules live in maintenance.services."""

from __future__ import annotations

from django import forms

from accounts.models import ApprovalStatus, User
from core.lengths import max_length
from core.permissions import is_manager
from core.portal import ReasonField, SearchField

from .models import (
    COMMENT_MAX_LENGTH,
    DESCRIPTION_MAX_LENGTH,
    Category,
    InventoryItem,
    MaintenanceRequest,
    Priority,
    RequestStatus,
    StockAdjustment,
)


def assignable_users():
    return User.objects.filter(is_active=True, approval_status=ApprovalStatus.APPROVED).order_by("user_id")


class UserChoiceField(forms.ModelChoiceField):
    """A user picked by ``user_id`` (the value posted is the code, not the pk)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("to_field_name", "user_id")
        super().__init__(queryset=assignable_users(), **kwargs)

    def label_from_instance(self, obj):
        role = obj.get_role_display()
        return f"{obj.user_id} — {obj.full_name} ({role})" if obj.full_name else f"{obj.user_id} ({role})"


class RequestFilterForm(forms.Form):
    q = SearchField(placeholder="Code, title or vessel")
    status = forms.ChoiceField(choices=[("", "Any status"), *RequestStatus.choices], required=False)
    priority = forms.ChoiceField(choices=[("", "Any priority"), *Priority.choices], required=False)
    category = forms.ChoiceField(choices=[("", "Any category"), *Category.choices], required=False)


class RequestForm(forms.Form):
    """Create and edit a request. ``assigned_to`` is offered to managers only."""

    wide_fields = ("title", "description", "reason")

    title = forms.CharField(max_length=max_length(MaintenanceRequest, "title"))
    vessel = forms.CharField(max_length=max_length(MaintenanceRequest, "vessel"))
    category = forms.ChoiceField(choices=Category.choices, initial=Category.OTHER)
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.MEDIUM)
    due_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="YYYY-MM-DD")
    estimated_cost = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=2,
        label="Estimated cost",
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
    )
    assigned_to = UserChoiceField(required=False, label="Assigned to", empty_label="Nobody yet")
    description = forms.CharField(required=False, max_length=DESCRIPTION_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 5}))
    reason = ReasonField()

    FIELDS = ("title", "vessel", "category", "priority", "due_date", "estimated_cost", "assigned_to", "description")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if not is_manager(user):
            del self.fields["assigned_to"]

    def values(self, *, only_changed: bool = False) -> dict:
        names = [n for n in self.FIELDS if n in self.fields]
        if only_changed:
            names = [n for n in names if n in self.changed_data]
        return {n: self.cleaned_data[n] for n in names}


class ActionForm(forms.Form):
    """approve, start, complete: only the reason."""

    reason = ReasonField()


class CancelForm(forms.Form):
    """Cancel asks for a reason and a confirmation (SPEC "Four eyes"): no cancel in one click."""

    reason = ReasonField(required=True, label="Reason for cancelling", help_text="Required; shown in the history.")
    confirm = forms.BooleanField(required=True, label="Yes, cancel this request",
                                 error_messages={"required": "Tick the box to confirm the cancellation."})


class RejectForm(forms.Form):
    reason = ReasonField(required=True, label="Reason for rejecting", help_text="Required; shown to the requester.")
    confirm = forms.BooleanField(required=True, label="Yes, reject this request",
                                 error_messages={"required": "Tick the box to confirm the rejection."})


class AssignForm(forms.Form):
    assignee = UserChoiceField(label="Assign to", empty_label="Choose a user…")
    reason = ReasonField()


class CommentForm(forms.Form):
    body = forms.CharField(label="Message", max_length=COMMENT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3}))


class AttachmentForm(forms.Form):
    file = forms.FileField(label="File", allow_empty_file=True)


class InventoryFilterForm(forms.Form):
    q = SearchField(placeholder="Code, part number, name or location")
    low_stock = forms.BooleanField(label="Below minimum only", required=False)


class ItemForm(forms.Form):
    wide_fields = ("reason",)

    part_number = forms.CharField(max_length=max_length(InventoryItem, "part_number"))
    name = forms.CharField(max_length=max_length(InventoryItem, "name"))
    location = forms.CharField(max_length=max_length(InventoryItem, "location"), required=False)
    quantity_on_hand = forms.IntegerField(min_value=0, max_value=2_147_483_647, initial=0, label="Quantity on hand")
    minimum_stock = forms.IntegerField(min_value=0, max_value=2_147_483_647, initial=0, label="Minimum stock")
    reason = ReasonField()

    FIELDS = ("part_number", "name", "location", "quantity_on_hand", "minimum_stock")

    def values(self, *, only_changed: bool = False) -> dict:
        names = [n for n in self.FIELDS if not only_changed or n in self.changed_data]
        return {n: self.cleaned_data[n] for n in names}


class AdjustForm(forms.Form):
    quantity_change = forms.IntegerField(
        label="Quantity change",
        min_value=-2_147_483_647,
        max_value=2_147_483_647,
        help_text="Positive to add stock, negative to take it out.",
    )
    reason = ReasonField(required=True, label="Reason", max_length=max_length(StockAdjustment, "reason"), help_text="Required; kept on the stock ledger.")

    def clean_quantity_change(self):
        value = self.cleaned_data["quantity_change"]
        if value == 0:
            raise forms.ValidationError("The change cannot be zero.")
        return value
