"""Portal pages for accounts: login, logout, registration, the home page,
one's own profile and password, and user administration for managers.

Every write goes through accounts.services; a refusal (DomainError,
TransitionError) is shown on the form or as a message, never as a 500."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_POST

from audit.ip import client_ip
from audit.web import presentation
from core.errors import DomainError
from core.permissions import is_admin, is_manager
from core.portal import admin_required, form_error, manager_required, message_error, paginate
from emergencies.selectors import active_emergencies, emergencies_visible_to
from maintenance.models import RequestStatus
from maintenance.selectors import items_below_minimum, requests_visible_to

from . import selectors, services
from .forms import (
    ActiveForm,
    DecisionForm,
    LoginForm,
    PasswordChangeForm,
    PasswordResetForm,
    ProfileForm,
    RegistrationForm,
    RoleForm,
    UserFilterForm,
)
from .models import ApprovalStatus

OPEN_REQUEST_STATUSES = (RequestStatus.PENDING, RequestStatus.APPROVED, RequestStatus.IN_PROGRESS)


# --- login, logout, registration ------------------------------------------------


class LoginView(auth_views.LoginView):
    """Django's login view with a form that explains refusals (the backend counts failures)."""

    form_class = LoginForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST only (Django refuses GET since 5.0); back to the login page."""

    next_page = reverse_lazy("login")

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You have been logged out.")
        return response


def register(request):
    """Self-registration: the account starts pending until a manager approves it."""
    if request.user.is_authenticated:
        return redirect("home")
    form = RegistrationForm(request.POST or None)
    refused = services.registration_refusal(ip=client_ip(request)) if request.method == "POST" else None
    if refused:
        form.is_valid()
        form.add_error(None, refused[0])
        response = render(request, "registration/register.html", {"form": form}, status=429)
        response["Retry-After"] = str(refused[1])
        return response
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.register_user(
                user_id=data["user_id"],
                password=data["password1"],
                full_name=data["full_name"],
                email=data["email"],
                phone=data["phone"],
                department=data["department"],
            )
        except DomainError as exc:
            form_error(form, exc, field_map={"password": "password1"})
        else:
            messages.success(
                request,
                f"Your account {user.user_id} has been created and is pending approval. "
                "An administrator or port engineer will approve it; you can log in once it is approved.",
            )
            return redirect("login")
    return render(request, "registration/register.html", {"form": form})


# --- home ---------------------------------------------------------------------------


@login_required
def home(request):
    user = request.user
    context = {"is_manager": is_manager(user)}
    if is_manager(user):
        requests = requests_visible_to(user)
        context.update(
            pending_requests=requests.filter(status=RequestStatus.PENDING)[:10],
            pending_request_count=requests.filter(status=RequestStatus.PENDING).count(),
            pending_users=selectors.pending_users()[:10],
            pending_user_count=selectors.pending_users().count(),
            active_emergencies=emergencies_visible_to(user).filter(pk__in=active_emergencies().values("pk"))[:10],
            active_emergency_count=active_emergencies().count(),
            low_stock=items_below_minimum()[:10],
            low_stock_count=items_below_minimum().count(),
            open_critical_events=presentation.critical_events(),
        )
    else:
        context.update(
            my_requests=requests_visible_to(user).filter(status__in=OPEN_REQUEST_STATUSES)[:10],
            my_emergencies=emergencies_visible_to(user).filter(pk__in=active_emergencies().values("pk"))[:10],
        )
    return render(request, "accounts/home.html", context)


# --- own profile and password ----------------------------------------------------------


@login_required
def profile(request):
    user = request.user
    initial = {name: getattr(user, name) for name in ProfileForm.PROFILE_FIELDS}
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in ProfileForm.PROFILE_FIELDS if name in form.changed_data}
        try:
            services.update_profile(user=user, actor=user, reason=form.cleaned_data["reason"], **changes)
        except DomainError as exc:
            form_error(form, exc)
        else:
            messages.success(request, "Your profile was saved." if changes else "Nothing was changed.")
            return redirect("profile")
    return render(request, "accounts/profile.html", {"form": form})


@login_required
def password_change(request):
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.change_password(
                user=request.user,
                old_password=form.cleaned_data["old_password"],
                new_password=form.cleaned_data["new_password1"],
            )
        except DomainError as exc:
            form_error(form, exc, field_map={"new_password": "new_password1"})
        else:
            update_session_auth_hash(request, request.user)
            messages.success(request, "Your password was changed.")
            return redirect("profile")
    return render(request, "accounts/password_change.html", {"form": form})


# --- user administration (managers) ----------------------------------------------------------


@login_required
@manager_required
def user_list(request):
    users = selectors.users_visible_to(request.user)
    filter_form = UserFilterForm(request.GET or None)
    if filter_form.is_valid():
        data = filter_form.cleaned_data
        if data["role"]:
            users = users.filter(role=data["role"])
        if data["approval_status"]:
            users = users.filter(approval_status=data["approval_status"])
        if data["q"]:
            q = data["q"].strip()
            users = users.filter(
                Q(user_id__icontains=q) | Q(full_name__icontains=q) | Q(email__icontains=q) | Q(department__icontains=q)
            )
    return render(
        request,
        "accounts/user_list.html",
        {"filter_form": filter_form, "page_obj": paginate(request, users), "pending_count": selectors.pending_users().count()},
    )


def _get_user(request, user_id):
    user = selectors.users_visible_to(request.user).filter(user_id__iexact=user_id).first()
    if user is None:
        raise Http404("No such user.")
    return user


@login_required
@manager_required
def user_detail(request, user_id):
    subject = _get_user(request, user_id)
    context = {
        "subject": subject,
        "can_decide": is_manager(request.user) and subject.approval_status == ApprovalStatus.PENDING,
        "can_administer": is_admin(request.user),
        "approve_form": DecisionForm(auto_id="approve_%s"),
        "reject_form": DecisionForm(auto_id="reject_%s"),
        "role_form": RoleForm(initial={"role": subject.role}, auto_id="role_%s"),
        "reset_form": PasswordResetForm(auto_id="reset_%s"),
        "active_form": ActiveForm(initial={"active": "true" if subject.is_active else "false"}, auto_id="active_%s"),
    }
    if context["can_decide"]:
        # the one who approves is told when the id imitates another account's
        for other in selectors.lookalike_users(subject):
            messages.warning(
                request,
                f"The user ID {subject.user_id} is one character away from the existing account {other.user_id} "
                f"({other.full_name or 'no name'}, {other.email or 'no e-mail'}). "
                "Make sure this is not someone posing as them before approving it.",
            )
    return render(request, "accounts/user_detail.html", context)


def _back_to_user(subject):
    return redirect(reverse("user_detail", args=[subject.user_id]))


def _apply(request, subject, call, success):
    """Run one account action from the user page: the service's DomainError
    as an error message, else ``success()`` (read after the change), then
    back to the user's page."""
    try:
        call()
    except DomainError as exc:
        message_error(request, exc)
    else:
        messages.success(request, success())
    return _back_to_user(subject)


