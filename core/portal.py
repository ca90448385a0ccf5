"""Small helpers shared by the server-rendered portal views.

The portal calls the same services and selectors as the API; these helpers
only turn their answers into pages: pagination, domain errors shown on a
form or as a message, and role checks that end in the 403 page."""

from __future__ import annotations

from functools import wraps

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator

from core.errors import DomainError
from core.lengths import CHANGE_REASON_MAX_LENGTH
from core.permissions import is_admin, is_manager

PAGE_SIZE = 20


def paginate(request, queryset, per_page: int = PAGE_SIZE):
    """The requested page (``?page=``); an invalid or too large number gives
    the last page rather than an error."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def form_error(form: forms.Form, exc: DomainError, *, field_map: dict | None = None) -> None:
    """Show a service's DomainError on the form field it names, or above the form."""
    field = (field_map or {}).get(exc.field, exc.field)
    if field and field in form.fields:
        form.add_error(field, str(exc))
    else:
        form.add_error(None, str(exc))


def message_error(request, exc: Exception) -> None:
    messages.error(request, str(exc) or "The operation was refused.")


def require(check, message: str = "You are not allowed to do this."):
    """View decorator: ``check(user)`` must hold, else the 403 page.

    Use it under ``login_required`` so anonymous users go to the login page."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not check(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


manager_required = require(is_manager, "Only administrators and port engineers may do this.")
admin_required = require(is_admin, "Only administrators may do this.")


class ReasonField(forms.CharField):
    """The change-reason box of edit and approval forms."""

    def __init__(self, *, required: bool = False, label: str = "Reason for the change", **kwargs):
        kwargs.setdefault("max_length", CHANGE_REASON_MAX_LENGTH)
        kwargs.setdefault(
            "widget", forms.Textarea(attrs={"rows": 2, "class": "reason", "placeholder": "Why is this being done?"})
        )
        kwargs.setdefault("help_text", "Recorded in the audit trail with the change.")
        super().__init__(required=required, label=label, **kwargs)


class SearchField(forms.CharField):
    """The free-text search box of a list page's filters; ``placeholder`` says what it searches."""

    def __init__(self, *, placeholder: str, **kwargs):
        kwargs.setdefault("label", "Search")
        kwargs.setdefault("max_length", 100)
        super().__init__(required=False, widget=forms.TextInput(attrs={"type": "search", "placeholder": placeholder}),
                         **kwargs)


def edit_page(request, *, obj, form_class, save, template: str, detail: str):
    """The edit page of a request or an emergency: a form prefilled from
    ``obj`` (users by user_id), ``save(reason=..., **changed_fields)`` on a
    valid POST, the service's DomainError shown on the form, then back to
    the ``detail`` page."""
    from django.shortcuts import redirect, render

    initial = {name: getattr(obj, name) for name in form_class.FIELDS}
    initial["assigned_to"] = obj.assigned_to.user_id if obj.assigned_to else None
    form = form_class(request.POST or None, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        changes = form.values(only_changed=True)
        try:
            save(reason=form.cleaned_data["reason"], **changes)
        except DomainError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"{obj.code} was saved." if changes else "Nothing was changed.")
            return redirect(detail, code=obj.code)
    return render(request, template, {"form": form, "obj": obj})


def run_action(request, *, obj, action: str, form, call, done: str, detail: str):
    """A life-cycle action posted from a detail page: ``call(reason=...,
    [assignee=...])`` when the form (reason box, assignee) is valid; errors
    and the outcome shown as messages; back to the ``detail`` page."""
    from django.shortcuts import redirect

    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Could not {action} {obj.code}: {error}")
        return redirect(detail, code=obj.code)
    kwargs = {"reason": form.cleaned_data["reason"]}
    if action == "assign":
        kwargs["assignee"] = form.cleaned_data["assignee"]
    try:
        call(**kwargs)
    except DomainError as exc:
        message_error(request, exc)
    except PermissionDenied as exc:  # a rule the page cannot know beforehand (four eyes): said, not a bare 403
        messages.error(request, str(exc))
    else:
        suffix = f" to {obj.assigned_to.user_id}" if action == "assign" and obj.assigned_to else ""
        messages.success(request, f"{obj.code} was {done}{suffix}.")
    return redirect(detail, code=obj.code)
