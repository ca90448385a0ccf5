"""Django's error reports (the DEBUG page, the admins' error e-mails) without the secrets that live
in URL settings: sink tokens (AUDIT_FORWARD_SINKS), the e-mail and Redis passwords."""

import re

from django.views.debug import SafeExceptionReporterFilter


class ReporterFilter(SafeExceptionReporterFilter):
    # Django's own list, plus the project's settings that carry credentials inside URLs
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|SINKS|EMAIL_URL|REDIS_URL|DATABASE_URL", flags=re.I)
