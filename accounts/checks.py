"""System checks of the accounts settings."""

from datetime import timedelta

from django.core.checks import Error, register


@register()
def check_token_expiry(app_configs=None, **kwargs):
    from .tokens import token_ttl

    ttl = token_ttl()
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
        return [
            Error(
                "API tokens must expire: REST_KNOX['TOKEN_TTL'] is not a positive duration.",
                hint="Set API_TOKEN_TTL_HOURS to a whole number of hours, 1 or more (default 10).",
                id="accounts.E001",
            )
        ]
    return []
