"""The project's ASGI application with tests/core/api_error_urls.py as its URLconf
(views that fail on purpose), for servers started by tests."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marine_center.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()

from django.conf import settings  # noqa: E402

settings.ROOT_URLCONF = "tests.core.api_error_urls"
