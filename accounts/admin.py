"""Account administration. Every write goes through accounts.services, so the
admin obeys the same rules (and leaves the same audit records) as the API."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import password_validation, update_session_auth_hash
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from knox import admin as knox_admin  # noqa: F401  (registers AuthToken first, whatever the app order)
from knox.models import AuthToken

from audit.admin.export import CsvExportMixin
from audit.admin.revert import RevertHistoryAdmin
from core.admin_base import RecordedAdmin, reason_field
from core.errors import DomainError, TransitionError

from . import selectors, services
from .forms import check_passwords_match, password_field
from .models import ApprovalStatus, Role, User

# Tokens are issued only through POST /api/auth/token (recorded in the audit
# trail): knox's own admin would mint tokens without expiry for anyone and
# show their digests, so it is taken off the site.
if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)


class UserAddForm(forms.ModelForm):
    password1 = password_field("Password", help_text=password_validation.password_validators_help_text_html())
    password2 = password_field("Password confirmation")
    change_reason = reason_field()

    class Meta:
        model = User
        fields = ["user_id", "full_name", "email", "phone", "department", "role"]

    def validate_unique(self):
        pass  # the service checks user_id case-insensitively

    def clean(self):
        cleaned = super().clean()
        if not check_passwords_match(self, cleaned, "password1", "password2") or self.errors:
            return cleaned
        try:
            services.check_new_user(
                user_id=cleaned.get("user_id", ""),
                password=cleaned.get("password1") or "",
                full_name=cleaned.get("full_name", ""),
                email=cleaned.get("email", ""),
                phone=cleaned.get("phone", ""),
                department=cleaned.get("department", ""),
            )
        except DomainError as exc:
            self.add_error("password1" if exc.field == "password" else exc.field, str(exc))
        return cleaned


class UserChangeForm(forms.ModelForm):
    change_reason = reason_field()

    class Meta:
        model = User
        fields = ["full_name", "email", "phone", "department", "role", "is_active", "groups", "user_permissions"]

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None or self.errors:
            return cleaned
        current = User.objects.get(pk=self.instance.pk)
        for field, message in services.account_change_problems(
            user=current, actor=self.actor, role=cleaned.get("role"), active=cleaned.get("is_active")
        ).items():
            self.add_error(field, message)
        if services.deactivation_needs_reason(
            user=current, active=cleaned.get("is_active"), reason=cleaned.get("change_reason")
        ):
            self.add_error("change_reason", services.DEACTIVATION_REASON_REQUIRED)
        return cleaned


class PasswordResetForm(forms.Form):
    new_password1 = password_field("New password", help_text=password_validation.password_validators_help_text_html())
    new_password2 = password_field("New password confirmation")
    change_reason = reason_field()

    def clean(self):
        cleaned = super().clean()
        check_passwords_match(self, cleaned, "new_password1", "new_password2")
        return cleaned


@admin.register(User)
class UserAdmin(RecordedAdmin, CsvExportMixin, RevertHistoryAdmin):
    """An account's history is shown, never reverted (see :meth:`revert_refusal`)."""

    form = UserChangeForm
    add_form = UserAddForm
    list_display = ("user_id", "full_name", "role", "approval_status", "is_active", "date_joined", "lookalike")
    list_filter = ("role", "approval_status", "is_active", "department")
    search_fields = ("user_id", "full_name", "email", "department")
    ordering = ("-date_joined",)
    date_hierarchy = "date_joined"
    filter_horizontal = ("groups", "user_permissions")
    # never the password hash, the lock-out counters or permissions
    csv_fields = ("user_id", "full_name", "email", "phone", "department", "role", "approval_status", "approved_by",
                  "approved_at", "is_active", "date_joined", "last_login")
    readonly_fields = (
        "user_id",
        "password_status",
        "approval_status",
        "approved_by",
        "approved_at",
        "date_joined",
        "last_login",
        "failed_login_count",
        "locked_until",
    )
    fieldsets = (
        (None, {"fields": ("user_id", "password_status")}),
        ("Profile", {"fields": ("full_name", "email", "phone", "department")}),
        ("Access", {"fields": ("role", "is_active", "approval_status", "approved_by", "approved_at")}),
        ("Sign-in", {"fields": ("last_login", "date_joined", "failed_login_count", "locked_until")}),
        ("Permissions", {"classes": ("collapse",), "fields": ("groups", "user_permissions")}),
        ("Change reason", {"fields": ("change_reason",)}),
    )
    add_fieldsets = (
        (None, {"fields": ("user_id", "password1", "password2")}),
        ("Profile", {"fields": ("full_name", "email", "phone", "department", "role")}),
        ("Change reason", {"fields": ("change_reason",)}),
    )
    actions = ["approve_selected", "reject_selected", "reset_password_action"]

    # --- forms ---------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def revert_refusal(self, request, current, version):
        return ("Accounts are not reverted from their history: it holds neither the password nor the groups "
                "and permissions, and restoring a role, an activation or an approval from it would skip the checks "
                "those changes need (a reason, four eyes). Change the account on its own page instead.")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
            kwargs["fields"] = None
            return super().get_form(request, obj, **kwargs)
        form_class = super().get_form(request, obj, **kwargs)

        class ActorForm(form_class):
            def __init__(self, *args, **kw):
                kw.setdefault("actor", request.user)
                super().__init__(*args, **kw)

        return ActorForm

    @admin.display(description="Look-alike")
    def lookalike(self, obj):
        """A warning beside a pending account whose id is one character away from another's."""
        if obj.approval_status != ApprovalStatus.PENDING:
            return ""
        others = selectors.lookalike_users(obj)
        if not others:
            return ""
        return format_html(
            '<strong class="lookalike-warning">Looks like {}</strong>', ", ".join(o.user_id for o in others)
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and obj.approval_status == ApprovalStatus.PENDING and request.method == "GET":
            for other in selectors.lookalike_users(obj):
                messages.warning(
                    request,
                    f"The user ID {obj.user_id} is one character away from the existing account {other.user_id} "
                    f"({other.full_name or 'no name'}, {other.email or 'no e-mail'}). "
                    "Make sure this is not someone posing as them before approving it.",
                )
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Password")
    def password_status(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        url = reverse(f"{self.admin_site.name}:accounts_user_password", args=[obj.pk])
        return format_html('Stored hashed, never shown. <a class="button" href="{}">Reset password</a>', url)

    # --- saving through the services ------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        reason = data.get("change_reason", "")
        if not change:
            created = services.create_user(
                actor=request.user,
                user_id=data["user_id"],
                password=data["password1"],
                role=data.get("role") or Role.STAFF,
                full_name=data.get("full_name", ""),
                email=data.get("email", ""),
                phone=data.get("phone", ""),
                department=data.get("department", ""),
                reason=reason,
            )
            obj.pk = created.pk
            obj._state.adding = False
            obj._state.db = created._state.db
            for field in ("user_id", "password", "approval_status", "approved_by_id", "approved_at"):
                setattr(obj, field, getattr(created, field))
            return
        user = User.objects.get(pk=obj.pk)
        profile = {f: data[f] for f in services.PROFILE_FIELDS if f in form.changed_data}
        if profile:
            services.update_profile(user=user, actor=request.user, reason=reason, **profile)
        if "role" in form.changed_data:
            services.change_role(user=user, actor=request.user, role=data["role"], reason=reason)
        if "is_active" in form.changed_data:
            services.set_active(user=user, actor=request.user, active=data["is_active"], reason=reason)

    def save_related(self, request, form, formsets, change):
        from audit.context import reason_context

        with reason_context(form.cleaned_data.get("change_reason", "")):
            super().save_related(request, form, formsets, change)

    def has_delete_permission(self, request, obj=None):
        # Accounts are deactivated, never deleted: their audit history refers to them.
        return False

    # --- actions ----------------------------------------------------------------

    def _decide(self, request, queryset, service, verb):
        done, skipped = [], []
        for user in queryset:
            # an account that is not pending goes to the service too: its refusal is recorded as a
            # failed attempt (SPEC: an illegal transition is a record), and shown as skipped here
            try:
                service(user=user, actor=request.user, reason=self.action_reason(request))
                done.append(user.user_id)
            except TransitionError:
                skipped.append(user.user_id)
            except (DomainError, PermissionDenied) as exc:
                self.message_user(request, f"{user.user_id}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"Skipped (not pending): {', '.join(skipped)}.", messages.WARNING)

    @admin.action(description="Approve selected pending accounts")
    def approve_selected(self, request, queryset):
        self._decide(request, queryset, services.approve_user, "Approved")

    @admin.action(description="Reject selected pending accounts")
    def reject_selected(self, request, queryset):
        self._decide(request, queryset, services.reject_user, "Rejected")

    @admin.action(description="Reset the password of the selected account")
    def reset_password_action(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one account to reset its password.", messages.WARNING)
            return None
        user = queryset.get()
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:accounts_user_password", args=[user.pk]))

    # --- the reset-password page ---------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<id>/password/",
                self.admin_site.admin_view(self.reset_password_view),
                name="accounts_user_password",
            ),
            *super().get_urls(),
        ]

    def reset_password_view(self, request, id):
        user = self.get_object(request, unquote(id))
        if user is None:
            raise Http404("No such account.")
        if not (self.has_change_permission(request, user) and request.user.is_admin):
            raise PermissionDenied
        form = PasswordResetForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                with transaction.atomic():
                    services.reset_password(
                        user=user,
                        actor=request.user,
                        new_password=form.cleaned_data["new_password1"],
                        reason=form.cleaned_data.get("change_reason", ""),
                    )
            except DomainError as exc:
                form.add_error("new_password1", str(exc))
            else:
                self.log_change(request, user, "Password reset.")
                if user.pk == request.user.pk:
                    update_session_auth_hash(request, user)
                self.message_user(request, f"Password of {user.user_id} reset.", messages.SUCCESS)
                return HttpResponseRedirect(reverse(f"{self.admin_site.name}:accounts_user_change", args=[user.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Reset password: {user.user_id}",
            "form": form,
            "opts": self.opts,
            "original": user,
        }
        return TemplateResponse(request, "admin/accounts/user/reset_password.html", context)


class GroupForm(forms.ModelForm):
    change_reason = reason_field()

    class Meta:
        model = Group
        fields = ["name", "permissions"]


if admin.site.is_registered(Group):
    admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(RecordedAdmin, DjangoGroupAdmin):
    """Django's group page with a change reason: a group's permissions are
    captured like a user's (a ``permission_change`` of the group, with the
    admin as actor, the request's IP and this reason)."""

    form = GroupForm
    fieldsets = ((None, {"fields": ("name", "permissions")}), ("Change reason", {"fields": ("change_reason",)}))

    def save_model(self, request, obj, form, change):
        from audit.context import reason_context

        with reason_context(form.cleaned_data.get("change_reason", "")):
            super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        from audit.context import reason_context

        with reason_context(form.cleaned_data.get("change_reason", "")):
            super().save_related(request, form, formsets, change)

