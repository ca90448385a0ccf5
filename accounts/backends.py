from django.contrib.auth.backends import ModelBackend


class ApprovedUserBackend(ModelBackend):
    """Only approved, active, unlocked accounts may log in.

    Why a login was refused is told by ``accounts.services.login_refusal``;
    this backend only says yes or no."""

    def user_can_authenticate(self, user):
        return super().user_can_authenticate(user) and user.is_approved and not user.is_locked()
