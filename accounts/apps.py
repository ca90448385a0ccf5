from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """What this app tracks is declared on its models (``@track(...)`` in
    models.py); the audit app connects the capture once, in its ready()."""

    name = "accounts"
    verbose_name = "Accounts"
