"""ASGI entry point: HTTP through Django, WebSocket through Channels, both behind the access log."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from channels.routing import ProtocolTypeRouter
from django.conf import settings
from django.core.asgi import get_asgi_application

django_application = get_asgi_application()

from config.access_log import AccessLogMiddleware  # noqa: E402
from config.body_limit import BodyLimitMiddleware  # noqa: E402
from config.routing import websocket_application  # noqa: E402

http_application = django_application
if settings.SERVE_STATIC:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    http_application = ASGIStaticFilesHandler(django_application)

application = AccessLogMiddleware(
    ProtocolTypeRouter(
        {
            "http": BodyLimitMiddleware(http_application),
            # Origin policy (allowed hosts or WS_ALLOWED_ORIGINS; none sent is allowed) in config/routing.py.
            "websocket": websocket_application,
        }
    )
)
