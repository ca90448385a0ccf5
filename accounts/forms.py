"""Portal forms for accounts. Validation of business rules stays in
accounts.services; these forms only shape the input."""

from __future__ import annotations

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm

from core.lengths import max_length
from core.portal import ReasonField, SearchField

from .models import ApprovalStatus, Role, User


class LoginForm(AuthenticationForm):
    """Django's login form (fields ``username`` and ``password``) that tells a
    pending, rejected, inactive or locked account why it cannot log in, and
    counts failed attempts for the lock-out."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "The user ID or password is incorrect.",
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].label = "User ID"
        self.fields["username"].widget.attrs.update({"autocapitalize": "characters", "placeholder": "e.g. ST001"})

    def clean(self):
        user_id = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if user_id is not None and password:
            # The backend counts the failure (accounts.lockout) and leaves the
            # sentence it may tell on the request: the lock-out to anyone, the
            # account's state only to someone who gave the right password.
            self.user_cache = authenticate(self.request, username=user_id, password=password)
            if self.user_cache is None:
                refusal = getattr(self.request, "login_refusal", None)
                if refusal:
                    raise forms.ValidationError(refusal, code="refused")
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


PASSWORDS_DIFFER = "The two passwords differ."


def password_field(label: str, *, new: bool = True, help_text: str = "") -> forms.CharField:
    """A password box, in the portal and the admin alike: never stripped (a space is part of a
    password, as at login) and autocompleted as a new or the current password."""
    autocomplete = "new-password" if new else "current-password"
    return forms.CharField(label=label, strip=False, help_text=help_text,
                           widget=forms.PasswordInput(attrs={"autocomplete": autocomplete}))


def check_passwords_match(form: forms.Form, cleaned: dict, first: str, second: str) -> bool:
    """Whether the password typed twice (fields ``first`` and ``second``) is the same both times;
    if not, the error is put on ``second``."""
    if cleaned.get(first) and cleaned.get(second) and cleaned[first] != cleaned[second]:
        form.add_error(second, PASSWORDS_DIFFER)
        return False
    return True


class RegistrationForm(forms.Form):
    user_id = forms.CharField(
        label="User ID", max_length=max_length(User, "user_id"), help_text="The code you will log in with, e.g. ST042 (letters and digits)."
    )
    full_name = forms.CharField(max_length=max_length(User, "full_name"))
    email = forms.EmailField()
    phone = forms.CharField(max_length=max_length(User, "phone"), required=False)
    department = forms.CharField(max_length=max_length(User, "department"), required=False)
    password1 = password_field("Password")
    password2 = password_field("Password again")

    def clean(self):
        data = super().clean()
        check_passwords_match(self, data, "password1", "password2")
        return data


class ProfileForm(forms.Form):
    wide_fields = ("reason",)

    full_name = forms.CharField(max_length=max_length(User, "full_name"), required=False)
    email = forms.EmailField(required=False)
    phone = forms.CharField(max_length=max_length(User, "phone"), required=False)
    department = forms.CharField(max_length=max_length(User, "department"), required=False)
    reason = ReasonField()

    PROFILE_FIELDS = ("full_name", "email", "phone", "department")


class PasswordChangeForm(forms.Form):
    old_password = password_field("Current password", new=False)
    new_password1 = password_field("New password")
    new_password2 = password_field("New password again")

    def clean(self):
        data = super().clean()
        check_passwords_match(self, data, "new_password1", "new_password2")
        return data


class UserFilterForm(forms.Form):
    q = SearchField(placeholder="User ID, name, email")
    role = forms.ChoiceField(choices=[("", "Any role"), *Role.choices], required=False)
    approval_status = forms.ChoiceField(
        label="Approval", choices=[("", "Any state"), *ApprovalStatus.choices], required=False
    )


class DecisionForm(forms.Form):
    """Approve or reject an account."""

    reason = ReasonField()


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
    reason = ReasonField()


class PasswordResetForm(forms.Form):
    new_password = forms.CharField(label="New password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    reason = ReasonField()


class ActiveForm(forms.Form):
    """Activate or deactivate; deactivating asks for a reason and a confirmation, like cancel and reject."""

    active = forms.TypedChoiceField(coerce=lambda v: v == "true", choices=[("true", "Active"), ("false", "Inactive")])
    reason = ReasonField(help_text="Required to deactivate; recorded in the audit trail with the change.")
    confirm = forms.BooleanField(required=False, label="Yes, deactivate this account (its sessions and tokens end)")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("active") is False:
            if not (cleaned.get("reason") or "").strip():
                self.add_error("reason", "A reason is required to deactivate an account.")
            if not cleaned.get("confirm"):
                self.add_error("confirm", "Tick the box to confirm the deactivation.")
        return cleaned
