"""Portal pages for maintenance requests (with comments and attachments) and
the spare-parts inventory.

Reads go through maintenance.selectors (staff see only their own requests; a
request someone may not see is a 404), writes through maintenance.services.
Action buttons come from ``allowed_request_actions``; the action views check
the same rules again on the server (403) before the service does."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import F, Q
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.errors import DomainError
from core.portal import edit_page, form_error, manager_required, message_error, paginate, run_action

from . import permissions, selectors, services
from .forms import (
    ActionForm,
    AdjustForm,
    AssignForm,
    AttachmentForm,
    CancelForm,
    CommentForm,
    InventoryFilterForm,
    ItemForm,
    RejectForm,
    RequestFilterForm,
    RequestForm,
)
from .models import ReceiptChannel

# The status moves offered as buttons: action name -> (service, form class, past tense)
REQUEST_ACTIONS = {
    "approve": (services.approve_request, ActionForm, "approved"),
    "reject": (services.reject_request, RejectForm, "rejected"),
    "assign": (services.assign_request, AssignForm, "assigned"),
    "start": (services.start_request, ActionForm, "started"),
    "complete": (services.complete_request, ActionForm, "completed"),
    "cancel": (services.cancel_request, CancelForm, "cancelled"),
}


# --- requests --------------------------------------------------------------------


@login_required
def request_list(request):
    requests = selectors.requests_visible_to(request.user)
    filter_form = RequestFilterForm(request.GET or None)
    if filter_form.is_valid():
        data = filter_form.cleaned_data
        for name in ("status", "priority", "category"):
            if data[name]:
                requests = requests.filter(**{name: data[name]})
        if data["q"]:
            q = data["q"].strip()
            requests = requests.filter(Q(code__icontains=q) | Q(title__icontains=q) | Q(vessel__icontains=q))
    return render(
        request, "maintenance/request_list.html", {"filter_form": filter_form, "page_obj": paginate(request, requests)}
    )


@login_required
def request_create(request):
    form = RequestForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            obj = services.create_request(actor=request.user, reason=form.cleaned_data["reason"], **form.values())
        except DomainError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Maintenance request {obj.code} was created and awaits approval.")
            return redirect("request_detail", code=obj.code)
    return render(request, "maintenance/request_form.html", {"form": form, "obj": None})


def _detail_context(request, obj, **extra):
    actions = selectors.allowed_request_actions(request.user, obj)
    context = {
        "obj": obj,
        "actions": actions,
        "has_moves": bool(actions & set(REQUEST_ACTIONS)),
        "comments": selectors.comments_for(obj).order_by("created_at", "id"),  # a conversation reads oldest first
        "attachments": selectors.attachments_for(obj),
        "comment_form": CommentForm(),
        "attachment_form": AttachmentForm(),
        "approve_form": ActionForm(auto_id="approve_%s"),
        "reject_form": RejectForm(auto_id="reject_%s"),
        "assign_form": AssignForm(auto_id="assign_%s", initial={"assignee": obj.assigned_to})
        if "assign" in actions
        else None,
        "start_form": ActionForm(auto_id="start_%s"),
        "complete_form": ActionForm(auto_id="complete_%s"),
        "cancel_form": CancelForm(auto_id="cancel_%s"),
    }
    context.update(extra)
    return context


@login_required
def request_detail(request, code):
    obj = selectors.get_request_for(request.user, code)
    context = _detail_context(request, obj)
    context["comments"] = list(context["comments"])
    response = render(request, "maintenance/request_detail.html", context)
    services.record_comments_received(request_obj=obj, recipient=request.user, comments=context["comments"],
                                      channel=ReceiptChannel.PAGE)
    return response


@login_required
def request_edit(request, code):
    obj = selectors.get_request_for(request.user, code)
    if not permissions.can_edit_request(request.user, obj):
        raise PermissionDenied("You may not edit this request now.")
    return edit_page(
        request, obj=obj, form_class=RequestForm, template="maintenance/request_form.html", detail="request_detail",
        save=lambda **fields: services.update_request(request_obj=obj, actor=request.user, **fields),
    )


@login_required
@require_POST
def request_action(request, code, action):
    if action not in REQUEST_ACTIONS:
        raise Http404("No such action.")
    obj = selectors.get_request_for(request.user, code)
    if not permissions.role_allows(action, request.user, obj):
        raise PermissionDenied(f"You may not {action} this request.")
    service, form_class, done = REQUEST_ACTIONS[action]
    return run_action(
        request, obj=obj, action=action, form=form_class(request.POST), done=done, detail="request_detail",
        call=lambda **kwargs: service(request_obj=obj, actor=request.user, **kwargs),
    )


@login_required
@require_POST
def request_comment(request, code):
    obj = selectors.get_request_for(request.user, code)
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            services.add_comment(request_obj=obj, actor=request.user, body=form.cleaned_data["body"])
        except DomainError as exc:
            message_error(request, exc)
        else:
            messages.success(request, "Your message was posted.")
    else:
        messages.error(request, "Write a message of at most 5000 characters.")
    return redirect(f"{obj_url(obj)}#comments")


@login_required
@require_POST
def request_upload(request, code):
    obj = selectors.get_request_for(request.user, code)
    form = AttachmentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            attachment = services.add_attachment(
                request_obj=obj, actor=request.user, uploaded_file=form.cleaned_data["file"]
            )
        except DomainError as exc:
            message_error(request, exc)
        else:
            messages.success(request, f"{attachment.original_name} was uploaded.")
    else:
        messages.error(request, "Choose a file to upload.")
    return redirect(f"{obj_url(obj)}#attachments")


@login_required
def attachment_download(request, code, attachment_id):
    obj = selectors.get_request_for(request.user, code)
    attachment = selectors.get_attachment_for(request.user, obj, attachment_id)
    handle = services.download_attachment(attachment=attachment, actor=request.user)
    return FileResponse(
        handle, as_attachment=True, filename=attachment.original_name, content_type=attachment.content_type
    )


def obj_url(obj) -> str:
    from django.urls import reverse

    return reverse("request_detail", args=[obj.code])


# --- inventory ---------------------------------------------------------------------


@login_required
def inventory_list(request):
    items = selectors.inventory_items()
    filter_form = InventoryFilterForm(request.GET or None)
    if filter_form.is_valid():
        data = filter_form.cleaned_data
        if data["low_stock"]:
            items = items.filter(quantity_on_hand__lt=F("minimum_stock"))
        if data["q"]:
            q = data["q"].strip()
            items = items.filter(
                Q(code__icontains=q) | Q(part_number__icontains=q) | Q(name__icontains=q) | Q(location__icontains=q)
            )
    return render(
        request,
        "maintenance/inventory_list.html",
        {
            "filter_form": filter_form,
            "page_obj": paginate(request, items),
            "can_manage": permissions.can_manage_inventory(request.user),
        },
    )


@login_required
@manager_required
def inventory_create(request):
    form = ItemForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            item = services.create_item(actor=request.user, reason=form.cleaned_data["reason"], **form.values())
        except DomainError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Spare part {item.code} was added.")
            return redirect("inventory_detail", code=item.code)
    return render(request, "maintenance/inventory_form.html", {"form": form, "item": None})


@login_required
def inventory_detail(request, code):
    item = selectors.get_item(code)
    can_manage = permissions.can_manage_inventory(request.user)
    return render(
        request,
        "maintenance/inventory_detail.html",
        {
            "item": item,
            "adjustments": selectors.stock_adjustments_for(item)[:100],
            "can_manage": can_manage,
            "adjust_form": AdjustForm() if can_manage else None,
        },
    )


@login_required
@manager_required
def inventory_edit(request, code):
    item = selectors.get_item(code)
    initial = {name: getattr(item, name) for name in ItemForm.FIELDS}
    form = ItemForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changes = form.values(only_changed=True)
        try:
            services.update_item(item=item, actor=request.user, reason=form.cleaned_data["reason"], **changes)
        except DomainError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"{item.code} was saved." if changes else "Nothing was changed.")
            return redirect("inventory_detail", code=item.code)
    return render(request, "maintenance/inventory_form.html", {"form": form, "item": item})


@login_required
@manager_required
@require_POST
def inventory_adjust(request, code):
    item = selectors.get_item(code)
    form = AdjustForm(request.POST)
    if form.is_valid():
        try:
            services.adjust_stock(
                item=item,
                actor=request.user,
                quantity_change=form.cleaned_data["quantity_change"],
                reason=form.cleaned_data["reason"],
            )
        except DomainError as exc:
            message_error(request, exc)
        else:
            messages.success(request, f"Stock of {item.code} is now {item.quantity_on_hand}.")
    else:
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            for error in errors:
                messages.error(request, f"{label}: {error}" if label else error)
    return redirect("inventory_detail", code=item.code)
