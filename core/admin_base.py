"""The admin base every model admin that writes derives from: each add, change, delete and
changelist action a person takes in the admin is a sentence in their activity and carries
the reason they gave to the audit trail (SPEC "What is recorded", issue 12.1).

One mechanism, no line per view:

- Saves that go through a service declared with ``core.actions.action`` are recorded by the
  service ("Edited maintenance request MR001"). A save whose services said nothing (a model
  without services, such as a group or an alert rule, or a user page where only the groups
  changed) is recorded here, from Django's own ``log_addition`` / ``log_change`` hooks:
  "Created group Deck crew", "Edited user ST001 (Sam Staff)". Which of the two happened is
  known with ``core.actions.collecting`` around the change form.
- Deletes (the delete page and the "Delete selected" action) run in one transaction with the
  reason given on the confirmation page as the audit context's reason, and each deleted
  object is a sentence ("Deleted maintenance request MR003 Fix the windlass").
- Every add and change form has a "Change reason" box (unless the form declares its own), kept
  as the audit context's reason while the admin saves the object and its relations.
- The changelist's action bar has a reason box (:class:`ReasonActionForm`); actions read it
  with :meth:`RecordedAdmin.action_reason` and pass it to their services.
"""

from __future__ import annotations

from django import forms
from django.contrib.admin.helpers import ActionForm
from django.db import router, transaction

from audit.context import reason_context
from core import actions
from core.lengths import CHANGE_REASON_MAX_LENGTH

#: the POST field of a reason outside the change form (delete pages)
REASON_FIELD = "change_reason"


class ReasonActionForm(ActionForm):
    """The changelist action bar with a reason box, kept as the change reason of the action."""

    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"size": 40, "placeholder": "Reason (kept in the audit trail)"}),
    )


class RecordedAdmin:
    """Mixin for a ``ModelAdmin`` (before it in the bases): see the module docstring."""

    action_form = ReasonActionForm
    delete_confirmation_template = "admin/recorded_delete_confirmation.html"
    delete_selected_confirmation_template = "admin/recorded_delete_selected_confirmation.html"

    # --- what the person wrote ----------------------------------------------------------

    def action_reason(self, request) -> str:
        """The reason typed in the action bar (or on a confirmation page)."""
        return (request.POST.get("reason") or request.POST.get(REASON_FIELD) or "").strip()

    def recorded_name(self, obj) -> str:
        """How a sentence names ``obj``: its verbose name and its own text ("group Deck crew")."""
        return f"{obj._meta.verbose_name} {obj}"

    # --- adds and changes ----------------------------------------------------------------

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = with_reason_field(kwargs.get("form") or self.form)
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        editable = self.has_add_permission(request) if obj is None else self.has_change_permission(request, obj)
        if not editable or any(REASON_FIELD in flatten(options.get("fields", ())) for _, options in fieldsets):
            return fieldsets  # a page that only shows the object asks for no reason
        return [*fieldsets, ("Change reason", {"fields": (REASON_FIELD,)})]

    def save_model(self, request, obj, form, change):
        with reason_context(form.cleaned_data.get(REASON_FIELD, "")):
            super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        with reason_context(form.cleaned_data.get(REASON_FIELD, "")):
            super().save_related(request, form, formsets, change)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        with actions.collecting() as said:
            request._recorded_sentences = said
            try:
                return super().changeform_view(request, object_id, form_url, extra_context)
            finally:
                del request._recorded_sentences

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        self._record_unless_said(request, f"Created {self.recorded_name(obj)}")
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        if message:  # Django logs a save without changes too; nothing was done then
            self._record_unless_said(request, f"Edited {self.recorded_name(obj)}")
        return entry

    def _record_unless_said(self, request, sentence: str) -> None:
        said = getattr(request, "_recorded_sentences", None)
        if said is not None and not said:  # inside the change form, and no service said what was done
            actions.record(sentence, actor=request.user, reason=_posted_reason(request))

    # --- deletes ---------------------------------------------------------------------------

    def delete_model(self, request, obj):
        sentence = f"Deleted {self.recorded_name(obj)}"
        reason = _posted_reason(request)
        with transaction.atomic(using=router.db_for_write(self.model)), reason_context(reason):
            super().delete_model(request, obj)
            actions.record(sentence, actor=request.user, reason=reason)

    def delete_queryset(self, request, queryset):
        sentences = [f"Deleted {self.recorded_name(obj)}" for obj in queryset]
        reason = _posted_reason(request)
        with transaction.atomic(using=router.db_for_write(self.model)), reason_context(reason):
            super().delete_queryset(request, queryset)
            for sentence in sentences:
                actions.record(sentence, actor=request.user, reason=reason)


def reason_field() -> forms.CharField:
    """The change-reason box of an admin form (read as ``change_reason``)."""
    return forms.CharField(label="Change reason", required=False, max_length=CHANGE_REASON_MAX_LENGTH,
                           help_text="Why this change is made (kept in the audit trail).")


def with_reason_field(form_class):
    """``form_class`` with a ``change_reason`` field, unless it declares one itself."""
    if REASON_FIELD in form_class.base_fields:
        return form_class
    return type(form_class)(f"Reasoned{form_class.__name__}", (form_class,),
                            {REASON_FIELD: reason_field(), "__module__": form_class.__module__})


def flatten(fields) -> list[str]:
    names = []
    for field in fields:
        names.extend(field if isinstance(field, list | tuple) else [field])
    return names


def _posted_reason(request) -> str:
    value = request.POST.get(REASON_FIELD) or request.POST.get("reason") or ""
    return value.strip() if isinstance(value, str) else ""
