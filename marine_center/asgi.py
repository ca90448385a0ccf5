import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marine_center.settings")

django_application = get_asgi_application()

# /api/realtime/stream: Django answers the handshake, the stream hub sends the stream itself
from audit.api.stream_asgi import StreamApplication  # noqa: E402 - needs the apps loaded

application = StreamApplication(django_application)
