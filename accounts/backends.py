from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from audit.ip import client_ip

from . import lockout


class ApprovedUserBackend(ModelBackend):
    """Every login path's one door: only approved, active accounts log in,
    and failures count against the lock-out (:mod:`accounts.lockout`).

    The portal form, ``/admin/login/`` and ``POST /api/auth/token`` all call
    ``authenticate()``, so they count alike. A locked id is refused before
    its password is looked at, and unknown ids, locked ids and wrong passwords
    each cost one password hash, so the answer's timing tells nothing.

    When the login is refused for a reason its caller may tell, the sentence is
    left on ``request.login_refusal``: the lock-out to anyone (unknown ids are
    locked too, so it reveals nothing), the account's state (pending, rejected,
    inactive) only to someone who gave the right password.

    A lock refuses new logins only: ``get_user`` (the session) does not look at
    it, so people already signed in keep working."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        from . import services

        User = get_user_model()
        if username is None:
            username = kwargs.get(User.USERNAME_FIELD)
        if username is None or password is None:
            return None
        user_id = services.normalize_user_id(str(username))
        ip = client_ip(request) if request is not None else None
        user = User._default_manager.filter(user_id__iexact=user_id).first() if user_id else None
        until = lockout.locked_until(user_id, ip)
        if until is None and user is not None and user.is_locked():
            until = user.locked_until
        if user is None or until is not None:
            User().set_password(password)  # the same hasher work as checking a real password
            correct = False
        else:
            correct = user.check_password(password)
        if until is not None:
            _refuse(request, services.lockout_message(until))
            return None
        if not correct:
            services.record_failed_login(user_id=user_id, ip=ip, request=request)
            return None
        if not self.user_can_authenticate(user):
            _refuse(request, services.login_refusal(user.user_id))
            return None
        services.record_successful_login(user=user, ip=ip)
        return user

    def user_can_authenticate(self, user):
        return super().user_can_authenticate(user) and user.is_approved


def _refuse(request, message) -> None:
    if request is not None and message:
        request.login_refusal = message
