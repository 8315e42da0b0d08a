"""ASGI entry point: HTTP through Django (`/mcp` through the MCP server), WebSocket through Channels, all behind the
request log (request ids, a line each, the HTTP metric); the server's start and stop (lifespan) end the runs a
stopping process still writes."""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from channels.routing import ProtocolTypeRouter
from django.conf import settings
from django.core.asgi import get_asgi_application

django_application = get_asgi_application()

from config.body_limit import BodyLimitMiddleware  # noqa: E402
from config.lifespan import LifespanMiddleware  # noqa: E402
from config.request_log import RequestLogMiddleware  # noqa: E402
from config.request_trace import RequestTraceMiddleware  # noqa: E402
from config.routing import websocket_application  # noqa: E402

if "daphne.server" in sys.modules:
    from config.daphne_requests import install

    install()

from chats.mcp.endpoint import McpRouter  # noqa: E402
from config.api_path import ApiHandler, PathRouter  # noqa: E402

# The admin through Django's whole middleware stack, the API through its async-native one (config/api_path.py).
http_application = PathRouter(full=django_application, api=ApiHandler())
if settings.SERVE_STATIC:
    from config.static import StaticFilesHandler

    http_application = StaticFilesHandler(http_application)

application = LifespanMiddleware(
    RequestTraceMiddleware(
        # Inside the request's span, so that its line carries the trace's ids.
        RequestLogMiddleware(
            ProtocolTypeRouter(
                {
                    # /mcp, the MCP server (chats/mcp/endpoint.py), in front of Django.
                    "http": BodyLimitMiddleware(McpRouter(http_application)),
                    # Origin policy (allowed hosts or WS_ALLOWED_ORIGINS; none sent is allowed) in config/routing.py.
                    "websocket": websocket_application,
                }
            )
        )
    )
)
