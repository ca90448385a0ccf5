"""Portal pages for emergencies: list, report, detail with the handling
buttons (managers), edit. Reads through emergencies.selectors, writes through
emergencies.services; refusals become a message or a form error."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from alerts import selectors as alerts_selectors
from core.errors import DomainError
from core.portal import edit_page, form_error, message_error, paginate, run_action

from . import permissions, selectors, services
from .forms import ActionForm, AssignForm, EmergencyFilterForm, EmergencyForm
from .models import ACTIVE_STATUSES

# action -> (service, past tense)
EMERGENCY_ACTIONS = {
    "acknowledge": (services.acknowledge_emergency, "acknowledged"),
    "dispatch": (services.dispatch_emergency, "dispatched"),
    "resolve": (services.resolve_emergency, "resolved"),
    "close": (services.close_emergency, "closed"),
    "assign": (services.assign_emergency, "assigned"),
}


@login_required
def emergency_list(request):
    emergencies = selectors.emergencies_visible_to(request.user)
    filter_form = EmergencyFilterForm(request.GET or None)
    if filter_form.is_valid():
        data = filter_form.cleaned_data
        for name in ("status", "severity", "emergency_type"):
            if data[name]:
                emergencies = emergencies.filter(**{name: data[name]})
        if data["active"]:
            emergencies = emergencies.filter(status__in=ACTIVE_STATUSES)
        if data["q"]:
            q = data["q"].strip()
            emergencies = emergencies.filter(Q(code__icontains=q) | Q(vessel__icontains=q) | Q(location__icontains=q))
    return render(
        request, "emergencies/emergency_list.html", {"filter_form": filter_form, "page_obj": paginate(request, emergencies)}
    )


@login_required
def emergency_create(request):
    form = EmergencyForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            emergency = services.report_emergency(actor=request.user, reason=form.cleaned_data["reason"], **form.values())
        except DomainError as exc:
            form_error(form, exc)
        else:
            messages.success(request, _reported_message(emergency))
            return redirect("emergency_detail", code=emergency.code)
    return render(request, "emergencies/emergency_form.html", {"form": form, "obj": None})


def _reported_message(emergency) -> str:
    """The confirmation tells the reporter who is being notified (by the alert rules)."""
    names = alerts_selectors.notified_about(event_type="emergency_created", entity_type="emergency",
                                            entity_id=emergency.code)
    if names:
        return f"Emergency {emergency.code} was reported; notified: {alerts_selectors.sentence(names)}."
    return (f"Emergency {emergency.code} was reported. No alert rule notifies anyone of it, so tell a port "
            "engineer yourself if it needs one now.")


@login_required
def emergency_detail(request, code):
    emergency = selectors.get_emergency_for(request.user, code)
    actions = selectors.allowed_emergency_actions(request.user, emergency)
    context = {
        "obj": emergency,
        "actions": actions,
        "has_moves": bool(actions & set(EMERGENCY_ACTIONS)),
        "forms": {name: ActionForm(auto_id=f"{name}_%s") for name in ("acknowledge", "dispatch", "resolve", "close")},
        "assign_form": AssignForm(auto_id="assign_%s", initial={"assignee": emergency.assigned_to}) if "assign" in actions else None,
    }
    return render(request, "emergencies/emergency_detail.html", context)


@login_required
def emergency_edit(request, code):
    emergency = selectors.get_emergency_for(request.user, code)
    if not permissions.can_edit_emergency(request.user, emergency):
        raise PermissionDenied("You may not edit this emergency now.")
    return edit_page(
        request, obj=emergency, form_class=EmergencyForm, template="emergencies/emergency_form.html",
        detail="emergency_detail",
        save=lambda **fields: services.update_emergency(emergency=emergency, actor=request.user, **fields),
    )


@login_required
@require_POST
def emergency_action(request, code, action):
    if action not in EMERGENCY_ACTIONS:
        raise Http404("No such action.")
    emergency = selectors.get_emergency_for(request.user, code)
    if not permissions.can_handle_emergency(request.user):
        raise PermissionDenied("Only administrators and port engineers may handle emergencies.")
    service, done = EMERGENCY_ACTIONS[action]
    form = (AssignForm if action == "assign" else ActionForm)(request.POST)
    return run_action(
        request, obj=emergency, action=action, form=form, done=done, detail="emergency_detail",
        call=lambda **kwargs: service(emergency=emergency, actor=request.user, **kwargs),
    )
    kwargs = {"emergency": emergency, "actor": request.user, "reason": form.cleaned_data["reason"]}
    if action == "assign":
        kwargs["assignee"] = form.cleaned_data["assignee"]
    try:
        service(**kwargs)
    except DomainError as exc:
        message_error(request, exc)
    else:
        suffix = f" to {emergency.assigned_to.user_id}" if action == "assign" and emergency.assigned_to else ""
        messages.success(request, f"{emergency.code} was {done}{suffix}.")
    return redirect("emergency_detail", code=emergency.code)
