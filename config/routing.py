"""WebSocket routes; the chat sessions consumer (003) arrives with the chats issue."""

websocket_urlpatterns: list = []