@login_required
@manager_required
@require_POST
def user_decide(request, user_id, decision):
    """Approve or reject a pending account (managers)."""
    subject = _get_user(request, user_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The reason is too long.")
        return _back_to_user(subject)
    action = services.approve_user if decision == "approve" else services.reject_user
    return _apply(
        request, subject,
        lambda: action(user=subject, actor=request.user, reason=form.cleaned_data["reason"]),
        lambda: f"Account {subject.user_id} was {'approved' if decision == 'approve' else 'rejected'}.",
    )


@login_required
@admin_required
@require_POST
def user_role(request, user_id):
    subject = _get_user(request, user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
        return _back_to_user(subject)
    return _apply(
        request, subject,
        lambda: services.change_role(
            user=subject, actor=request.user, role=form.cleaned_data["role"], reason=form.cleaned_data["reason"]
        ),
        lambda: f"{subject.user_id} is now {subject.get_role_display().lower()}.",
    )


@login_required
@admin_required
@require_POST
def user_password_reset(request, user_id):
    subject = _get_user(request, user_id)
    form = PasswordResetForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter the new password.")
        return _back_to_user(subject)
    return _apply(
        request, subject,
        lambda: services.reset_password(
            user=subject, actor=request.user, new_password=form.cleaned_data["new_password"],
            reason=form.cleaned_data["reason"],
        ),
        lambda: f"The password of {subject.user_id} was reset; tell them the new one in person.",
    )


@login_required
@admin_required
@require_POST
def user_active(request, user_id):
    subject = _get_user(request, user_id)
    form = ActiveForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return _back_to_user(subject)
    return _apply(
        request, subject,
        lambda: services.set_active(
            user=subject, actor=request.user, active=form.cleaned_data["active"], reason=form.cleaned_data["reason"]
        ),
        lambda: f"{subject.user_id} is now {'active' if subject.is_active else 'inactive'}.",
    )
