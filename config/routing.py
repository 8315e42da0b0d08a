"""WebSocket routes, behind the Origin policy: the chat sessions consumer (003)."""

from channels.routing import URLRouter
from django.urls import re_path

from chats.ws.auth import OriginPolicyMiddleware, SessionHandshakeMiddleware, refuse
from chats.ws.consumer import ChatSessionConsumer
from core.paths import UUID

websocket_urlpatterns = [
    re_path(rf"^chat/ws/(?P<session_id>{UUID})/?$", SessionHandshakeMiddleware(ChatSessionConsumer.as_asgi())),
    # Any other path is refused at the handshake (403), not left to raise in the router.
    re_path(r"", refuse),
]

websocket_application = OriginPolicyMiddleware(URLRouter(websocket_urlpatterns))
