from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from audit.capture.registry import track

        from .models import User

        track(User, entity_type="user", code_field="user_id",
              exclude=["last_login", "failed_login_count"], mask=["password"])
